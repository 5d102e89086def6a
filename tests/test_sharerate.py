"""The share-rate cap on a virtual clock: a hard bound per window, a floor that rises
to meet a flood and falls back when it overshot."""

from __future__ import annotations

import logging

from hashcore.lograte import RateLimitedLog
from hashcore.sharerate import ShareRateCap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_window_lets_more_than_the_cap_through_and_the_floor_rises_with_the_flood():
    clock = Clock()
    cap = ShareRateCap(max_rate=20, clock=clock)
    sent_at: list[float] = []
    for _ in range(5000):  # 5000 shares in 0.5 s at difficulty 1e-8
        clock.now += 0.0001
        if cap.found(1e-8):
            sent_at.append(clock.now)
    assert 1 <= len(sent_at) <= 20
    # Shares scale as 1/difficulty: the floor now sits orders of magnitude above 1e-8.
    assert cap.difficulty(1e-8) > 1e-8 * 1000


def test_a_rate_under_the_cap_passes_untouched():
    clock = Clock()
    cap = ShareRateCap(max_rate=20, clock=clock)
    for _ in range(600):  # 10 a second for a minute
        clock.now += 0.1
        assert cap.found(1.0)
    assert cap.floor == 0.0 and cap.difficulty(1.0) == 1.0


def test_expect_sets_the_floor_from_the_hashrate_before_any_share():
    cap = ShareRateCap(max_rate=20, clock=Clock())
    assert cap.expect(1e-8, hashrate_hs=30e6)
    # 30 MH/s at the floor gives half the cap: 10 shares a second.
    assert abs(30e6 / (cap.difficulty(1e-8) * 2**32) - 10) < 1e-6
    assert not cap.expect(1.0, hashrate_hs=30e6)  # difficulty 1 at 30 MH/s: 0.007 shares/s


def test_an_overshooting_floor_is_halved_after_a_quiet_period_and_dropped_below_the_pools():
    clock = Clock()
    cap = ShareRateCap(max_rate=20, clock=clock)
    cap.expect(1e-6, hashrate_hs=1e9)
    floor = cap.floor
    clock.now += 5
    assert not cap.relax(1e-6)  # too soon
    clock.now += 6
    assert cap.relax(1e-6) and cap.floor == floor / 2
    while cap.floor:
        clock.now += 11
        cap.relax(1e-6)
    assert cap.difficulty(1e-6) == 1e-6


def test_repeated_warnings_are_logged_a_few_at_a_time_with_a_count(caplog):
    caplog.set_level(logging.WARNING)
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("hashcore.test"), interval=10, burst=3, clock=clock)
    for i in range(1000):
        limited.warning("rejected", "share rejected: %d", i)
    clock.now += 11
    limited.warning("rejected", "share rejected: again")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["share rejected: 0", "share rejected: 1", "share rejected: 2",
                        "(997 more rejected warnings in 11 s)", "share rejected: again"]
