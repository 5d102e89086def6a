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
        self._found: deque[float] = deque()
        #: The local difficulty floor (0: none; shares go out at the pool's difficulty).
        self.floor = 0.0

    def difficulty(self, pool_difficulty: float) -> float:
        """The difficulty the backends scan for: the pool's, or the floor when higher."""
        return max(pool_difficulty, self.floor)

    def expect(self, pool_difficulty: float, hashrate_hs: float) -> bool:
        """Raise the floor before the first share when the hashrate already tells that
        the pool's difficulty would exceed the cap. True when the floor moved."""
        if hashrate_hs <= 0:
            return False
        wanted = hashrate_hs / (self.max_rate * 2**32)
        if wanted > self.difficulty(pool_difficulty):
            self.floor = wanted
            return True
        return False

    def found(self, pool_difficulty: float) -> bool:
        """Note a share found at the current local difficulty. Returns False when it is
        over the cap for this window (not to be sent); the floor then rises so that the
        rate found falls back under the cap."""
        now = self._clock()
        found = self._found
        found.append(now)
        while found and found[0] <= now - self.window:
            found.popleft()
        rate = len(found) / self.window
        if rate <= self.max_rate:
            return True
        # Shares found scale as 1/difficulty: aim at half the cap, so noise stays under it.
        current = self.difficulty(pool_difficulty)
        wanted = current * rate / (self.max_rate / 2)
        if math.isfinite(wanted) and wanted > self.floor:
            self.floor = wanted
            found.clear()
        return False
