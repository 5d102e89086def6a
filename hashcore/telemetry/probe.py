"""What this machine can measure, and the best meter for each kind of backend.

* ``cpu`` backends: RAPL when its package counters can be read, else the estimate.
* ``gpu`` backends: NVML for that GPU (index or PCI bus id), else nothing (``none``).
* ``asic`` backends: the board's reported power, else nothing.

A fallback always comes with its reason, so reports can say why a figure is an estimate
or missing. Nothing here prints; ``hashcore telemetry`` formats what these return.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hashcore.errors import ConfigError, TelemetryError
from hashcore.telemetry.asic import AsicMeter, JoulesFn, WattsFn
from hashcore.telemetry.base import DetailedMeter, EnergyMeter, NullMeter, note_of
from hashcore.telemetry.estimate import EstimateMeter, cpu_model, lookup_tdp
from hashcore.telemetry.nvml import NvmlMeter, list_gpus
from hashcore.telemetry.poll import Clock
from hashcore.telemetry.rapl import RaplMeter, find_domains, read_energy_uj
from hashcore.telemetry.rapl import powercap_root as powercap_root_path

KINDS = ("cpu", "gpu", "asic")

PowercapRoot = str | os.PathLike[str] | None


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One energy source as probed on this machine.

    Attributes:
        name: rapl, nvml, asic or estimate.
        found: whether it can be used here.
        exact: whether its figures are measured.
        reason: what was found, or why it cannot be used (with the fix when there is one).
        parts: what it covers (RAPL domains, GPUs).
    """

    name: str
    found: bool
    exact: bool
    reason: str
    parts: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "parts": list(self.parts)}


@dataclass(frozen=True, slots=True)
class MeterChoice:
    """The meter chosen for a kind of backend.

    Attributes:
        meter: the meter (the caller closes it).
        kind: cpu, gpu or asic.
        fallback: True when the preferred source could not be used.
        reason: why the fallback was taken; "" when there was none.
    """

    meter: EnergyMeter
    kind: str
    fallback: bool
    reason: str = ""


def probe_rapl(powercap_root: PowercapRoot = None) -> SourceInfo:
    """Whether RAPL package counters can be read, and which domains there are."""
    try:
        domains = find_domains(powercap_root)
        packages = [d for d in domains if d.is_package]
        if not packages:
            raise TelemetryError(f"no RAPL package domain (found: {', '.join(d.label for d in domains)})")
        for domain in packages:
            read_energy_uj(domain)
    except TelemetryError as exc:
        return SourceInfo("rapl", False, True, str(exc))
    return SourceInfo(
        "rapl", True, True, f"powercap at {powercap_root_path(powercap_root)}", tuple(d.label for d in domains)
    )


def probe_nvml(nvml_lib: Any = None) -> SourceInfo:
    """Whether NVML works and which GPUs it sees."""
    try:
        gpus = list_gpus(nvml_lib)
    except TelemetryError as exc:
        return SourceInfo("nvml", False, True, str(exc))
    if not gpus:
        return SourceInfo("nvml", False, True, "NVML works but sees no GPU")
    parts = tuple(
        f"{g.index}: {g.name} at {g.bus_id} ({'energy counter' if g.energy_counter else 'power only, integrated'})"
        for g in gpus
    )
    return SourceInfo("nvml", True, True, f"{len(gpus)} GPU(s)", parts)


def probe_estimate(tdp_watts_per_core: float | None = None) -> SourceInfo:
    """The estimate is always available; say what it would use."""
    if tdp_watts_per_core is not None:
        basis = f"{tdp_watts_per_core:g} W/core configured"
    else:
        model = cpu_model()
        entry = lookup_tdp(model)
        basis = f"{entry.watts_per_core:g} W/core for {model or 'unknown CPU'!r} ({entry.basis})"
    return SourceInfo("estimate", True, False, f"CPU time of this process × {basis}; not measured")


def probe_sources(
    *,
    powercap_root: PowercapRoot = None,
    tdp_watts_per_core: float | None = None,
    nvml_lib: Any = None,
) -> list[SourceInfo]:
    """Every source this machine has, found or not, with the reason."""
    return [
        probe_rapl(powercap_root),
        probe_nvml(nvml_lib),
        SourceInfo("asic", False, True, "board power is read from an open ASIC backend"),
        probe_estimate(tdp_watts_per_core),
    ]


def choose_meter(
    kind: str = "cpu",
    *,
    powercap_root: PowercapRoot = None,
    tdp_watts_per_core: float | None = None,
    gpu: int | str = 0,
    board_watts: WattsFn | None = None,
    board_joules: JoulesFn | None = None,
    nvml_lib: Any = None,
) -> MeterChoice:
    """Open the best meter for a kind of backend, and say why when it had to fall back.

    Args:
        kind: cpu, gpu or asic.
        powercap_root: RAPL tree (else ``$HASHCORE_POWERCAP_ROOT``, else sysfs).
        tdp_watts_per_core: watts per core for the estimate (else the model table).
        gpu: the GPU of a gpu backend, by NVML index or PCI bus id.
        board_watts, board_joules: an ASIC board's reported power / energy.
        nvml_lib: a stand-in for ``pynvml`` (tests).
    """
    if kind == "cpu":
        try:
            return MeterChoice(RaplMeter.open(powercap_root), kind, False)
        except TelemetryError as exc:
            reason = str(exc)
        return MeterChoice(EstimateMeter(tdp_watts_per_core, reason=reason), kind, True, reason)
    if kind == "gpu":
        try:
            return MeterChoice(NvmlMeter(gpu, lib=nvml_lib), kind, False)
        except TelemetryError as exc:
            reason = f"no GPU energy figure: {exc}"
        return MeterChoice(NullMeter(reason), kind, True, reason)
    if kind == "asic":
        try:
            return MeterChoice(AsicMeter(board_watts, board_joules), kind, False)
        except TelemetryError as exc:
            reason = f"no ASIC energy figure: {exc}"
        return MeterChoice(NullMeter(reason), kind, True, reason)
    raise ConfigError(f"unknown backend kind {kind!r} for telemetry (known: {', '.join(KINDS)})")


def open_meter(
    kind: str = "cpu",
    powercap_root: PowercapRoot = None,
    tdp_watts_per_core: float | None = None,
    **options: Any,
) -> EnergyMeter:
    """The meter of :func:`choose_meter`; its ``note`` carries the fallback reason."""
    return choose_meter(kind, powercap_root=powercap_root, tdp_watts_per_core=tdp_watts_per_core, **options).meter


@dataclass(frozen=True, slots=True)
class PowerPoint:
    """One live reading: seconds since sampling began, average watts since the previous
    point, cumulative joules, and watts per part for meters that have parts."""

    t: float
    watts: float
    joules: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LiveSeries:
    """Live readings of one meter."""

    label: str
    source: str
    exact: bool
    note: str
    points: list[PowerPoint]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_power(
    meters: dict[str, EnergyMeter],
    seconds: float = 3.0,
    interval_s: float = 0.5,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = time.monotonic_ns,
) -> list[LiveSeries]:
    """Sample each meter every ``interval_s`` for ``seconds``; the meters stay open."""
    if interval_s <= 0 or seconds < 0:
        raise ConfigError("sampling needs a positive interval and a non-negative duration")
    t0 = clock()
    points: dict[str, list[PowerPoint]] = {label: [] for label in meters}
    last_t = dict.fromkeys(meters, 0.0)
    last_parts: dict[str, dict[str, float]] = {}
    for label, meter in meters.items():
        meter.sample()
        if isinstance(meter, DetailedMeter):
            last_parts[label] = meter.detail()
    for _ in range(max(1, round(seconds / interval_s))):
        sleep(interval_s)
        for label, meter in meters.items():
            sample = meter.sample()
            t = (clock() - t0) / 1e9
            parts: dict[str, float] = {}
            if isinstance(meter, DetailedMeter):
                now, before, dt = meter.detail(), last_parts[label], t - last_t[label]
                parts = {k: (v - before.get(k, 0.0)) / dt if dt > 0 else 0.0 for k, v in now.items()}
                last_parts[label] = now
            last_t[label] = t
            points[label].append(PowerPoint(t, sample.watts, sample.joules, parts))
    return [LiveSeries(label, m.source, m.exact, note_of(m), points[label]) for label, m in meters.items()]


@dataclass(frozen=True, slots=True)
class TelemetryReport:
    """What ``hashcore telemetry`` shows: the sources, and a few seconds of live power."""

    sources: list[SourceInfo]
    live: list[LiveSeries]

    def as_dict(self) -> dict[str, Any]:
        return {"sources": [s.as_dict() for s in self.sources], "live": [s.as_dict() for s in self.live]}


def telemetry_report(
    seconds: float = 3.0,
    interval_s: float = 0.5,
    *,
    powercap_root: PowercapRoot = None,
    tdp_watts_per_core: float | None = None,
    nvml_lib: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TelemetryReport:
    """Probe every source, then sample the CPU meter and each NVML GPU for ``seconds``."""
    sources = probe_sources(powercap_root=powercap_root, tdp_watts_per_core=tdp_watts_per_core, nvml_lib=nvml_lib)
    meters: dict[str, EnergyMeter] = {}
    try:
        cpu = choose_meter("cpu", powercap_root=powercap_root, tdp_watts_per_core=tdp_watts_per_core)
        meters["cpu"] = cpu.meter
        nvml = next(s for s in sources if s.name == "nvml")
        if nvml.found:
            for index in range(len(nvml.parts)):
                try:
                    meters[f"gpu{index}"] = NvmlMeter(index, lib=nvml_lib)
                except TelemetryError:
                    continue  # listed by the probe with its state; nothing live to show
        live = sample_power(meters, seconds, interval_s, sleep=sleep)
    finally:
        for meter in meters.values():
            meter.close()
    return TelemetryReport(sources, live)
