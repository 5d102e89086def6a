"""Full-day replays of the sample traces on the virtual clock.

Tolerance (also in traces/README.md): with the power model right, energy over the
budget is at most 0.2% of the energy used, and the only ticks past the budget by more
than 2% of full power are the ones the budget fell in (the old setting drains for a
quarter second). With the fleet really drawing 20% more than the model and a meter
with 2% noise, energy over the budget stays under 1%. Either way at least 99% of the
usable surplus is absorbed.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashcore.app.inputs import load_trace

from .conftest import SAMPLES, TRACES, cpu_fleet, run

#: Each sample with a fleet sized to its site, and its policy.
SITES = {
    "solar-sunny.csv": (5_000.0, {}),
    "solar-cloudy.csv": (5_000.0, {}),
    "wind-gusty.csv": (800_000.0, {}),
    "grid-carbon.csv": (5_000.0, {"policy": "carbon-cap", "carbon_cap": 250.0}),
}


def test_every_sample_trace_has_a_site():
    assert set(SITES) == set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_a_day_of_each_sample_stays_inside_the_budget(name):
    trace = load_trace(TRACES / name)
    watts, options = SITES[name]
    report = run(trace, cpu_fleet(watts), tick_s=3.0, **options)
    f, s = report.figures, report.series
    assert f.seconds == pytest.approx(86_400)
    assert f.energy_over_budget_j <= 0.002 * f.energy_j
    assert f.absorbed_fraction is not None and f.absorbed_fraction >= 0.99
    over = s.power_w - np.maximum(s.budget_w, 0.0) > 0.02 * watts
    fell = np.concatenate([[False], np.diff(s.budget_w) < 0])
    assert not np.any(over & ~fell)
    if f.steps:
        assert f.settle_time_s is not None and f.settle_time_s <= 2 * 3.0


@pytest.mark.parametrize("name", SAMPLES)
def test_a_day_with_a_wrong_model_and_a_noisy_meter_stays_within_one_percent(name):
    trace = load_trace(TRACES / name)
    watts, options = SITES[name]
    report = run(trace, cpu_fleet(watts), truth=cpu_fleet(1.2 * watts), noise=0.02, tick_s=3.0, **options)
    f = report.figures
    assert f.energy_over_budget_j <= 0.01 * f.energy_j
    assert f.absorbed_fraction is not None and f.absorbed_fraction >= 0.99


def test_the_carbon_cap_mines_only_in_the_clean_hours():
    trace = load_trace(TRACES / "grid-carbon.csv")
    report = run(trace, cpu_fleet(5_000.0), policy="carbon-cap", carbon_cap=250.0)
    s = report.series
    mining = s.power_w > 1.0
    assert s.gco2_per_kwh[mining].max() < 250.0 * 1.001
    assert mining.any() and not mining.all()
    assert report.figures.co2_g is not None
    # Less carbon per kWh than mining around the clock at the same budget.
    always = run(trace, cpu_fleet(5_000.0))
    assert report.figures.co2_g / report.figures.energy_j < always.figures.co2_g / always.figures.energy_j


def test_the_simulation_is_a_function_of_its_inputs_not_of_the_wall():
    trace = load_trace(TRACES / "solar-cloudy.csv")
    first = run(trace, cpu_fleet(5_000.0), noise=0.02)
    again = run(trace, cpu_fleet(5_000.0), noise=0.02)
    assert first.figures == again.figures
