"""Replay a signal against the simulated fleet on a virtual clock.

Each tick of ``tick_s`` simulated seconds: read the signal at the tick's start, let the
policy cap it, give the controller that budget and the power measured over the tick
before, advance the plant one tick, and book the tick. The books take the budget at
the tick's middle (under the cap decided at its start), so a budget that ramps within a
tick is charged as it was, not as the controller saw it. Nothing reads the wall clock
except the optional :class:`~hashcore.throttle.clock.Pacer`; a day at a 2-second tick
is 43,200 ticks and takes about a second.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashcore.errors import ConfigError
from hashcore.throttle.clock import Pacer, VirtualClock
from hashcore.throttle.controller import Controller, ControllerConfig
from hashcore.throttle.figures import FigureBook, Figures
from hashcore.throttle.model import FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import Policy
from hashcore.throttle.signals import Signal


@dataclass(frozen=True, slots=True)
class Series:
    """One value per tick: the tick's start (epoch s), the budget, the power the fleet can
    reach (the budget held within [paused, full]), the power drawn, hashrate, ĝ, and the
    signal's intensity and price (NaN where it has none)."""

    t: np.ndarray
    budget_w: np.ndarray
    reach_w: np.ndarray
    power_w: np.ndarray
    hashrate_hs: np.ndarray
    gain: np.ndarray
    gco2_per_kwh: np.ndarray
    price: np.ndarray


@dataclass(slots=True)
class SimulationReport:
    """What ``hashcore simulate`` reports; :meth:`to_json` is its ``--json`` line."""

    figures: Figures
    series: Series
    signal: str
    policy: str
    policy_state: dict[str, Any]
    fleet: FleetModel
    truth: FleetModel
    tick_s: float
    start: float
    end: float
    utc_offset_s: float
    wall_s: float
    plot: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.figures.to_json(),
            "signal": self.signal,
            "policy": self.policy,
            "policy_state": self.policy_state,
            "tick_s": self.tick_s,
            "start": self.start,
            "end": self.end,
            "full_power_w": self.truth.full_watts,
            "paused_power_w": self.truth.paused_watts,
            "model_source": self.fleet.source,
            "fleet": self.fleet.to_json(),
            "replay_wall_s": self.wall_s,
            "plot": self.plot,
        }

    def summary_lines(self) -> list[str]:
        """A few lines for a person (the CLI prints them without --json)."""
        f = self.figures

        def kwh(j: float) -> str:
            return f"{j / 3.6e6:,.3f} kWh"

        def watts(w: float | None) -> str:
            return "-" if w is None else f"{w:,.1f} W"

        absorbed = "-" if f.absorbed_fraction is None else f"{f.absorbed_fraction:.1%}"
        settle = "no steps" if f.settle_time_s is None else (
            f"{f.settle_time_s:g} s worst, {f.settle_time_p50_s:g} s median over {f.steps} steps")
        lines = [
            f"{self.signal}; policy {self.policy}; {f.seconds / 3600:.1f} h replayed in {self.wall_s:.2f} s "
            f"at a {self.tick_s:g} s tick",
            f"fleet: {self.truth.full_watts:,.0f} W at full duty ({self.fleet.source} model), "
            f"paused {self.truth.paused_watts:,.0f} W",
            f"energy used {kwh(f.energy_j)}; inside the budget {kwh(f.energy_inside_budget_j)}; "
            f"over the budget {kwh(f.energy_over_budget_j)} (+ {kwh(f.floor_energy_j)} unavoidable paused floor)",
            f"renewable absorbed {kwh(f.renewable_absorbed_j)} of {kwh(f.renewable_available_j)} usable ({absorbed})",
            f"tracking error mean {watts(f.tracking_error_mean_w)}, p95 {watts(f.tracking_error_p95_w)}; "
            f"settling {settle}; overshoot {f.overshoot_w:,.1f} W",
            f"hashes {f.hashes:,.4g}"
            + ("" if f.co2_g is None else f"; CO2 {f.co2_g / 1000:,.3f} kg")
            + ("" if f.cost is None else f"; electricity {f.cost:,.2f}"),
        ]
        if self.plot:
            lines.append(f"plot written to {self.plot}")
        return lines


def simulate(
    signal: Signal,
    fleet: FleetModel,
    policy: Policy,
    *,
    start: float,
    end: float,
    tick_s: float = 2.0,
    plant: SimulatedMiner | None = None,
    config: ControllerConfig | None = None,
    speedup: float | None = None,
    utc_offset_s: float = 0.0,
) -> SimulationReport:
    """Replay ``signal`` from ``start`` to ``end`` (epoch seconds) on a virtual clock.

    ``fleet`` is the controller's model; ``plant`` the fleet it controls (default: the
    model itself, exactly). ``speedup`` paces the replay to that many times real time.
    """
    if not (math.isfinite(tick_s) and tick_s > 0):
        raise ConfigError(f"the tick must be a positive number of seconds, not {tick_s}")
    if not end > start:
        raise ConfigError("the simulation needs end after start")
    plant = plant or SimulatedMiner(fleet)
    clock = VirtualClock(start)
    pacer = Pacer(start, speedup)
    controller = Controller(fleet, plant, config=config)
    book = FigureBook(plant.truth.paused_watts, plant.truth.full_watts)
    rows: list[tuple[float, float, float, float, float, float, float, float]] = []
    nan = math.nan
    measured: float | None = None
    began = time.perf_counter()
    while (t := clock.now()) < end - 1e-9:
        dt = min(tick_s, end - t)
        point = signal.at(t)
        cap = policy.limit(point, fleet)
        budget = min(point.watts, cap)
        command = controller.step(budget, measured)
        power, hashes = plant.advance(dt)
        measured = plant.measure(power)
        middle = signal.at(t + dt / 2)
        booked = min(middle.watts, cap)
        book.add(t, dt, booked, power, hashes, middle.gco2_per_kwh, middle.price)
        reach = min(max(booked, book.paused_w), book.full_w)
        rows.append((t, booked, reach, power, hashes / dt, command.gain,
                     nan if middle.gco2_per_kwh is None else middle.gco2_per_kwh,
                     nan if middle.price is None else middle.price))
        clock.advance(dt)
        pacer.wait_until(clock.now())
    wall = time.perf_counter() - began
    controller.close()
    columns = np.array(rows, dtype=np.float64).reshape(-1, 8).T
    series = Series(*columns)
    return SimulationReport(
        figures=book.figures(),
        series=series,
        signal=signal.describe(),
        policy=policy.name,
        policy_state=policy.state(),
        fleet=fleet,
        truth=plant.truth,
        tick_s=tick_s,
        start=start,
        end=end,
        utc_offset_s=utc_offset_s,
        wall_s=wall,
    )
