"""Warnings that repeat, logged a few at a time with a count of the rest.

A pool that answers thousands of submits a second with errors, or a device that fails
every scan, must not turn the log into the bottleneck (or fill a disk): each kind of
warning is logged at most ``burst`` times per ``interval``, and the next one after a
quiet spell says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    left_out: int = 0


class RateLimitedLog:
    """``warning(kind, msg, *args)`` like a logger's, limited per ``kind``."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, burst: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval, self.burst, self._clock = logger, interval, burst, clock
        self._windows: dict[str, _Window] = {}

    def warning(self, kind: str, msg: str, *args: object) -> None:
        now = self._clock()
        window = self._windows.get(kind)
        if window is None or now - window.started >= self.interval:
            if window is not None and window.left_out:
                self.logger.warning("(%d more %s warnings in %.0f s)", window.left_out, kind, now - window.started)
            window = self._windows[kind] = _Window(now)
        if window.logged < self.burst:
            window.logged += 1
            self.logger.warning(msg, *args)
        else:
            window.left_out += 1

    def flush(self) -> None:
        """Say how many warnings were left out (at shutdown)."""
        for kind, window in self._windows.items():
            if window.left_out:
                self.logger.warning("(%d more %s warnings)", window.left_out, kind)
        self._windows.clear()
