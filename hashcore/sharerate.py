"""A cap on the share rate one pool connection gets, whatever difficulty the pool sets.

A pool may set a difficulty so low that every hash is a share (``1e-8`` is legal):
the backends would then hand the loop a result per nonce, and the loop the socket a
submit per nonce, faster than either can drain. :class:`ShareRateCap` keeps the rate
bounded at the source: it raises the *local* share difficulty (the target the
backends scan for) so that about ``max_rate`` shares a second are found, and shares are
still credited at the pool's difficulty. Block candidates are found against the block
target, which the local difficulty never touches.

Pure logic on an injected clock; the engine owns one per connection.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

#: Shares a second one connection may send. Real pools aim at one every few seconds;
#: 20 a second is far above any sane vardiff and far below what floods a loop.
DEFAULT_MAX_SHARE_RATE = 20.0


class ShareRateCap:
    """Tracks the shares found on one connection and the local difficulty floor.

    Args:
        max_rate: shares a second to stay under.
        window: seconds over which the rate is measured.
        clock: monotonic seconds.
    """

    def __init__(self, max_rate: float = DEFAULT_MAX_SHARE_RATE, window: float = 1.0,
                 clock: Callable[[], float] | None = None) -> None:
        if not max_rate > 0:
            raise ValueError("max_rate must be positive")
        self.max_rate = max_rate
        self.window = window
        self._clock = clock or time.monotonic
        self._found: deque[float] = deque()  # found at the current floor, in the window
        self._sent: deque[float] = deque()  # let through, in the window
        #: The local difficulty floor (0: none; shares go out at the pool's difficulty).
        self.floor = 0.0
        self._changed = self._clock()
        self._since_change = 0

    def difficulty(self, pool_difficulty: float) -> float:
        """The difficulty the backends scan for: the pool's, or the floor when higher."""
        return max(pool_difficulty, self.floor)

    def expect(self, pool_difficulty: float, hashrate_hs: float) -> bool:
        """Raise the floor before the first share when the hashrate already tells that
        the pool's difficulty would exceed the cap. True when the floor moved."""
        if hashrate_hs <= 0:
            return False
        wanted = hashrate_hs / (self.max_rate / 2 * 2**32)
        if wanted > self.difficulty(pool_difficulty):
            self._set_floor(wanted, self._clock())
            return True
        return False

    def found(self, pool_difficulty: float) -> bool:
        """Note a share found at the current local difficulty. Returns False when it is
        over the cap in the last ``window`` seconds (not to be sent); the floor then
        rises so that the rate found falls back under the cap."""
        now = self._clock()
        found, sent = self._found, self._sent
        for times in (found, sent):
            while times and times[0] <= now - self.window:
                times.popleft()
        found.append(now)
        self._since_change += 1
        allowed = len(sent) < self.max_rate * self.window
        if allowed:
            sent.append(now)
        if len(found) <= self.max_rate * self.window:
            return allowed
        # Shares found scale as 1/difficulty: aim at half the cap, so noise stays under
        # it. The rate is measured over the time these shares took (a flood fills the
        # window in milliseconds), but over no less than 1/64 of the window, so one
        # burst of results cannot raise the floor beyond reason.
        elapsed = max(now - found[0], self.window / 64)
        rate = len(found) / elapsed
        wanted = self.difficulty(pool_difficulty) * rate / (self.max_rate / 2)
        if math.isfinite(wanted) and wanted > self.floor:
            self._set_floor(wanted, now)
        return allowed

    def relax(self, pool_difficulty: float, period: float = 10.0) -> bool:
        """Halve a floor that leaves the share rate far under the cap (it overshot, or
        the hashrate fell); call now and then. True when the floor moved."""
        if self.floor <= pool_difficulty:
            self.floor = 0.0
            return False
        now = self._clock()
        if now - self._changed < period or self._since_change > self.max_rate * period / 8:
            return False
        lower = self.floor / 2
        self._set_floor(lower if lower > pool_difficulty else 0.0, now)
        return True

    def _set_floor(self, floor: float, now: float) -> None:
        self.floor = floor
        self._found.clear()
        self._changed, self._since_change = now, 0
