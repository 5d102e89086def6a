"""Clocks: the one place the throttle asks what time it is, or waits.

Everything time-based in :mod:`hashcore.throttle` takes a :class:`Clock`, so the same
controller runs live on :class:`RealClock` and replays a day in a simulation on
:class:`VirtualClock`. Times are float seconds on the clock's own timeline: the Unix
epoch for :class:`RealClock` (so a trace's timestamps line up with the wall), and
whatever the owner starts a virtual clock at (a trace's first timestamp, usually).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Tells the time and waits."""

    def now(self) -> float:
        """Seconds on this clock's timeline."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds of this clock's time."""
        ...


class RealClock:
    """Wall time (Unix epoch seconds); waiting is a real ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Real time running ``speedup`` times faster, from ``start`` (a trace's first timestamp).

    A live run on it replays a trace faster than the wall: a one-hour stepping budget
    plays in a minute at ``speedup=60`` while the miner mines in real time.
    """

    def __init__(self, start: float, speedup: float) -> None:
        if not speedup > 0:
            raise ValueError(f"speedup must be positive, not {speedup}")
        self.start = start
        self.speedup = speedup
        self._origin = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speedup

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speedup)


class VirtualClock:
    """Time that moves only when told: :meth:`advance`, or :meth:`sleep` (which advances).

    A simulation advances it tick by tick, so a day replays as fast as the code runs and
    every figure is a function of the simulated series, never of the wall.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a virtual clock does not go back")
        self._now += seconds
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


async def sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    """Sleep ``seconds`` on ``clock``, or until ``stop`` is set, whichever comes first."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()


class Pacer:
    """Holds a simulation to ``speedup`` times real time (``hashcore simulate --speedup``).

    ``None`` means as fast as the code runs: :meth:`wait_until` returns at once.
    """

    def __init__(self, start: float, speedup: float | None) -> None:
        if speedup is not None and not speedup > 0:
            raise ValueError(f"speedup must be positive, not {speedup}")
        self.start = start
        self.speedup = speedup
        self._origin = time.monotonic()

    def wait_until(self, simulated: float) -> None:
        if self.speedup is None:
            return
        due = self._origin + (simulated - self.start) / self.speedup
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
