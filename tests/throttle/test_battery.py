"""The site battery on the virtual clock: energy conserved to the joule, state-of-charge
and power limits, full or empty at a step, carrying the miners through a cloud, and
at night only where the policy's grid gate allows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hashcore.app.sources import LiveBatteryState, parse_battery_reading
from hashcore.errors import ConfigError
from hashcore.throttle.battery import Battery, BatteryConfig
from hashcore.throttle.model import FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.signals import Trace
from hashcore.throttle.simulation import SimulationReport, simulate

from .conftest import cpu_fleet, steps

KWH = 3.6e6


def run_with(trace: Trace, battery: Battery, fleet: FleetModel | None = None, *, end: float | None = None,
             policy: str = "follow", tick_s: float = 2.0, **options: float) -> SimulationReport:
    fleet = fleet or cpu_fleet(1000.0)
    return simulate(trace, fleet, make_policy(policy, trace, **options), start=trace.start,
                    end=trace.end if end is None else end, tick_s=tick_s, plant=SimulatedMiner(fleet),
                    battery=battery)


def test_random_charges_and_discharges_conserve_energy_to_the_millijoule():
    battery = Battery(BatteryConfig(2.0, 1.5, round_trip=0.92, soc_min=0.1, soc_max=0.9, soc_start=0.3))
    rng = random.Random(1)
    for _ in range(20_000):
        watts, dt = rng.uniform(0, 3000), rng.choice([0.5, 1.0, 2.0, 3.7])
        (battery.charge if rng.random() < 0.5 else battery.discharge)(watts, dt)
        assert battery.min_mj <= battery.stored_mj <= battery.max_mj
    assert battery.conservation_mj() == 0
    assert battery.in_mj - battery.loss_mj - battery.out_mj == battery.stored_mj - battery.start_mj
    # What was lost is the round trip's: about 4% each way.
    assert battery.loss_mj == pytest.approx(0.0408 * battery.in_mj + 0.0425 * battery.out_mj, rel=0.01)


def test_the_terminals_and_the_state_of_charge_limit_each_step():
    battery = Battery(BatteryConfig(1.0, 0.5, round_trip=1.0, soc_min=0.2, soc_max=0.8, soc_start=0.5))
    assert battery.charge(2000.0, 60.0) == pytest.approx(500.0)  # the 0.5 kW limit
    assert battery.charge(500.0, 3600.0) == pytest.approx(0.3 * 3.6e6 / 3600.0 - 500.0 * 60 / 3600, rel=1e-6)
    assert battery.soc == pytest.approx(0.8) and battery.charge(100.0, 10.0) == 0.0
    assert battery.discharge(2000.0, 10.0) == pytest.approx(500.0)
    battery.discharge(500.0, 36_000.0)
    assert battery.soc == pytest.approx(0.2) and battery.discharge(100.0, 10.0) == 0.0
    assert battery.conservation_mj() == 0


def test_limits_are_checked():
    with pytest.raises(ConfigError):
        BatteryConfig(0.0, 1.0)
    with pytest.raises(ConfigError):
        BatteryConfig(1.0, 1.0, soc_min=0.9, soc_max=0.5)
    with pytest.raises(ConfigError):
        BatteryConfig(1.0, 1.0, round_trip=1.2)


def test_a_day_with_a_battery_conserves_energy_to_the_joule():
    trace = steps([(0, 0.0), (3600, 1500.0), (4000, 200.0), (4300, 1800.0), (7200, 0.0), (9000, 0.0)])
    report = run_with(trace, Battery(BatteryConfig(0.5, 1.0, soc_start=0.5)))
    b = report.battery
    assert b is not None and b["conservation_error_j"] == 0.0
    change = b["stored_end_j"] - b["stored_start_j"]
    assert b["battery_in_j"] - b["battery_loss_j"] - b["battery_out_j"] == pytest.approx(change, abs=1e-3)
    data = report.to_json()
    assert data["battery_in_j"] == b["battery_in_j"] and data["battery_out_j"] > 0


def test_a_full_battery_at_a_step_up_curtails_the_excess():
    trace = steps([(0, 500.0), (600, 2000.0), (1200, 2000.0)])
    report = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_max=0.9, soc_start=0.9)))
    s = report.series
    after = s.t >= 602  # the tick of the step is the fleet's own transit
    assert np.allclose(s.soc, 0.9, atol=1e-6)
    # Nothing goes in but the joule or so it lent to cover the controller's tracking error.
    assert report.battery is not None and report.battery["battery_in_j"] < 1.0
    assert s.curtailed_w[after] == pytest.approx(np.full(after.sum(), 1000.0), abs=1.0)
    assert report.curtailed_j == pytest.approx(1000.0 * 600 + 0.0, rel=0.01)


def test_an_empty_battery_at_a_step_down_leaves_the_miners_on_the_surplus():
    trace = steps([(0, 1000.0), (600, 200.0), (1200, 200.0)])
    report = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_min=0.2, soc_start=0.2)))
    s = report.series
    settled = s.t >= 604
    assert s.power_w[settled] == pytest.approx(np.full(settled.sum(), 200.0), abs=1.0)
    b = report.battery
    # It gave back only the few hundred joules it took in while the fleet started (the
    # first tick's transit): an empty battery carries nothing.
    assert b is not None and b["battery_out_j"] <= b["battery_in_j"] < 300.0
    assert report.account is not None
    # Only the tick the surplus fell in drew on the grid: 800 W draining for a quarter second.
    assert report.account.to_json()["grid_j"] <= 800.0 * 0.3


def test_the_battery_carries_the_miners_through_a_short_cloud():
    trace = steps([(0, 1500.0), (1800, 0.0), (2100, 1500.0), (3600, 1500.0)])
    report = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_start=0.5)))
    s = report.series
    cloud = (s.t >= 1802) & (s.t < 2100)
    assert s.power_w[cloud].min() > 500.0  # mining went on through the five minutes
    assert s.grid_w[cloud].max() <= 1.0
    assert (s.battery_w[cloud] < 0).all()
    without = simulate(trace, cpu_fleet(1000.0), make_policy("follow", trace), start=0, end=3600,
                       plant=SimulatedMiner(cpu_fleet(1000.0)))
    assert report.figures.hashes > without.figures.hashes


def test_at_night_the_battery_serves_the_miners_only_where_the_policy_allows():
    # Surplus until 1 h, then night (four hours without), a grid that is clean at night.
    times = [0.0, 3600.0, 5 * 3600.0]
    trace = Trace(times, [1500.0, 0.0, 0.0], gco2_per_kwh=[300.0, 100.0, 100.0], interpolation="step")
    night = 3600.0 + 1800.0 + 60.0  # past the half hour a lull is carried
    follow = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_start=0.8)), tick_s=10.0)
    s = follow.series
    assert s.power_w[s.t >= night].max() == pytest.approx(0.0, abs=1e-6)
    gated = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_start=0.8)), tick_s=10.0, policy="carbon-cap",
                     carbon_cap=200.0)
    g = gated.series
    assert g.power_w[g.t >= night].max() > 10.0 and (g.battery_w[g.t >= night] <= 0).all()
    closed = run_with(trace, Battery(BatteryConfig(1.0, 1.0, soc_start=0.8)), tick_s=10.0, policy="carbon-cap",
                      carbon_cap=50.0)
    assert closed.series.power_w[closed.series.t >= night].max() == pytest.approx(0.0, abs=1e-6)


def test_a_battery_on_a_grid_budget_is_refused():
    from hashcore.report.account import AccountSettings

    trace = steps([(0, 1000.0), (60, 1000.0)])
    with pytest.raises(ConfigError, match="surplus"):
        simulate(trace, cpu_fleet(), make_policy("follow", trace), start=0, end=60,
                 battery=Battery(BatteryConfig(1.0, 1.0)), account=AccountSettings(budget_source="grid"))


def test_live_battery_readings(tmp_path):
    assert parse_battery_reading("0.42", "x").soc == 0.42
    assert parse_battery_reading("63", "x").soc == pytest.approx(0.63)
    reading = parse_battery_reading('{"soc": 0.5, "available_w": 800}', "x")
    assert (reading.soc, reading.available_w) == (0.5, 800.0)
    with pytest.raises(ConfigError):
        parse_battery_reading("full", "x")
    path = tmp_path / "battery.json"
    state = LiveBatteryState(str(path), BatteryConfig(10.0, 3.0), interval_s=1.0)
    state.refresh(0.0)
    assert state.available_w(0.0) == 0.0 and state.error is not None  # no file yet: counts as empty
    path.write_text('{"soc": 0.6, "available_w": 1200}')
    state.refresh(2.0)
    assert state.available_w(2.0) == 1200.0 and state.status(2.0)["soc"] == 0.6
    assert state.available_w(10.0) == 0.0  # stale: older than three polls
    path.write_text("0.05")
    state.refresh(11.0)
    assert state.available_w(11.0) == 0.0  # under the minimum state of charge
