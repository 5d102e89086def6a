"""The chip census of a running chain: which chips still answer chip-id reads.

Every ``interval_s`` a chip-id read goes out; ``window_s`` later the answers are counted,
per chip address. A chip that missed is asked again sooner (``retry_s``, doubling up to
``interval_s``) and counts as dead only after ``misses_to_dead`` misses in a row: one
reply lost on a noisy link changes nothing. A dead chip is alive again at its next
answer. No I/O and no clock of its own: the driver sends the reads, passes the time in,
and calls every method under its state lock.
"""

from __future__ import annotations

import logging
from typing import Literal

log = logging.getLogger("hashcore.backends.asic.driver")

#: What :meth:`ChipCensus.step` asks of the driver: send a chip-id read now; nothing
#: while the answers are being collected; or nothing because no census is due.
Step = Literal["send", "collecting", "idle"]


class ChipCensus:
    """The census of one chain's chips. See the module docstring.

    Attributes:
        addresses: the chips' addresses, in chain order.
        answering: chips not counted dead.
        misses: misses since the chips got their addresses (each chip each census).
    """

    def __init__(self, port: str, *, interval_s: float, window_s: float, retry_s: float, misses_to_dead: int):
        self._port = port
        self._interval_s = interval_s
        self._window_s = window_s
        self._retry_s = retry_s
        self._misses_to_dead = misses_to_dead
        self.addresses: list[int] = []
        self.answering = 0
        self.misses = 0
        self._started: float | None = None
        self._answered: set[int] = set()
        self._next = 0.0
        self._backoff = retry_s
        self._in_a_row: dict[int, int] = {}
        self._dead: set[int] = set()

    def reset(self, addresses: list[int]) -> None:
        """Chips just given ``addresses``: all counted alive."""
        self.addresses = addresses
        self.answering = len(addresses)
        self._in_a_row = dict.fromkeys(addresses, 0)
        self._dead = set()

    def start(self, now: float) -> None:
        """The chain is up: the first census is due one interval from ``now``."""
        self._next = now + self._interval_s

    def answer(self, address: int) -> bool:
        """A chip-id answer from ``address``; False when no census is collecting answers."""
        if self._started is None:
            return False
        self._answered.add(address)
        return True

    def step(self, now: float) -> Step:
        """Advance the census to ``now``: count the answers once the window is over, and
        say whether a chip-id read is due."""
        if self._started is not None:
            if now - self._started < self._window_s:
                return "collecting"
            self._started = None
            self._count(now)
        elif now >= self._next:
            self._started = now
            self._answered = set()
            return "send"
        return "idle"

    @property
    def silent(self) -> int:
        """Chips that missed the last census but not yet enough times in a row to count as dead."""
        return sum(1 for a, misses in self._in_a_row.items() if misses and a not in self._dead)

    def _count(self, now: float) -> None:
        """Book one census's answers and set when the next goes out."""
        silent = False
        for address in self.addresses:
            if address in self._answered:
                if address in self._dead:
                    self._dead.discard(address)
                    log.warning("%s: chip %d answers again", self._port, address)
                self._in_a_row[address] = 0
                continue
            self.misses += 1
            misses = self._in_a_row[address] = self._in_a_row.get(address, 0) + 1
            if address in self._dead:
                continue
            if misses >= self._misses_to_dead:
                self._dead.add(address)
                log.warning("%s: chip %d counted dead after %d missed chip-id reads", self._port, address, misses)
            else:
                silent = True
                log.info("%s: chip %d missed a chip-id read (%d in a row), asking again", self._port, address, misses)
        self.answering = len(self.addresses) - len(self._dead)
        if silent:
            self._next = now + min(self._backoff, self._interval_s)
            self._backoff *= 2
        else:
            self._next = now + self._interval_s
            self._backoff = self._retry_s
