"""Replay a signal against the simulated fleet on a virtual clock.

Each tick of ``tick_s`` simulated seconds: read the signal at the tick's start, let the
policy cap it, let the dispatcher (:mod:`hashcore.throttle.dispatch`) turn that into the
budget the controller follows (the policy's budget itself, without a forecast or a
battery), give the controller that budget and the power measured over the tick before,
advance the plant one tick, settle the site's energy (surplus the fleet did not use
charges the battery or is curtailed; a draw beyond the surplus comes from the battery
where the dispatcher allows it, else from the grid), and book the tick. The books take
the surplus at the tick's middle (under the cap decided at its start), so a budget that
ramps within a tick is charged as it was, not as the controller saw it; with a battery
the figures' budget is that surplus plus what the battery delivered. Nothing reads the
wall clock except the optional :class:`~hashcore.throttle.clock.Pacer`; a day at a
2-second tick is 43,200 ticks and takes a second or two.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashcore.errors import ConfigError
from hashcore.report.account import AccountSettings, CarbonAccount, CarbonBook
from hashcore.throttle.battery import Battery
from hashcore.throttle.clock import Pacer, VirtualClock
from hashcore.throttle.controller import Controller, ControllerConfig
from hashcore.throttle.dispatch import DispatchConfig, Dispatcher
from hashcore.throttle.figures import FigureBook, Figures
from hashcore.throttle.forecast import Forecast
from hashcore.throttle.model import FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import Policy
from hashcore.throttle.signals import Signal

#: Policies whose gate may let a battery serve the miners at night (see dispatch).
_GRID_GATED = ("carbon-cap", "price")


@dataclass(frozen=True, slots=True)
class Series:
    """One value per tick: the tick's start (epoch s), the budget, the power the fleet can
    reach (the budget held within [paused, full]), the power drawn, hashrate, ĝ, and the
    signal's intensity and price (NaN where it has none); then the raw surplus, the
    budget the dispatcher gave the controller, the battery's state of charge (NaN without
    one) and power (+ charging, - delivering), the grid draw, the curtailed surplus, and
    the clock of the first backend with operating points (NaN where none is set)."""

    t: np.ndarray
    budget_w: np.ndarray
    reach_w: np.ndarray
    power_w: np.ndarray
    hashrate_hs: np.ndarray
    gain: np.ndarray
    gco2_per_kwh: np.ndarray
    price: np.ndarray
    surplus_w: np.ndarray
    dispatch_w: np.ndarray
    soc: np.ndarray
    battery_w: np.ndarray
    grid_w: np.ndarray
    curtailed_w: np.ndarray
    freq_mhz: np.ndarray


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
    actuator: str = "duty"
    forecast: str = "none"
    device_model: str | None = None
    battery: dict[str, Any] | None = None
    account: CarbonAccount | None = None
    curtailed_j: float = 0.0
    usable_surplus_j: float = 0.0
    run_dir: str | None = None

    @property
    def curtailed_fraction(self) -> float | None:
        return self.curtailed_j / self.usable_surplus_j if self.usable_surplus_j > 0 else None

    def to_json(self) -> dict[str, Any]:
        account = self.account.to_json() if self.account is not None else {}
        battery = self.battery or {}
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
            "actuator": self.actuator,
            "forecast": self.forecast,
            "device_model": self.device_model,
            "curtailed_j": self.curtailed_j,
            "usable_surplus_j": self.usable_surplus_j,
            "curtailed_fraction": self.curtailed_fraction,
            "battery_in_j": float(battery.get("battery_in_j", 0.0)),
            "battery_out_j": float(battery.get("battery_out_j", 0.0)),
            "battery_loss_j": float(battery.get("battery_loss_j", 0.0)),
            "battery": self.battery,
            "surplus_j": account.get("surplus_j"),
            "grid_j": account.get("grid_j"),
            "co2_location_g": account.get("co2_location_g"),
            "co2_market_g": account.get("co2_market_g"),
            "g_co2_per_th": account.get("g_co2_per_th"),
            "g_co2_per_share": account.get("g_co2_per_share"),
            "carbon_account": account or None,
            "run_dir": self.run_dir,
        }

    def summary_lines(self) -> list[str]:
        """A few lines for a person (the CLI prints them without --json)."""
        f = self.figures

        def kwh(j: float) -> str:
            return f"{j / 3.6e6:,.3f} kWh"

        def watts(w: float | None) -> str:
            return "-" if w is None else f"{w:,.1f} W"

        def grams(g: float | None) -> str:
            return "unknown" if g is None else f"{g / 1000:,.3f} kg"

        absorbed = "-" if f.absorbed_fraction is None else f"{f.absorbed_fraction:.1%}"
        settle = "no steps" if f.settle_time_s is None else (
            f"{f.settle_time_s:g} s worst, {f.settle_time_p50_s:g} s median over {f.steps} steps")
        lines = [
            f"{self.signal}; policy {self.policy}; {f.seconds / 3600:.1f} h replayed in {self.wall_s:.2f} s "
            f"at a {self.tick_s:g} s tick",
            f"fleet: {self.truth.full_watts:,.0f} W at full duty ("
            + (f"{self.device_model} efficiency curve" if self.device_model else f"{self.fleet.source} model")
            + f"), paused {self.truth.paused_watts:,.0f} W; actuator {self.actuator}; forecast {self.forecast}",
            f"energy used {kwh(f.energy_j)}; inside the budget {kwh(f.energy_inside_budget_j)}; "
            f"over the budget {kwh(f.energy_over_budget_j)} (+ {kwh(f.floor_energy_j)} unavoidable paused floor)",
            f"renewable absorbed {kwh(f.renewable_absorbed_j)} of {kwh(f.renewable_available_j)} usable ({absorbed})",
            f"tracking error mean {watts(f.tracking_error_mean_w)}, p95 {watts(f.tracking_error_p95_w)}; "
            f"settling {settle}; overshoot {f.overshoot_w:,.1f} W",
            f"hashes {f.hashes:,.4g}"
            + ("" if f.co2_g is None else f"; CO2 {f.co2_g / 1000:,.3f} kg")
            + ("" if f.cost is None else f"; electricity {f.cost:,.2f}"),
        ]
        if self.usable_surplus_j > 0:
            fraction = self.curtailed_fraction or 0.0
            lines.append(f"curtailed {kwh(self.curtailed_j)} of {kwh(self.usable_surplus_j)} usable surplus "
                         f"({fraction:.2%})")
        if self.battery is not None:
            b = self.battery
            lines.append(f"battery {b['capacity_kwh']:g} kWh / {b['power_kw']:g} kW: in {kwh(b['battery_in_j'])}, "
                         f"out {kwh(b['battery_out_j'])}, lost {kwh(b['battery_loss_j'])}; state of charge "
                         f"{b['soc_start']:.0%} -> {b['soc_end']:.0%}")
        if self.account is not None:
            a = self.account.to_json()
            per_th = "unknown" if a["g_co2_per_th"] is None else f"{a['g_co2_per_th']:,.4g} g/TH"
            lines.append(f"energy by source: surplus {kwh(a['surplus_j'])}, battery {kwh(a['battery_j'])}, "
                         f"grid {kwh(a['grid_j'])}; CO2 location-based {grams(a['co2_location_g'])}, "
                         f"market-based {grams(a['co2_market_g'])} ({per_th})")
        if self.plot:
            lines.append(f"plot written to {self.plot}")
        if self.run_dir:
            lines.append(f"run written to {self.run_dir} (hashcore report {self.run_dir})")
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
    actuator: str = "duty",
    forecast: Forecast | None = None,
    battery: Battery | None = None,
    dispatch: DispatchConfig | None = None,
    account: AccountSettings | None = None,
    clock: VirtualClock | None = None,
) -> SimulationReport:
    """Replay ``signal`` from ``start`` to ``end`` (epoch seconds) on a virtual clock.

    ``fleet`` is the controller's model; ``plant`` the fleet it controls (default: the
    model itself, exactly). ``speedup`` paces the replay to that many times real time.
    ``actuator`` is ``duty`` or ``dvfs``; ``forecast`` and ``battery`` feed the dispatcher;
    ``account`` says how to keep the carbon account. ``clock`` is the virtual clock to
    run on (a forecast that may only look back reads it): default, a new one at ``start``.
    """
    if not (math.isfinite(tick_s) and tick_s > 0):
        raise ConfigError(f"the tick must be a positive number of seconds, not {tick_s}")
    if not end > start:
        raise ConfigError("the simulation needs end after start")
    settings = account or AccountSettings()
    if battery is not None and settings.budget_source == "grid":
        raise ConfigError("a battery stores surplus, and this budget is grid power (--budget-source grid)")
    plant = plant or SimulatedMiner(fleet)
    clock = clock or VirtualClock(start)
    if abs(clock.now() - start) > 1e-9:
        raise ConfigError("the simulation's clock must start at the simulation's start")
    pacer = Pacer(start, speedup)
    # A simulation sets nothing on this machine's devices (no GPU power limit).
    controller = Controller(fleet, plant, config=config, actuator=actuator)
    dispatcher = Dispatcher(fleet.full_watts, fleet.paused_watts, battery=battery, forecast=forecast,
                            night_gate=any(name in policy.name for name in _GRID_GATED), config=dispatch)
    book = FigureBook(plant.truth.paused_watts, plant.truth.full_watts)
    carbon = CarbonBook(settings, start)
    on_surplus = settings.budget_source == "surplus"
    battery_limit_w = battery.config.power_kw * 1000.0 if battery is not None else 0.0
    curve_backend = next((b.name for b in fleet.backends if b.curve is not None), None)
    rows: list[tuple[float, ...]] = []
    nan = math.nan
    measured: float | None = None
    curtailed_j = usable_j = 0.0
    began = time.perf_counter()
    while (t := clock.now()) < end - 1e-9:
        dt = min(tick_s, end - t)
        point = signal.at(t)
        cap = policy.limit(point, fleet)
        decision = dispatcher.decide(t, dt, point.watts, cap)
        command = controller.step(decision.budget_w, measured)
        power, hashes = plant.advance(dt)
        measured = plant.measure(power)
        middle = signal.at(t + dt / 2)
        surplus = max(0.0, middle.watts) if on_surplus else 0.0
        charged = delivered = curtailed = loss_j = 0.0
        if battery is not None:
            loss_before = battery.loss_mj
            if surplus >= power:
                charged = battery.charge(surplus - power, dt)
                curtailed = surplus - power - charged
            elif decision.discharge_ok:
                delivered = battery.discharge(power - surplus, dt)
            loss_j = (battery.loss_mj - loss_before) / 1000.0
        else:
            curtailed = max(0.0, surplus - power)
        grid = max(0.0, power - surplus - delivered) if on_surplus else power
        curtailed_j += curtailed * dt
        usable_j += min(surplus, book.full_w + battery_limit_w) * dt
        booked = min(middle.watts, cap) + delivered
        book.add(t, dt, booked, power, hashes, middle.gco2_per_kwh, middle.price)
        carbon.add(t, dt, power, surplus_w=surplus, battery_w=delivered, curtailed_w=curtailed,
                   battery_in_w=charged, battery_loss_j=loss_j, gco2_per_kwh=middle.gco2_per_kwh, hashes=hashes)
        reach = min(max(booked, book.paused_w), book.full_w)
        mix = plant.points.get(curve_backend) if curve_backend is not None else None
        if mix is not None and command.fractions.get(str(curve_backend), 0.0) <= 0.0:
            mix = None  # paused: no clock to speak of
        rows.append((t, booked, reach, power, hashes / dt, command.gain,
                     nan if middle.gco2_per_kwh is None else middle.gco2_per_kwh,
                     nan if middle.price is None else middle.price,
                     max(0.0, middle.watts), decision.budget_w,
                     nan if battery is None else battery.soc, charged - delivered, grid, curtailed,
                     nan if mix is None else mix.freq_mhz))
        clock.advance(dt)
        pacer.wait_until(clock.now())
    wall = time.perf_counter() - began
    controller.close()
    columns = np.array(rows, dtype=np.float64).reshape(-1, 15).T
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
        actuator=actuator,
        forecast="none" if forecast is None else forecast.name,
        battery=None if battery is None else battery.summary(),
        account=carbon.account(),
        curtailed_j=curtailed_j if on_surplus else 0.0,
        usable_surplus_j=usable_j if on_surplus else 0.0,
    )
