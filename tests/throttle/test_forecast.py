"""Forecasts on the virtual clock: persistence and clear sky never read the future (the
signal they get raises if asked), perfect does; ramping ahead of a predicted drop;
making battery room for a predicted excess."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hashcore.app.inputs import load_trace
from hashcore.errors import ConfigError
from hashcore.throttle.battery import Battery, BatteryConfig
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.dispatch import DispatchConfig
from hashcore.throttle.forecast import (
    ClearSky,
    Forecast,
    FutureReadError,
    PastOnly,
    Perfect,
    Persistence,
    make_forecast,
    site_from_notes,
)
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.signals import Trace
from hashcore.throttle.simulation import SimulationReport, simulate

from .conftest import TRACES, cpu_fleet, steps


def test_the_past_only_signal_raises_for_any_time_after_now():
    trace = steps([(0, 100.0), (60, 200.0), (120, 200.0)])
    clock = VirtualClock(30.0)
    past = PastOnly(trace, clock)
    assert past.at(30.0).watts == 100.0 and past.at(0.0).watts == 100.0
    with pytest.raises(FutureReadError):
        past.at(30.001)
    clock.advance(60.0)
    assert past.at(90.0).watts == 200.0


def test_persistence_holds_the_recent_mean():
    trace = steps([(0, 100.0), (600, 400.0), (1200, 400.0)])
    clock = VirtualClock(900.0)
    forecast = Persistence(PastOnly(trace, clock), window_s=600.0, sample_s=60.0)
    # Eleven samples over the last ten minutes: 900 s back to 600 s at 400 W, 540 to 300 s at 100 W.
    assert forecast.predict(900.0, np.array([1000.0, 5000.0])) == pytest.approx([(6 * 400 + 5 * 100) / 11] * 2)


def test_the_clear_sky_forecast_reproduces_a_clear_day_from_its_site():
    trace = load_trace(TRACES / "solar-sunny.csv")
    site = site_from_notes(trace)
    assert site is not None and (site.lat, site.lon, site.pv_kw, site.load_kw) == (48.14, 11.58, 12.0, 3.0)
    noon = trace.start + 12 * 3600
    clock = VirtualClock(noon)
    forecast = ClearSky(PastOnly(trace, clock), site, trace.start, trace.end)
    assert forecast.cloud_index(noon) == pytest.approx(1.0, abs=0.01)
    times = noon + np.arange(0, 6 * 3600, 600.0)
    assert forecast.predict(noon, times) == pytest.approx(trace.watts_at(times), abs=60.0)


def test_the_clear_sky_forecast_scales_by_the_clouds_it_saw():
    trace = load_trace(TRACES / "solar-cloudy.csv")
    site = site_from_notes(trace)
    assert site is not None
    morning = trace.start + 9.5 * 3600  # overcast until 10:30
    forecast = ClearSky(PastOnly(trace, VirtualClock(morning)), site, trace.start, trace.end)
    # No surplus under the overcast: the array gave at most the load, well under a clear sky.
    assert forecast.cloud_index(morning) < 0.7
    with pytest.raises(ConfigError, match="clearsky"):
        make_forecast("clearsky", steps([(0, 1.0), (60, 1.0)]), VirtualClock(0.0))


def _day(forecast: str, trace: Trace, clock: VirtualClock, *, start: float, end: float,
         make: Callable[[VirtualClock], Forecast] | None = None) -> SimulationReport:
    fleet = cpu_fleet(3000.0)
    built = make(clock) if make is not None else make_forecast(forecast, trace, clock, start=trace.start,
                                                               end=trace.end)
    return simulate(trace, fleet, make_policy("follow", trace), start=start, end=end, tick_s=10.0,
                    plant=SimulatedMiner(fleet), forecast=built, clock=clock,
                    battery=Battery(BatteryConfig(4.0, 2.0, soc_start=0.8)), dispatch=DispatchConfig(lead_s=20.0))


@pytest.mark.parametrize("name", ["persistence", "clearsky"])
def test_a_causal_forecast_runs_a_cloudy_afternoon_without_reading_the_future(name):
    trace = load_trace(TRACES / "solar-cloudy.csv")
    start = trace.start + 10 * 3600
    clock = VirtualClock(start)
    report = _day(name, trace, clock, start=start, end=start + 3 * 3600)  # any peek would raise
    assert report.forecast == name and report.figures.hashes > 0


def test_the_perfect_forecast_does_read_the_future_so_the_guard_is_real():
    trace = load_trace(TRACES / "solar-cloudy.csv")
    start = trace.start + 10 * 3600
    clock = VirtualClock(start)
    with pytest.raises(FutureReadError):
        _day("perfect", trace, clock, start=start, end=start + 600, make=lambda c: Perfect(PastOnly(trace, c)))
    assert isinstance(make_forecast("perfect", trace, VirtualClock(start)), Perfect)


def test_ramping_ahead_of_a_predicted_drop_keeps_a_slow_fleet_inside_the_budget():
    # A fleet that takes 5 s to follow, and drops at odd seconds, inside a tick.
    trace = steps([(0, 1000.0), (301, 200.0), (601, 900.0), (901, 150.0), (1200, 150.0)])
    fleet = cpu_fleet(1000.0)
    over = {}
    for name in ("none", "perfect"):
        clock = VirtualClock(0.0)
        report = simulate(trace, fleet, make_policy("follow", trace), start=0, end=1200, tick_s=2.0,
                          plant=SimulatedMiner(fleet, lag_s=5.0), clock=clock,
                          forecast=make_forecast(name, trace, clock), dispatch=DispatchConfig(lead_s=10.0))
        over[name] = report.figures.energy_over_budget_j
    assert over["perfect"] < 0.3 * over["none"]


def test_a_forecast_makes_room_in_the_battery_for_the_excess_to_come():
    # An hour under the fleet's full power, then an hour of excess the battery could not
    # hold without first giving some of its charge to the miners.
    trace = steps([(0, 400.0), (3600, 2000.0), (7200, 2000.0)])
    fleet = cpu_fleet(1000.0)
    curtailed = {}
    for name in ("none", "persistence", "perfect"):
        clock = VirtualClock(0.0)
        report = simulate(trace, fleet, make_policy("follow", trace), start=0, end=7200, tick_s=10.0,
                          plant=SimulatedMiner(fleet), clock=clock, forecast=make_forecast(name, trace, clock),
                          battery=Battery(BatteryConfig(1.2, 1.0, soc_start=0.6)))
        curtailed[name] = report.curtailed_fraction
        assert report.battery is not None and report.battery["conservation_error_j"] == 0.0
    assert curtailed["none"] == pytest.approx(curtailed["persistence"])  # the recent past saw no excess coming
    assert curtailed["none"] > 0.1 and curtailed["perfect"] < 0.02
