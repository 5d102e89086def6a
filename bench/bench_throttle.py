"""How fast a simulated day replays, and the figures of each sample trace.

    pytest bench/bench_throttle.py --benchmark-only     # seconds per simulated day
    python bench/bench_throttle.py                      # the figures table of traces/README.md

Each sample trace replays against a fleet sized to its site (a CPU fleet at this
machine's J/TH, scaled with --miner-watts): once with the power model exactly right,
once with the fleet drawing 20% more than the model and a meter with 2% noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hashcore.app.inputs import load_trace
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.simulation import SimulationReport, simulate

TRACES = Path(__file__).resolve().parents[1] / "traces"
#: Sample -> (fleet watts at full duty, policy, carbon cap).
SITES: dict[str, tuple[float, str, float | None]] = {
    "solar-sunny.csv": (5_000.0, "follow", None),
    "solar-cloudy.csv": (5_000.0, "follow", None),
    "wind-gusty.csv": (800_000.0, "follow", None),
    "grid-carbon.csv": (5_000.0, "carbon-cap", 250.0),
}


def fleet(watts: float) -> FleetModel:
    # The C backend's J/TH as the estimate measures it here (about 140,000 J/TH).
    return FleetModel((BackendModel("c", watts, watts / 1.4e-7, threads=2, source="estimate"),))


def replay(name: str, *, error: float = 1.0, noise: float = 0.0, tick_s: float = 2.0) -> SimulationReport:
    trace = load_trace(TRACES / name)
    watts, policy, cap = SITES[name]
    plant = SimulatedMiner(fleet(watts * error), noise=noise, seed=5)
    return simulate(trace, fleet(watts), make_policy(policy, trace, carbon_cap=cap), start=trace.start,
                    end=trace.end, tick_s=tick_s, plant=plant)


@pytest.mark.parametrize("name", list(SITES))
def test_replay_a_day(benchmark: Any, name: str) -> None:
    report = benchmark.pedantic(replay, args=(name,), rounds=3, warmup_rounds=0)
    benchmark.extra_info["ticks"] = len(report.series.t)
    benchmark.extra_info["absorbed_fraction"] = report.figures.absorbed_fraction


def table() -> str:
    rows = ["| trace | model | tracking error mean / p95 (W) | settling worst / median (s), steps | "
            "absorbed | over budget (% of energy) | replay (s) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in SITES:
        for label, options in (("exact", {}), ("+20%, 2% noise", {"error": 1.2, "noise": 0.02})):
            r = replay(name, **options)
            f = r.figures
            settle = "no steps" if f.settle_time_s is None else \
                f"{f.settle_time_s:g} / {f.settle_time_p50_s:g}, {f.steps}"
            rows.append(
                f"| {name} | {label} | {f.tracking_error_mean_w:,.1f} / {f.tracking_error_p95_w:,.1f} | {settle} | "
                f"{f.absorbed_fraction:.2%} | {100 * f.energy_over_budget_j / f.energy_j:.3f} | {r.wall_s:.2f} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
