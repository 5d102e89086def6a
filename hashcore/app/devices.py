"""A fleet's figures from devices: model curves of real chips, and a fresh benchmark of
each backend.

:func:`device_curve` is ``--device-model``'s curve (the ASIC's from the backend's chip
model, the CPU's and GPU's P-state models from the throttle core); :func:`measure_fleet`
models the fleet by benchmarking it (``hashcore.bench``), as ``simulate`` and ``mine
--power-budget`` do without ``--model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hashcore.backends.asic.chips import chip_curve, chip_model
from hashcore.bench import bench
from hashcore.throttle.devices import EfficiencyCurve, OperatingPoint, pstate_curve
from hashcore.throttle.model import FleetModel, fleet_from_reports
from hashcore.workers import default_threads


def asic_curve(chip: str = "bm1366", j_per_th: float = 21.5) -> EfficiencyCurve:
    """One chip along its V/f table up to stock (:func:`~hashcore.backends.asic.chips.chip_curve`)."""
    model = chip_model(chip)
    points = tuple(OperatingPoint(p.mhz, p.mv, p.hashrate_hs, p.watts) for p in chip_curve(model, j_per_th))
    source = (f"model: {model.name} V/f table, power = static {model.static_fraction:.0%} + k f V^2, "
              f"{j_per_th:g} J/TH at stock {model.default_mhz:g} MHz / {model.stock_mv:g} mV")
    return EfficiencyCurve(f"asic-{model.name}", points, source)


def device_curve(name: str) -> EfficiencyCurve:
    """The model curve of ``--device-model NAME`` (cpu, asic-bm1366, gpu)."""
    if name == "asic-bm1366":
        return asic_curve("bm1366")
    return pstate_curve(name)


def measure_fleet(
    names: Sequence[str],
    threads: int | None = None,
    seconds: float = 1.0,
    **bench_options: Any,
) -> FleetModel:
    """Benchmark each backend (``hashcore.bench``) and model it from the result.

    ``threads`` None uses each backend's default (one per core for CPU backends), as the
    miner does. Takes about ``seconds`` per backend.
    """
    reports = []
    for name in names:
        count = threads or default_threads(name)
        reports.append(bench(name, seconds, count, baseline=False, **bench_options).to_json())
    return fleet_from_reports(reports)
