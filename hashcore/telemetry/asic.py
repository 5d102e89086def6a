"""Energy of an ASIC board from the power it reports.

The board (or the ASIC emulator) is adapted with plain callables, so any driver fits:
``watts()`` returns board power in watts, ``joules()`` (when the board keeps one) returns
cumulative energy in joules. A cumulative counter is used as is; power alone is
integrated on a background thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hashcore.errors import HashcoreError, TelemetryError
from hashcore.telemetry.base import UJ_PER_J
from hashcore.telemetry.poll import Clock, CountingMeter, Poller, PowerIntegrator

WattsFn = Callable[[], float]
JoulesFn = Callable[[], float]


def _reading(fn: Callable[[], float], what: str) -> float:
    """Call the board; anything but a finite, non-negative number is a TelemetryError."""
    try:
        value = float(fn())
    except HashcoreError:
        raise
    except (OSError, ValueError, TypeError, ArithmeticError) as exc:
        raise TelemetryError(f"ASIC board {what} could not be read: {exc}") from exc
    if not math.isfinite(value) or value < 0:
        raise TelemetryError(f"ASIC board reported {what} {value!r}")
    return value


class AsicMeter(CountingMeter):
    """Energy of an ASIC board from its reported power (or its own energy counter).

    Args:
        watts: returns board power in watts.
        joules: returns the board's cumulative energy in joules; preferred when given.
        poll_s: how often power is read for integration.
        label: names the board in ``note``.
    """

    source = "asic"
    exact = True

    def __init__(
        self,
        watts: WattsFn | None = None,
        joules: JoulesFn | None = None,
        *,
        clock: Clock = time.monotonic_ns,
        poll_s: float = 0.5,
        label: str = "ASIC board",
    ) -> None:
        if watts is None and joules is None:
            raise TelemetryError("the board reports no power")
        super().__init__(clock)
        self._joules = joules
        self._integrator: PowerIntegrator | None = None
        if joules is not None:
            self._last_uj = self._counter_uj()
            self._total_uj = 0
            self.note = f"{label}: reported energy counter"
        else:
            assert watts is not None
            read_mw = lambda: round(_reading(watts, "power") * 1000)  # noqa: E731
            self._integrator = PowerIntegrator(read_mw, clock)
            self._poller = Poller(poll_s, self._integrator.update, "asic-poll")
            self.note = f"{label}: reported power integrated every {poll_s * 1000:g} ms"
        self._start_rate()

    def _counter_uj(self) -> int:
        assert self._joules is not None
        return round(_reading(self._joules, "energy") * UJ_PER_J)

    def _energy_uj(self) -> int:
        if self._integrator is not None:
            return self._integrator.update()
        raw = self._counter_uj()
        # A board counter that restarts (board reset) counts again from zero.
        self._total_uj += raw - self._last_uj if raw >= self._last_uj else raw
        self._last_uj = raw
        return self._total_uj

