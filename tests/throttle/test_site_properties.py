"""Properties of the site allocator over any answers from its miners: the budget, and the
minimum on and off times."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hashcore.throttle.site import (
    READ_ONLY,
    REFUSED,
    SLEEP,
    TARGET,
    TIMEOUT,
    MinerReading,
    MinerRules,
    SiteAllocator,
    SiteRules,
)

#: What a miner may answer in a tick: anything a link lets through, or no answer.
OBSERVATIONS = st.one_of(
    st.just(TIMEOUT), st.just(REFUSED),
    st.builds(MinerReading, watts=st.one_of(st.none(), st.floats(0, 80)),
              hashrate_hs=st.one_of(st.none(), st.floats(0, 1e14)), asleep=st.booleans(),
              control=st.sampled_from([TARGET, SLEEP, READ_ONLY]), target_w=st.one_of(st.none(), st.floats(0, 80))))
SITES = st.builds(SiteRules, headroom=st.floats(0, 0.5), wake_margin_w=st.floats(0, 5), wake_batch=st.integers(0, 3),
                  site_ramp_w_per_s=st.one_of(st.none(), st.floats(0, 50)), trim_gain=st.floats(0, 1),
                  rank_margin=st.floats(0, 0.5), confirm_ticks=st.integers(1, 4))
UNSTEERED = ("read-only", "unresponsive", "down")


def miner_rules(locks: bool) -> st.SearchStrategy[MinerRules]:
    lock = st.floats(0, 10) if locks else st.just(0.0)
    return st.builds(MinerRules, max_watts=st.one_of(st.none(), st.floats(5, 50)),
                     min_watts=st.one_of(st.none(), st.floats(0, 5)), sleep_watts=st.floats(0, 2),
                     min_on_s=lock, min_off_s=lock, ramp_w_per_s=st.one_of(st.none(), st.floats(0.1, 20)),
                     j_per_th=st.one_of(st.none(), st.floats(1, 1e6)))


@settings(max_examples=200, deadline=None)
@given(st.lists(miner_rules(locks=False), min_size=1, max_size=6), SITES, st.data())
def test_without_locks_the_allotted_power_never_exceeds_the_budget(rules: list[MinerRules], site: SiteRules,
                                                                    data: st.DataObject) -> None:
    """Whatever the miners answer: what the unsteered are counted at and the steered
    miners' sleep power is all the site may pass the usable budget by."""
    names = [f"m{i}" for i in range(len(rules))]
    alloc = SiteAllocator(dict(zip(names, rules, strict=True)), site)
    t = 0.0
    for _ in range(data.draw(st.integers(1, 8))):
        t += data.draw(st.floats(0, 5))
        observations = {n: data.draw(OBSERVATIONS) for n in names}
        result = alloc.step(t, data.draw(st.floats(0, 200)), observations,
                            measured_w=data.draw(st.one_of(st.none(), st.floats(0, 300))))
        plans = result.plans
        fixed = sum(p.allotted_w for p in plans.values() if p.state in UNSTEERED)
        asleep = sum(r.sleep_watts for n, r in zip(names, rules, strict=True) if plans[n].state not in UNSTEERED)
        assert result.allotted_w <= max(result.usable_w, fixed + asleep) + 1e-6
        for name, rule in zip(names, rules, strict=True):
            assert math.isfinite(plans[name].allotted_w) and math.isfinite(plans[name].counted_w)
            if plans[name].state not in UNSTEERED:
                assert plans[name].allotted_w >= rule.sleep_watts - 1e-9
                assert rule.max_watts is None or plans[name].allotted_w <= rule.max_watts + 1e-9


@settings(max_examples=500, deadline=None)
@given(st.lists(miner_rules(locks=True), min_size=1, max_size=5), SITES, st.data())
def test_no_miner_is_switched_back_sooner_than_its_minimum_on_or_off_time(rules: list[MinerRules], site: SiteRules,
                                                                          data: st.DataObject) -> None:
    """Between a wake order and the next sleep order at least min_on_s passes, and min_off_s
    between a sleep and the next wake, unless the miner was seen in the other state by
    itself (a restart, its own pause) in between: that starts its time again."""
    names = [f"m{i}" for i in range(len(rules))]
    alloc = SiteAllocator(dict(zip(names, rules, strict=True)), site)
    last: dict[str, tuple[str, float]] = {}
    t = 0.0
    for _ in range(data.draw(st.integers(1, 12))):
        t += data.draw(st.floats(0, 4))
        observations = {n: data.draw(OBSERVATIONS) for n in names}
        for name, seen in observations.items():
            if name in last and (seen == REFUSED or (isinstance(seen, MinerReading)
                                                     and seen.asleep == (last[name][0] == "wake"))):
                del last[name]
        for order in alloc.step(t, data.draw(st.floats(0, 200)), observations).orders:
            if order.action not in ("wake", "sleep"):
                continue
            before = last.get(order.address)
            if before is not None and before[0] != order.action:
                rule = rules[names.index(order.address)]
                assert t - before[1] >= (rule.min_on_s if before[0] == "wake" else rule.min_off_s) - 1e-9
            if before is None or before[0] != order.action:
                last[order.address] = (order.action, t)
