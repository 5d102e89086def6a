"""The controller on a virtual clock: every assertion reads the simulated series.

Tick 2 s; the simulated fleet answers a new setting with a 0.25 s lag, as the engine
does at the end of a scan. "Settled" means within 2% of the fleet's controllable power.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashcore.throttle.actuators import DutyActuator, ThreadsActuator, apply_chain
from hashcore.throttle.controller import Controller, ControllerConfig
from hashcore.throttle.plant import SimulatedMiner

from .conftest import cpu_fleet, run, steps, ticks_after, two_backends

TICK = 2.0
BAND = 0.02 * 1000.0  # 2% of the 1000 W fleet


def settle_ticks(report, step_at: float, budget: float, until: float = float("inf")) -> int:
    """Ticks from the step until the power stays within the band (until the next step)."""
    after = ticks_after(report, step_at)
    after = after[report.series.t[after] < until]
    outside = np.nonzero(np.abs(report.series.power_w[after] - budget) > BAND)[0]
    return 0 if len(outside) == 0 else int(outside[-1]) + 1


def test_step_up_settles_in_one_tick_without_overshoot(fleet):
    report = run(steps([(0, 200), (120, 800), (300, 800)]), fleet)
    assert settle_ticks(report, 120, 800) <= 1
    after = ticks_after(report, 120)
    # The quarter-second lag's tail reads as a hair of gain: past the budget by < 0.01% of the step.
    assert report.series.power_w[after].max() <= 800 + 1e-4 * 600
    assert report.series.power_w[after[1:]] == pytest.approx(800, abs=0.1)


def test_step_down_settles_in_one_tick_and_never_rebounds(fleet):
    report = run(steps([(0, 900), (120, 150), (300, 150)]), fleet)
    after = ticks_after(report, 120)
    power = report.series.power_w[after]
    assert settle_ticks(report, 120, 150) <= 1
    assert power[0] > 150  # the transit tick: the old setting drains for a quarter second
    assert power[1:].min() >= 150 - 1e-4 * 750  # no undershoot after it
    assert power[1:] == pytest.approx(150, abs=0.1)


def test_ramp_is_followed_within_a_fraction_of_a_percent(fleet):
    ramp = steps([(0, 0), (600, 1000), (1200, 0)], interpolation="linear")
    report = run(ramp, fleet)
    f = report.figures
    assert f.tracking_error_mean_w is not None and f.tracking_error_mean_w < 0.005 * 1000
    # Going down, the budget sags by half a tick's slope before the next tick: 0.17% here.
    assert f.energy_over_budget_j < 0.005 * f.energy_j
    assert f.absorbed_fraction is not None and f.absorbed_fraction > 0.995


def test_cold_start_with_a_30_percent_model_error_converges_from_one_side(fleet):
    truth = cpu_fleet(1300.0)  # the fleet really draws 30% more than the model says
    report = run(steps([(0, 500), (200, 500)]), fleet, truth=truth)
    error = report.series.power_w[1:] - 500  # the first tick starts from a cold fleet
    assert error[0] == pytest.approx(0.3 * 500, rel=0.01)  # the model's mistake, once
    assert np.all(error >= -1e-6)  # approaches from above: never crosses the budget
    assert np.all(np.diff(error) <= 1e-9)  # ... and never turns back: no oscillation
    first_settled = int(np.nonzero(np.abs(error) <= BAND)[0][0])
    assert first_settled <= 8  # 150 W -> under 20 W: halving every other tick
    assert report.series.gain[-1] == pytest.approx(1.3, rel=0.01)


def test_once_the_gain_is_learned_later_steps_land_at_once(fleet):
    truth = cpu_fleet(1300.0)
    report = run(steps([(0, 500), (120, 900), (240, 100), (360, 100)]), fleet, truth=truth)
    assert settle_ticks(report, 120, 900, until=240) <= 1
    assert settle_ticks(report, 240, 100) <= 1


def test_meter_noise_does_not_make_it_oscillate(fleet):
    report = run(steps([(0, 600), (600, 600)]), fleet, noise=0.03)
    power = report.series.power_w[10:]
    assert abs(power.mean() - 600) < 0.01 * 600
    assert power.std() < 0.03 * 600  # the command jitters less than the meter does
    gain = report.series.gain  # adapt_rate 0.5 passes sqrt(0.5 / 1.5) = 58% of the noise into the gain
    assert gain.min() > 0.9 and gain.max() < 1.1


def test_budget_under_the_paused_floor_pauses_everything_and_work_resumes():
    fleet = cpu_fleet(1000.0, paused_watts=100.0)  # an ASIC-like fleet: 100 W asleep
    report = run(steps([(0, 600), (100, 40), (200, 700), (300, 700)]), fleet)
    s = report.series
    paused = ticks_after(report, 100)[:50]
    assert s.power_w[paused[1:]] == pytest.approx(100.0, abs=0.05)
    assert s.hashrate_hs[paused[2:]] == pytest.approx(0.0, abs=1e-3 * s.hashrate_hs.max())
    resumed = ticks_after(report, 200)
    assert s.power_w[resumed[1:]] == pytest.approx(700.0, abs=0.1)
    f = report.figures
    assert f.floor_energy_j == pytest.approx((100 - 40) * 100, rel=0.01)  # unavoidable: asleep above budget
    assert f.energy_over_budget_j < 0.01 * f.energy_j  # only the transit ticks


def test_a_budget_over_full_power_runs_everything_at_full_duty(fleet):
    plant = SimulatedMiner(fleet)
    controller = Controller(fleet, plant)
    command = controller.step(5000.0)
    assert command.fractions == {"c": 1.0}
    assert plant.duty("c") == 1.0 and plant.active_threads("c") == 4
    assert command.target_w == 1000.0


def test_cheapest_backend_runs_first_and_the_dearer_one_only_beyond_it():
    fleet = two_backends()
    assert fleet.names == ["c", "reference"]
    controller = Controller(fleet, SimulatedMiner(fleet))
    assert controller.step(450.0).fractions == {"c": 0.75, "reference": 0.0}
    assert controller.step(800.0).fractions == {"c": 1.0, "reference": 0.5}


def test_threads_first_then_duty_and_a_tiny_fraction_rounds_down_to_a_pause():
    fleet = cpu_fleet(threads=4)
    plant = SimulatedMiner(fleet, min_duty=0.2)
    chain = [ThreadsActuator(plant), DutyActuator(plant)]
    assert apply_chain(chain, "c", 0.3) == pytest.approx(0.3)
    assert (plant.active_threads("c"), plant.duty("c")) == (2, pytest.approx(0.6))
    assert apply_chain(chain, "c", 0.04) == 0.0  # one thread at 16% duty: under the minimum
    assert plant.duty("c") == 0.0
    assert apply_chain(chain, "c", 0.0) == 0.0
    assert (plant.active_threads("c"), plant.duty("c")) == (0, 0.0)


def test_the_gain_learns_only_from_steady_ticks():
    fleet = cpu_fleet()
    controller = Controller(fleet, SimulatedMiner(fleet), config=ControllerConfig(adapt_rate=1.0))
    controller.step(500.0)
    controller.step(800.0, measured_w=650.0)  # a tick before any other: nothing to compare with
    assert controller.gain == 1.0
    controller.step(800.0, measured_w=560.0)  # that tick changed setting mid-way: ignored
    assert controller.gain == 1.0
    controller.step(800.0, measured_w=400.0)  # steady at 800 modelled, 400 measured
    assert controller.gain == pytest.approx(0.5)


@pytest.mark.parametrize("adapt_rate", [0.0, 1.5])
def test_gains_outside_their_range_are_refused(adapt_rate):
    with pytest.raises(Exception, match="adapt_rate"):
        ControllerConfig(adapt_rate=adapt_rate)
