"""How the site allocator learns the full power of a miner the operator did not give one."""

from __future__ import annotations

import math

import pytest

from hashcore.throttle.site import MinerRules, SiteAllocator, SiteRules
from tests.throttle.site_readings import reading


def test_full_power_is_learnt_where_the_operator_did_not_give_it() -> None:
    alloc = SiteAllocator({"a": MinerRules(), "b": MinerRules()}, SiteRules(headroom=0.0))
    alloc.step(0.0, 30.0, {"a": reading(8.0, 1e5, target=100.0), "b": reading(9.0, 2e5, target=100.0)})
    # Held at what it was asked for (its first draw), each is offered half as much again...
    result = alloc.step(1.0, 30.0, {"a": reading(8.0, 1e5, target=8.0), "b": reading(9.0, 2e5, target=9.0)})
    assert result.plans["a"].allotted_w == 12.0 and result.plans["b"].allotted_w == 13.5
    # ...and draws no more: that is its full power.
    result = alloc.step(2.0, 30.0, {"a": reading(8.0, 1e5, target=12.0), "b": reading(9.0, 2e5, target=13.5)})
    assert result.plans["a"].full_w == 8.0 and result.plans["b"].full_w == 9.0
    assert result.plans["a"].allotted_w == 8.0 and result.plans["b"].allotted_w == 9.0


def test_a_miner_caught_on_its_way_up_is_offered_more_until_it_shows_its_full_power() -> None:
    """Its first reading (500 W, still rising to a 3 kW full power) looks free of its
    target; held at that, it would never show more."""
    alloc = SiteAllocator({"lag": MinerRules(min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    full, draw, target = 3000.0, 500.0, None
    for t in range(30):
        plan = alloc.step(float(t), 10_000.0, {"lag": reading(draw, 3e4, target=target)}).plans["lag"]
        target = plan.allotted_w
        draw = min(full, draw + 0.5 * (target - draw))  # it follows its target with a lag
    assert draw == pytest.approx(full, rel=0.02)
    assert plan.full_w is not None and plan.full_w >= full


def test_once_a_miner_shows_its_full_power_it_is_not_offered_more_again() -> None:
    alloc = SiteAllocator({"a": MinerRules(min_on_s=0, min_off_s=0), "b": MinerRules(min_on_s=0, min_off_s=0)},
                          SiteRules(headroom=0.0))
    draws = {"a": 8.0, "b": 0.0}
    targets: dict[str, float | None] = {"a": None, "b": None}
    allotted = []
    for t in range(12):  # a draws 8 W at most and clamps its reported target there
        result = alloc.step(float(t), 12.0, {"a": reading(draws["a"], 1e5, target=targets["a"]),
                                             "b": reading(0.0, 2e5, asleep=True)})
        targets["a"] = min(8.0, result.plans["a"].allotted_w)
        allotted.append(result.plans["a"].allotted_w)
    assert allotted[-6:] == [8.0] * 6  # the budget it cannot use is not held for it
    assert result.plans["b"].state in ("on", "waking")


def test_full_power_is_not_learnt_from_a_miner_still_rising_after_a_wake() -> None:
    """Woken with its full power unknown, a 3 kW miner draws 1.2 kW at its first reading,
    and more at each after (a lag of 4 s read every 2 s)."""
    alloc = SiteAllocator({"a": MinerRules(sleep_watts=10, min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    alloc.step(0.0, 5000.0, {"a": reading(10.0, 20.0, asleep=True)})
    watts, target = 10.0, 5000.0
    for t in range(1, 30):
        aim = min(target, 3000.0)
        watts = aim + (watts - aim) * math.exp(-0.5)
        target = alloc.step(2.0 * t, 5000.0, {"a": reading(watts, 20.0, target=target)}).plans["a"].allotted_w
    assert 0.97 * 3000.0 < alloc.plans()["a"].full_w <= 3000.0  # type: ignore[operator]
    assert alloc.plans()["a"].allotted_w == alloc.plans()["a"].full_w


def test_a_reading_at_its_sleep_power_teaches_no_full_power() -> None:
    """Just resumed and not hashing yet, it draws what it draws asleep: learnt from that, it
    would be held below its sleep power by its own target."""
    alloc = SiteAllocator({"a": MinerRules(sleep_watts=5.0, min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    for t in range(3):
        result = alloc.step(float(t), 100.0, {"a": reading(2.0, 1e5)})
    assert result.plans["a"].full_w is None and result.plans["a"].allotted_w > 5.0


def test_a_chip_of_microwatts_is_ordered_microwatts() -> None:
    alloc = SiteAllocator({"chip": MinerRules(min_on_s=0, min_off_s=0)}, SiteRules(headroom=0.0))
    # Free of its target, so its full power is learnt from this reading.
    result = alloc.step(0.0, 1.0, {"chip": reading(4.3e-6, 22.0, target=0.5)})
    assert [(o.action, o.watts) for o in result.orders if o.action == "target"] == [("target", 4.3e-6)]
    assert result.plans["chip"].j_per_th == pytest.approx(22.0)
