"""Generated signals: pvlib's sun and windpowerlib's turbines give physical answers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from hashcore.errors import ConfigError
from hashcore.throttle import generate, grid, wind
from hashcore.throttle.traces import Table

SITE = (48.14, 11.58)  # Munich
MIDSUMMER = date(2024, 6, 21)


def _clouds(day: generate.Day, cover: float) -> Table:
    table = Table()
    table.times = list(day.epochs())
    table.columns = {"cloud_cover": [cover] * len(table.times)}
    return table


def test_pv_is_zero_at_night_and_peaks_near_solar_noon():
    day = generate.Day(MIDSUMMER, 2.0)
    pv = generate.pv_ac_watts(day, *SITE, pv_kw=10.0)
    hours = day.hours()
    assert pv[(hours < 4) | (hours > 22.5)].max() == 0.0
    # Solar noon at 11.58 E in UTC+2: 12:00 + (30 - 11.58) / 15 h + 1.8 min (equation of time) = 13:16.
    assert abs(hours[np.argmax(pv)] - 13.27) < 0.5
    assert 6_000 < pv.max() < 10_000  # a clear June noon, south-facing at 48 degrees: losses, no clipping


def test_the_solar_surplus_is_pv_minus_the_load_and_never_negative():
    trace = generate.solar_surplus(*SITE, MIDSUMMER, pv_kw=12.0, load_kw=3.0, utc_offset_h=2.0)
    watts = np.array(trace.watts)
    assert watts.min() == 0.0
    hours = (np.array(trace.times) - trace.start) / 3600
    assert watts[(hours < 6) | (hours > 21)].max() == 0.0  # the evening peak eats the last sun: a duck
    assert 3_000 < watts.max() < 8_000
    assert trace.notes[0].startswith("solar surplus made with hashcore trace solar (pvlib")


def test_clouds_cut_the_output():
    day = generate.Day(MIDSUMMER, 2.0)
    clear = generate.pv_ac_watts(day, *SITE, pv_kw=10.0)
    cloudy = generate.pv_ac_watts(day, *SITE, pv_kw=10.0, cloud_cover=np.full(len(day.epochs()), 0.8))
    assert cloudy.sum() < 0.7 * clear.sum()
    trace = generate.solar_surplus(*SITE, MIDSUMMER, 12.0, 3.0, utc_offset_h=2.0, clouds=_clouds(day, 80.0))
    assert trace.interpolation == "step" and max(trace.watts) < 3_000  # percent read as a fraction


def test_wind_power_stays_within_the_turbine_rating_with_cut_in_and_cut_out():
    speeds = np.array([0.0, 0.5, 5.0, 8.0, 12.0, 15.0, 18.0, 30.0])  # at 10 m
    power, hub, rated, nominal = wind.turbine_power(speeds, "E-53/800")
    assert hub == 73.0 and nominal == 800_000.0
    assert np.all(power >= 0) and power.max() <= rated
    assert power[0] == power[1] == 0.0  # 0.5 m/s at 10 m is 0.7 m/s at the hub: under cut-in
    assert power[-1] == 0.0  # 30 m/s at 10 m is over 25 m/s at the hub: cut out
    assert power[4] == rated  # 12 m/s at 10 m is 16 m/s at the hub: rated


def test_a_gusty_wind_day_is_within_rating_and_steps():
    speeds = wind.synthetic_wind(MIDSUMMER, 1.0, seed=3, mean_ms=4.5, front_ms=3.5)
    trace = wind.wind_surplus(MIDSUMMER, speeds, count=2, load_kw=50.0, utc_offset_h=1.0)
    watts = np.array(trace.watts)
    assert watts.min() >= 0.0 and watts.max() <= 2 * 810_000 - 50_000
    assert trace.interpolation == "step"
    assert np.abs(np.diff(watts)).max() > 100_000  # gusts arrive as steps
    assert wind.synthetic_wind(MIDSUMMER, 1.0, seed=3)[1].tolist() == \
        wind.synthetic_wind(MIDSUMMER, 1.0, seed=3)[1].tolist()  # seeded: the same series again


def test_the_grid_day_is_cleanest_at_midday_and_its_intensity_is_a_mix_of_known_factors():
    trace = grid.grid_day(51.0, 10.0, MIDSUMMER, budget_kw=5.0, utc_offset_h=2.0)
    intensity = np.array(trace.gco2_per_kwh)
    hours = (np.array(trace.times) - trace.start) / 3600
    assert min(grid.EMISSION_FACTORS.values()) <= intensity.min()
    assert intensity.max() <= max(grid.EMISSION_FACTORS.values())
    assert intensity[(hours > 11) & (hours < 15)].mean() < 0.5 * intensity[(hours > 19) & (hours < 23)].mean()
    assert set(trace.watts) == {5000.0} and trace.has_price


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generate.pv_ac_watts(generate.Day(MIDSUMMER, 0), 95.0, 0.0, 1.0), "out of range"),
        (lambda: wind.turbine_power(np.array([5.0]), "X-1/1"), "unknown turbine"),
        (lambda: generate.Day(MIDSUMMER, 0, step_s=7), "must divide a day"),
        (lambda: generate.parse_date("21/06/2024"), "not a date"),
    ],
)
def test_bad_generator_input_is_a_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
