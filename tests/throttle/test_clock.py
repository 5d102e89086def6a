"""Clocks: virtual time moves only when told; a scaled clock runs faster than the wall."""

from __future__ import annotations

import pytest

from hashcore.throttle.clock import Clock, Pacer, RealClock, ScaledClock, VirtualClock


async def test_virtual_time_moves_only_when_told_and_sleep_advances_it():
    clock = VirtualClock(100.0)
    assert clock.now() == 100.0
    clock.advance(5)
    await clock.sleep(10)
    assert clock.now() == 115.0
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_a_scaled_clock_replays_from_its_start_faster_than_the_wall():
    clock = ScaledClock(start=1_000.0, speedup=1_000.0)
    before = clock.now()
    await clock.sleep(50.0)  # 50 clock seconds: 50 ms of wall time
    assert clock.now() - before >= 50.0
    assert before >= 1_000.0


def test_every_clock_is_a_clock():
    for clock in (RealClock(), ScaledClock(0.0, 2.0), VirtualClock()):
        assert isinstance(clock, Clock)


def test_a_pacer_without_a_speedup_never_waits():
    pacer = Pacer(0.0, None)
    pacer.wait_until(1e9)  # returns at once
    with pytest.raises(ValueError):
        Pacer(0.0, 0.0)
