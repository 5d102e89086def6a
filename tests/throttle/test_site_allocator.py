"""The site allocator on made-up times: who runs, at what power, and when orders go out."""

from __future__ import annotations

import math

import pytest

from hashcore.errors import ConfigError
from hashcore.throttle.site import (
    READ_ONLY,
    REFUSED,
    SLEEP,
    TARGET,
    TIMEOUT,
    MinerReading,
    MinerRules,
    Order,
    SiteAllocator,
    SiteBook,
    SiteRules,
)
from tests.throttle.site_readings import reading

#: J/TH of three miners: an ASIC, a good CPU and a poor one (watts / (hashrate / 1e12)).
FLEET = {"asic": 20.0, "good": 3e5, "poor": 6e5}


def fleet(max_watts: float = 10.0, **rules: float) -> SiteAllocator:
    options = {"max_watts": max_watts, "min_watts": 3.0, "min_on_s": 0.0, "min_off_s": 0.0, **rules}
    return SiteAllocator({name: MinerRules(**options) for name in FLEET}, SiteRules(headroom=0.0))


def running(alloc: SiteAllocator, watts: dict[str, float] | None = None) -> dict[str, MinerReading]:
    """Each miner as the allocator left it: drawing what it was allotted."""
    plans = alloc.plans()
    out = {}
    for name, j in FLEET.items():
        plan = plans[name]
        asleep = plan.state in ("asleep", "sleeping")
        w = (watts or {}).get(name, 0.0 if asleep else plan.allotted_w)
        out[name] = reading(w, j, asleep=asleep, target=plan.allotted_w if not asleep else None)
    return out


def awake(alloc: SiteAllocator) -> set[str]:
    return {n for n, p in alloc.plans().items() if p.state in ("on", "waking")}


def test_the_budget_goes_to_the_cheapest_joules_per_terahash_first() -> None:
    alloc = fleet()
    first = {n: reading(10.0, j) for n, j in FLEET.items()}
    result = alloc.step(0.0, 25.0, first)
    allotted = {n: p.allotted_w for n, p in result.plans.items()}
    assert allotted == {"asic": 10.0, "good": 10.0, "poor": 5.0}
    assert [result.plans[n].rank for n in ("asic", "good", "poor")] == [0, 1, 2]


@pytest.mark.parametrize(("budget", "on"), [
    (30.0, {"asic", "good", "poor"}), (23.0, {"asic", "good", "poor"}), (22.0, {"asic", "good"}),
    (15.0, {"asic", "good"}), (12.0, {"asic"}), (4.0, {"asic"}), (2.0, set()),
])
def test_a_falling_budget_curtails_the_dearest_first_and_the_cheapest_last(budget: float, on: set[str]) -> None:
    alloc = fleet()
    alloc.step(0.0, 30.0, {n: reading(10.0, j) for n, j in FLEET.items()})
    alloc.step(1.0, budget, running(alloc))
    assert awake(alloc) == on


def test_a_miner_that_only_sleeps_and_wakes_runs_whole_or_not_at_all() -> None:
    alloc = fleet()
    readings = {n: reading(10.0, j, control=SLEEP) for n, j in FLEET.items()}
    result = alloc.step(0.0, 25.0, readings)
    assert {n: p.allotted_w for n, p in result.plans.items()} == {"asic": 10.0, "good": 10.0, "poor": 0.0}
    assert not [o for o in result.orders if o.action == "target"]
    assert Order("poor", "sleep") in result.orders


def test_a_miner_switched_on_stays_on_for_its_minimum_time_at_its_floor() -> None:
    alloc = fleet(min_on_s=10.0, min_off_s=10.0)
    alloc.step(0.0, 30.0, {n: reading(10.0, j) for n, j in FLEET.items()})
    alloc.step(5.0, 30.0, running(alloc))
    # The budget falls to 12 W at t=6: everyone is still inside min_on (changed at t=0 on first contact? no:
    # first contact takes the miners as they are, so no lock yet); switch one off and back on to lock it.
    alloc.step(6.0, 12.0, running(alloc))
    assert awake(alloc) == {"asic"}
    alloc.step(7.0, 30.0, running(alloc))
    assert awake(alloc) == {"asic"}, "asleep less than min_off_s: it may not wake yet"
    alloc.step(16.5, 30.0, running(alloc))
    assert awake(alloc) == {"asic", "good", "poor"}
    result = alloc.step(17.0, 12.0, running(alloc))
    plans = result.plans
    assert awake(alloc) == {"asic", "good", "poor"}, "on less than min_on_s: it may not sleep yet"
    assert plans["poor"].locked == "min_on" and plans["poor"].allotted_w == 3.0  # held at its floor
    assert plans["good"].allotted_w == 3.0
    alloc.step(27.0, 12.0, running(alloc))
    assert awake(alloc) == {"asic"}


def test_a_miner_locked_on_while_its_full_power_is_unknown_is_given_no_more_than_is_left() -> None:
    """Nothing was set aside for its floor (it is not known), so nothing is handed back."""
    alloc = SiteAllocator({"a": MinerRules(sleep_watts=0.25, min_on_s=10)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 1.0, {"a": MinerReading(None, None, True, TARGET)})
    result = alloc.step(1.0, 1.0, {"a": MinerReading(None, None, False, TARGET)})
    assert result.plans["a"].locked == "min_on" and result.allotted_w <= 1.0


def test_hysteresis_keeps_a_miner_at_the_margin_from_waking() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10, min_watts=4, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, wake_margin_w=2.0))
    alloc.step(0.0, 3.0, {"a": reading(10.0, 1e5)})
    assert awake(alloc) == set()
    for t, budget in enumerate([4.5, 5.0, 5.9], start=1):
        alloc.step(float(t), budget, {"a": reading(0.0, 1e5, asleep=True)})
        assert awake(alloc) == set(), f"woke at {budget} W, under its 4 W floor + 2 W margin"
    alloc.step(9.0, 6.0, {"a": reading(0.0, 1e5, asleep=True)})
    assert awake(alloc) == {"a"}
    alloc.step(10.0, 4.5, {"a": reading(6.0, 1e5)})
    assert awake(alloc) == {"a"}, "a running miner stays on down to its floor"


def test_a_sleeping_miner_takes_a_running_ones_place_only_when_clearly_cheaper() -> None:
    alloc = SiteAllocator({n: MinerRules(max_watts=10, min_on_s=0, min_off_s=0) for n in ("a", "b")},
                          SiteRules(headroom=0.0, rank_margin=0.1))
    alloc.step(0.0, 20.0, {"a": reading(10.0, 1.0e5), "b": reading(10.0, 1.2e5)})
    alloc.step(1.0, 10.0, {"a": reading(10.0, 1.0e5), "b": reading(10.0, 1.2e5)})
    assert awake(alloc) == {"a"}
    b_asleep = MinerReading(0.0, 0.0, True, TARGET)
    for t in range(2, 40):  # a's measured J/TH drifts to 1.25e5: b, asleep at 1.2e5, is 4 % cheaper
        alloc.step(float(t), 10.0, {"a": reading(10.0, 1.25e5), "b": b_asleep})
    assert awake(alloc) == {"a"}
    for t in range(40, 80):  # now 1.5e5: b is 20 % cheaper and takes its place
        a_now = reading(10.0, 1.5e5) if "a" in awake(alloc) else MinerReading(0.0, 0.0, True, TARGET)
        alloc.step(float(t), 10.0, {"a": a_now, "b": b_asleep})
        if awake(alloc) == {"b"}:
            break
    assert awake(alloc) == {"b"}


def test_a_target_rises_no_faster_than_its_ramp_and_falls_at_once() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=100, min_watts=10, ramp_w_per_s=5, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0))
    alloc.step(0.0, 20.0, {"a": reading(20.0, 1e5, target=20.0)})
    targets = []
    for t in range(1, 5):
        result = alloc.step(float(t), 100.0, {"a": reading(alloc.plans()["a"].allotted_w, 1e5)})
        targets.append(result.plans["a"].allotted_w)
    assert targets == [25.0, 30.0, 35.0, 40.0]
    result = alloc.step(5.0, 12.0, {"a": reading(40.0, 1e5)})
    assert result.plans["a"].allotted_w == 12.0


def test_a_waking_miner_ramps_up_from_its_floor_not_from_its_old_target() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=100, min_watts=10, ramp_w_per_s=20, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0))
    alloc.step(0.0, 100.0, {"a": reading(100.0, 1e5, target=100.0)})
    alloc.step(1.0, 0.0, {"a": reading(100.0, 1e5, target=100.0)})
    assert alloc.plans()["a"].state == "sleeping"
    targets = []
    for t in range(2, 7):
        plan = alloc.plans()["a"]
        asleep = plan.state in ("asleep", "sleeping")
        now = reading(0.0, 1e5, asleep=True) if asleep else reading(plan.allotted_w, 1e5, target=plan.allotted_w)
        targets.append(alloc.step(float(t), 100.0, {"a": now}).plans["a"].allotted_w)
    assert targets == [20.0, 40.0, 60.0, 80.0, 100.0]


def test_miners_waking_together_rise_no_faster_than_the_sites_ramp() -> None:
    """Each wakes from its sleep power, whatever target it had before it slept."""
    rules = MinerRules(max_watts=100, min_watts=5, min_on_s=0, min_off_s=0)
    alloc = SiteAllocator({"a": rules, "b": rules}, SiteRules(headroom=0.0, site_ramp_w_per_s=10.0))
    full = {"a": reading(100.0, 1e5, target=100.0), "b": reading(100.0, 2e5, target=100.0)}
    alloc.step(0.0, 200.0, full)
    alloc.step(100.0, 0.0, full)
    asleep = {"a": reading(0.0, 1e5, asleep=True), "b": reading(0.0, 2e5, asleep=True)}
    result = alloc.step(101.0, 200.0, asleep)
    assert result.allotted_w == 10.0 and awake(alloc) == {"a"}


@pytest.mark.parametrize("whole", [MinerReading(None, None, False, SLEEP), MinerReading(8.0, None, False, SLEEP)],
                         ids=["unmetered", "under-its-max"])
def test_a_miner_running_whole_takes_none_of_the_sites_ramp(whole: MinerReading) -> None:
    """It was counted rising to its full power every tick (from nothing, or from what it
    draws), and the site's ramp, spent, cut the miners after it toward their floors."""
    alloc = SiteAllocator({"whole": MinerRules(max_watts=10, j_per_th=1.0, min_on_s=0, min_off_s=0),
                           "a": MinerRules(max_watts=100, min_watts=5, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, site_ramp_w_per_s=5.0))
    alloc.step(0.0, 30.0, {"whole": whole, "a": reading(20.0, 1e5, target=20.0)})
    targets = [alloc.step(float(t), 100.0, {"whole": whole, "a": reading(20.0 + 5 * (t - 1), 1e5)})
               .plans["a"].allotted_w for t in (1, 2, 3)]
    assert targets == [25.0, 30.0, 35.0]


def test_the_rank_is_a_ratio_of_smoothed_power_and_hashrate() -> None:
    """A miner read just after it woke (full power, next to no hashrate yet) is not
    ranked for long at the absurd J/TH of that one reading."""
    alloc = SiteAllocator({"a": MinerRules(max_watts=10)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 10.0, {"a": MinerReading(10.0, 1e6, False, TARGET, None)})  # 1e7 J/TH
    for t in range(1, 4):
        alloc.step(float(t), 10.0, {"a": reading(10.0, 1e5)})
    assert 1e5 < alloc.plans()["a"].j_per_th < 2.5e5  # a smoothed ratio would still be above 5e6


def test_a_hashrate_of_next_to_nothing_ranks_the_miner_dearest_and_does_not_stop_the_site() -> None:
    """A few H/s from a miner of watts is a terahash that is zero in floating point."""
    rules = MinerRules(max_watts=10, min_on_s=0, min_off_s=0)
    alloc = SiteAllocator({"a": rules, "b": rules}, SiteRules(headroom=0.0))
    result = alloc.step(0.0, 10.0, {"a": MinerReading(10.0, 5e-324, False, TARGET, None), "b": reading(10.0, 1e6)})
    assert result.plans["a"].j_per_th == math.inf and result.plans["a"].rank == 1


def test_a_target_reported_as_nan_is_no_target_and_the_order_is_sent_again() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, confirm_ticks=2))
    assert alloc.step(0.0, 6.0, {"a": reading(6.0, 1e5)}).orders == (Order("a", "target", 6.0),)
    garbled = reading(6.0, 1e5, target=math.nan)
    assert alloc.step(1.0, 6.0, {"a": garbled}).orders == ()
    assert alloc.step(2.0, 6.0, {"a": garbled}).orders == (Order("a", "target", 6.0),)


def test_a_rise_waits_until_the_cut_that_makes_room_for_it_is_measured() -> None:
    rules = MinerRules(max_watts=8, min_watts=2, min_on_s=0, min_off_s=0)
    alloc = SiteAllocator({"a": rules, "b": rules}, SiteRules(headroom=0.0, rank_margin=0.0))
    alloc.step(0.0, 10.0, {"a": reading(8.0, 1e5, target=8.0), "b": reading(2.0, 2e5, target=2.0)})
    for t in range(1, 40):  # a's J/TH worsens until b is the cheaper
        result = alloc.step(float(t), 10.0, {"a": reading(8.0, 3e5, target=8.0), "b": reading(2.0, 2e5, target=2.0)})
        if result.plans["b"].rank == 0:
            break
    assert result.plans["b"].rank == 0
    # a is cut at once; b's rise waits: a still draws 8 W until a reading shows the cut.
    assert (result.plans["a"].allotted_w, result.plans["b"].allotted_w) == (2.0, 2.0)
    result = alloc.step(float(t + 1), 10.0, {"a": reading(2.0, 3e5, target=2.0), "b": reading(2.0, 2e5, target=2.0)})
    assert (result.plans["a"].allotted_w, result.plans["b"].allotted_w) == (2.0, 8.0)


def test_a_cheaper_miner_waits_asleep_until_the_dearer_one_it_replaces_stops_drawing() -> None:
    alloc = SiteAllocator({"cheap": MinerRules(max_watts=10, j_per_th=1e5, min_on_s=0, min_off_s=0),
                           "dear": MinerRules(max_watts=10, j_per_th=3e5, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, rank_margin=0.0))
    asleep = MinerReading(0.0, 0.0, True, SLEEP)
    first = alloc.step(0.0, 10.0, {"cheap": asleep, "dear": MinerReading(10.0, 10.0 / 3e5 * 1e12, False, SLEEP)})
    assert (first.plans["cheap"].state, first.plans["dear"].state) == ("asleep", "sleeping")
    assert [(o.address, o.action) for o in first.orders] == [("dear", "sleep")]
    second = alloc.step(1.0, 10.0, {"cheap": asleep, "dear": asleep})
    assert second.plans["cheap"].state == "waking"


def test_at_most_wake_batch_miners_wake_in_one_tick() -> None:
    names = [f"m{i}" for i in range(6)]
    alloc = SiteAllocator({n: MinerRules(max_watts=10, min_on_s=0, min_off_s=0) for n in names},
                          SiteRules(headroom=0.0, wake_batch=2))
    asleep = {n: reading(0.0, 1e5 + i, asleep=True) for i, n in enumerate(names)}
    alloc.step(0.0, 0.0, asleep)
    counts = []
    for t in range(1, 5):
        before = {n for n, p in alloc.plans().items() if p.state in ("on", "waking")}
        alloc.step(float(t), 100.0, {n: reading(10.0, 1e5) if n in before else asleep[n] for n in names})
        counts.append(sum(p.state == "waking" for p in alloc.plans().values()))
    assert counts == [2, 2, 2, 0]


def test_a_miner_that_stops_answering_is_counted_at_its_last_power() -> None:
    alloc = fleet()
    alloc.step(0.0, 25.0, {n: reading(8.0 if n == "asic" else 10.0, j) for n, j in FLEET.items()})
    readings = running(alloc)
    readings["asic"] = TIMEOUT  # type: ignore[assignment]
    result = alloc.step(1.0, 25.0, readings)
    assert result.plans["asic"].state == "unresponsive" and result.plans["asic"].counted_w == 8.0
    assert result.plans["good"].allotted_w + result.plans["poor"].allotted_w == pytest.approx(17.0)


def test_a_miner_never_measured_that_stops_answering_is_counted_at_its_max() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10), "b": MinerRules(max_watts=10)}, SiteRules(headroom=0.0))
    result = alloc.step(0.0, 15.0, {"a": TIMEOUT, "b": reading(10.0, 1e5)})
    assert result.plans["a"].counted_w == 10.0
    assert result.plans["b"].allotted_w == 5.0


def test_a_refused_miner_draws_its_sleep_power_and_its_share_goes_to_the_others_at_once() -> None:
    alloc = fleet(sleep_watts=1.0)
    alloc.step(0.0, 21.0, {n: reading(10.0, j) for n, j in FLEET.items()})
    assert awake(alloc) == {"asic", "good"}
    readings = running(alloc)
    readings["good"] = REFUSED  # type: ignore[assignment]
    result = alloc.step(1.0, 21.0, readings)
    assert result.plans["good"].state == "down" and result.plans["good"].counted_w == 1.0
    assert result.plans["poor"].state == "waking"
    # It returns, running at full power as a restarted miner does: taken back into the order.
    readings = running(alloc)
    readings["good"] = reading(10.0, FLEET["good"])
    result = alloc.step(2.0, 21.0, readings)
    assert result.plans["good"].state == "on" and result.plans["good"].rank == 1
    assert result.plans["poor"].state in ("asleep", "sleeping")


def test_a_miner_back_from_a_restart_in_another_state_carries_no_lock_the_site_did_not_set() -> None:
    """Put to sleep at t=100 (min_off 60), it restarts and comes back hashing at t=102: it
    is dearer and there is no room, so it is put back to sleep at once; the sleep of t=100
    is no switch-on to hold it on at its floor for min_on_s."""
    rules = MinerRules(max_watts=10, min_watts=3, min_on_s=60, min_off_s=60)
    alloc = SiteAllocator({"a": rules, "b": rules}, SiteRules(headroom=0.0))
    full = {"a": reading(10.0, 1e5, target=10.0), "b": reading(10.0, 2e5, target=10.0)}
    alloc.step(0.0, 20.0, full)
    assert alloc.step(100.0, 10.0, full).orders == (Order("b", "sleep"),)
    alloc.step(101.0, 10.0, {"a": full["a"], "b": REFUSED})
    result = alloc.step(102.0, 10.0, {"a": full["a"], "b": reading(10.0, 2e5)})
    assert result.plans["b"].locked is None and Order("b", "sleep") in result.orders
    assert result.plans["a"].allotted_w == 10.0
    # Back in the state it was ordered into, its lock holds as before.
    alloc.step(103.0, 10.0, {"a": full["a"], "b": REFUSED})
    result = alloc.step(104.0, 30.0, {"a": full["a"], "b": reading(0.0, 2e5, asleep=True)})
    assert result.plans["b"].locked == "min_off" and result.plans["b"].state == "asleep"


def test_a_wake_sent_again_to_a_miner_found_asleep_starts_its_min_on_lock() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10, min_on_s=30, min_off_s=30)},
                          SiteRules(headroom=0.0, confirm_ticks=2))
    alloc.step(0.0, 10.0, {"a": reading(10.0, 1e5, target=10.0)})  # met running: no lock
    asleep = reading(0.0, 1e5, asleep=True, target=10.0)
    assert alloc.step(1.0, 10.0, {"a": asleep}).orders == ()
    assert alloc.step(2.0, 10.0, {"a": asleep}).orders == (Order("a", "wake"),)
    result = alloc.step(3.0, 0.0, {"a": reading(10.0, 1e5, target=10.0)})
    assert result.plans["a"].locked == "min_on" and result.plans["a"].state == "on"


def test_a_read_only_miner_is_counted_at_what_it_reports() -> None:
    alloc = fleet()
    readings = {n: reading(10.0, j) for n, j in FLEET.items()}
    readings["asic"] = reading(7.0, 20.0, control=READ_ONLY)
    result = alloc.step(0.0, 20.0, readings)
    assert result.plans["asic"].state == "read-only" and result.plans["asic"].rank is None
    assert not [o for o in result.orders if o.address == "asic"]
    assert result.plans["good"].allotted_w == 10.0 and result.plans["poor"].allotted_w == 3.0


def test_orders_are_sent_again_only_when_the_miner_reports_otherwise_for_confirm_ticks() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, confirm_ticks=2))
    first = alloc.step(0.0, 6.0, {"a": reading(10.0, 1e5)})
    assert first.orders == (Order("a", "target", 6.0),)
    assert alloc.step(1.0, 6.2, {"a": reading(6.0, 1e5, target=6.0)}).orders == ()  # inside the deadband
    assert alloc.step(2.0, 6.0, {"a": reading(10.0, 1e5, target=None)}).orders == ()
    assert alloc.step(3.0, 6.0, {"a": reading(10.0, 1e5, target=None)}).orders == (Order("a", "target", 6.0),)


def test_a_wake_carries_its_target_first() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=10, min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 0.0, {"a": reading(0.0, 1e5, asleep=True)})
    result = alloc.step(1.0, 7.0, {"a": reading(0.0, 1e5, asleep=True)})
    assert result.orders == (Order("a", "target", 7.0), Order("a", "wake"))


def test_the_trim_grows_while_the_site_measures_over_its_budget_and_shrinks_after() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=100, min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0, trim_gain=0.5))
    alloc.step(0.0, 50.0, {"a": reading(50.0, 1e5)})
    result = alloc.step(1.0, 50.0, {"a": reading(56.0, 1e5)}, measured_w=56.0)
    assert alloc.trim_w == pytest.approx(3.0) and result.usable_w == pytest.approx(47.0)
    for t in range(2, 12):
        alloc.step(float(t), 50.0, {"a": reading(40.0, 1e5)}, measured_w=40.0)
    assert alloc.trim_w == 0.0


def test_a_budget_step_is_measured_against_the_tick_it_ended_not_the_new_one() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=100, min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 50.0, {"a": reading(50.0, 1e5)})
    alloc.step(1.0, 10.0, {"a": reading(50.0, 1e5)}, measured_w=49.0)  # under the 50 W it ran against
    assert alloc.trim_w == 0.0


def test_after_a_step_down_the_trim_takes_its_share_of_the_new_budget_not_its_old_watts() -> None:
    alloc = SiteAllocator({"a": MinerRules(max_watts=1000, min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 1000.0, {"a": reading(1000.0, 1e5)})
    alloc.step(1.0, 1000.0, {"a": reading(1050.0, 1e5)}, measured_w=1050.0)
    assert alloc.trim_w == pytest.approx(25.0)
    result = alloc.step(2.0, 100.0, {"a": reading(1000.0, 1e5)}, measured_w=1000.0)
    assert result.usable_w == pytest.approx(97.5) and alloc.trim_w == pytest.approx(2.5)


def test_bad_rules_are_refused_with_the_field_named() -> None:
    with pytest.raises(ConfigError, match="min_watts 20 is above max_watts 10"):
        MinerRules(max_watts=10, min_watts=20)
    with pytest.raises(ConfigError, match="sleep_watts"):
        MinerRules(max_watts=10, sleep_watts=10)
    with pytest.raises(ConfigError, match="headroom"):
        SiteRules(headroom=1.0)
    with pytest.raises(ConfigError, match="ramp_w_per_s"):
        MinerRules(ramp_w_per_s=math.nan)
    with pytest.raises(ConfigError, match="at least one miner"):
        SiteAllocator({})


def test_the_book_splits_each_tick_into_inside_and_over_the_budget() -> None:
    book = SiteBook()
    book.add(2.0, 10.0, 26.0, 20.0, hashes=1e9)   # 13 W against 10 W: 6 J over
    book.add(2.0, 10.0, 14.0, 20.0)               # 7 W: inside; 26 J curtailed from 20 W full
    book.add(0.0, 10.0, 5.0, 20.0)                # no time: not booked
    assert book.to_json() == {"seconds": 4.0, "budget_energy_j": 40.0, "energy_j": 40.0,
                              "energy_over_budget_j": 6.0, "absorbed_j": 34.0, "curtailed_j": 40.0,
                              "hashes": 1e9, "ticks": 2}
