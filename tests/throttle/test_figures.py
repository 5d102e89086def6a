"""The figures' definitions, on ticks small enough to work out by hand."""

from __future__ import annotations

import pytest

from hashcore.throttle.figures import FigureBook


def test_over_budget_floor_available_and_absorbed_by_hand():
    book = FigureBook(paused_w=100.0, full_w=1000.0)
    book.add(0, 10, budget_w=500, power_w=600)  # 100 W over the budget
    book.add(10, 10, budget_w=50, power_w=100)  # paused: 50 W over, all of it unavoidable
    book.add(20, 10, budget_w=2000, power_w=1000)  # the budget is more than the fleet can use
    book.add(30, 10, budget_w=0, power_w=300)  # 200 W avoidable + 100 W floor
    f = book.figures()
    assert f.energy_j == (600 + 100 + 1000 + 300) * 10
    assert f.energy_over_budget_j == (100 + 0 + 0 + 200) * 10
    assert f.floor_energy_j == (0 + 50 + 0 + 100) * 10
    assert f.renewable_available_j == (500 + 50 + 1000 + 0) * 10
    assert f.renewable_absorbed_j == (500 + 50 + 1000 + 0) * 10
    assert f.absorbed_fraction == 1.0
    assert f.energy_inside_budget_j == f.renewable_absorbed_j


def test_tracking_error_counts_only_ticks_with_the_budget_above_the_paused_floor():
    book = FigureBook(paused_w=100.0, full_w=1000.0)
    book.add(0, 1, budget_w=500, power_w=520)  # counted: 20
    book.add(1, 1, budget_w=80, power_w=100)  # under the floor: not counted
    book.add(2, 1, budget_w=3000, power_w=990)  # counted against full power: 10
    f = book.figures()
    assert f.tracking_error_mean_w == pytest.approx(15.0)
    assert f.tracking_error_p95_w == pytest.approx(19.5)


def test_absorbed_fraction_is_what_was_used_of_the_usable_surplus():
    book = FigureBook(paused_w=0.0, full_w=1000.0)
    book.add(0, 10, budget_w=400, power_w=300)
    book.add(10, 10, budget_w=400, power_w=500)
    f = book.figures()
    assert f.renewable_available_j == 8000
    assert f.renewable_absorbed_j == 3000 + 4000
    assert f.absorbed_fraction == pytest.approx(7 / 8)


def test_settling_time_runs_to_the_end_of_the_last_tick_outside_the_band():
    book = FigureBook(paused_w=0.0, full_w=1000.0, settle_band=0.02)  # band 20 W, step > 100 W
    for t, budget, power in [(0, 200, 200), (2, 800, 600), (4, 800, 790), (6, 800, 830), (8, 800, 800),
                             (10, 800, 800), (12, 300, 310), (14, 300, 300)]:
        book.add(t, 2, budget, power)
    f = book.figures()
    assert f.steps == 2
    assert f.settle_time_s == 6.0  # the step at 2 s: outside until the tick ending at 8 s
    assert f.settle_time_p50_s == 3.0  # the step at 12 s: settled at once (median of 6 and 0)
    assert f.overshoot_w == pytest.approx(30.0)


def test_co2_and_cost_need_the_signal_to_carry_them():
    book = FigureBook(paused_w=0.0, full_w=1000.0)
    book.add(0, 3600, budget_w=1000, power_w=1000, gco2_per_kwh=300, price=0.2)
    f = book.figures()
    assert f.co2_g == pytest.approx(300.0) and f.cost == pytest.approx(0.2)
    book.add(3600, 1, budget_w=1000, power_w=1000)
    assert book.figures().co2_g is None and book.figures().cost is None


def test_an_empty_run_has_no_ratio():
    f = FigureBook(0.0, 10.0).figures()
    assert f.absorbed_fraction is None and f.tracking_error_mean_w is None and f.settle_time_s is None


def test_a_budget_that_keeps_moving_after_a_step_is_tracking_not_settling():
    book = FigureBook(paused_w=0.0, full_w=1000.0)  # band 50 W, step > 100 W
    book.add(0, 2, 100, 100)
    book.add(2, 2, 400, 400)  # a step, settled at once
    for k in range(10):  # then a ramp of 60 W a tick, followed a tick late
        book.add(4 + 2 * k, 2, 460 + 60 * k, 400 + 60 * k)
    f = book.figures()
    assert f.steps == 1 and f.settle_time_s == 0.0


def test_a_long_live_run_keeps_the_mean_whole_and_the_p95_recent():
    book = FigureBook(paused_w=0.0, full_w=1000.0, max_samples=100)
    for k in range(1000):
        book.add(k, 1, 500, 500 + (10 if k < 900 else 30))
    f = book.figures()
    assert f.tracking_error_mean_w == pytest.approx(12.0)
    assert f.tracking_error_p95_w == pytest.approx(30.0)
    assert len(book.errors) <= 100
