from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hashcore.throttle.controller import ControllerConfig
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.signals import Trace
from hashcore.throttle.simulation import SimulationReport, simulate

TRACES = Path(__file__).resolve().parents[2] / "traces"
SAMPLES = ("solar-sunny.csv", "solar-cloudy.csv", "wind-gusty.csv", "grid-carbon.csv")


def cpu_fleet(full_watts: float = 1000.0, threads: int = 4, paused_watts: float = 0.0) -> FleetModel:
    """One CPU backend at ``full_watts`` with a C-like efficiency (about 140,000 J/TH)."""
    return FleetModel((BackendModel("c", full_watts, full_watts / 1.4e-7, threads=threads,
                                    paused_watts=paused_watts),))


def two_backends() -> FleetModel:
    """A cheap backend (c) and an expensive one (reference), 600 W and 400 W."""
    return FleetModel((
        BackendModel("reference", 400.0, 400.0 / 4.6e-6, threads=2),
        BackendModel("c", 600.0, 600.0 / 1.4e-7, threads=2),
    ))


def steps(points: Sequence[tuple[float, float]], interpolation: str = "step") -> Trace:
    """A trace from (seconds, watts) pairs, starting at epoch 0."""
    return Trace([t for t, _ in points], [w for _, w in points], interpolation=interpolation)  # type: ignore[arg-type]


def run(
    trace: Trace,
    fleet: FleetModel,
    *,
    truth: FleetModel | None = None,
    noise: float = 0.0,
    tick_s: float = 2.0,
    end: float | None = None,
    config: ControllerConfig | None = None,
    policy: str = "follow",
    **policy_options: float,
) -> SimulationReport:
    plant = SimulatedMiner(truth or fleet, noise=noise, seed=5)
    return simulate(trace, fleet, make_policy(policy, trace, **policy_options), start=trace.start,
                    end=trace.end if end is None else end, tick_s=tick_s, plant=plant, config=config)


def ticks_after(report: SimulationReport, t: float) -> np.ndarray:
    """Indices of the ticks that start at or after ``t``."""
    return np.nonzero(report.series.t >= t - 1e-9)[0]


@pytest.fixture
def fleet() -> FleetModel:
    return cpu_fleet()
