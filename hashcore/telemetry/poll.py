"""Background polling, power integration and the sample/close every counting meter shares.

A benchmark samples a meter twice (start, end). Two kinds of source need readings in
between: a wrapping counter (RAPL), which must be read at least once per wrap, and a
power-only source (NVML before Volta, an ASIC board), whose energy is the integral of
readings taken often enough to follow the load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hashcore.errors import TelemetryError
from hashcore.telemetry.base import UJ_PER_J, EnergySample, RateTracker

Clock = Callable[[], int]
"""A monotonic clock in integer nanoseconds (``time.monotonic_ns`` or a test double)."""


class Poller:
    """Calls ``fn`` every ``interval_s`` seconds on a daemon thread until :meth:`stop`.

    A :class:`TelemetryError` from ``fn`` is kept in ``last_error`` rather than killing
    the thread: the owner's next ``sample()`` reads the same source and raises it there.
    """

    def __init__(self, interval_s: float, fn: Callable[[], object], name: str) -> None:
        if interval_s <= 0:
            raise ValueError("poll interval must be positive")
        self._interval_s = interval_s
        self._fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.last_error: TelemetryError | None = None
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._fn()
            except TelemetryError as exc:
                self.last_error = exc

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


class PowerIntegrator:
    """The trapezoidal integral of a power reading over time.

    ``read_mw`` returns power in integer milliwatts; ``clock`` gives integer nanoseconds.
    Energy is kept as twice the integral in mW·ns (2 × picojoules) so that no rounding
    happens inside; :meth:`energy_uj` converts at the edge.
    """

    def __init__(self, read_mw: Callable[[], int], clock: Clock) -> None:
        self._read_mw = read_mw
        self._clock = clock
        self._lock = threading.Lock()
        self._mw = read_mw()
        self._ns = clock()
        self._twice_pj = 0

    def update(self) -> int:
        """Take a power reading; return the energy so far in microjoules."""
        mw = self._read_mw()
        with self._lock:
            ns = self._clock()
            d_ns = ns - self._ns
            if d_ns > 0:
                self._twice_pj += (mw + self._mw) * d_ns
                self._ns = ns
            self._mw = mw
            return self._twice_pj // 2_000_000

    @property
    def milliwatts(self) -> int:
        """The latest power reading in milliwatts."""
        return self._mw


class CountingMeter:
    """What every meter that counts microjoules shares: ``sample()`` reads the count under
    a lock (a poller and a caller must not interleave readings) and derives watts from
    the change since the previous sample; ``close()`` stops the poller, then releases
    the device (:meth:`_release`).

    Subclasses set ``source`` and ``exact``, call ``super().__init__(clock)`` before
    starting a poller, and ``_start_rate()`` once the count reads zero.
    """

    source: str

    @property
    def exact(self) -> bool:
        """Measured (True) or estimated; subclasses say which."""
        raise NotImplementedError

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._poller: Poller | None = None

    def _start_rate(self) -> None:
        self._rate = RateTracker(0, self._clock())

    def _energy_uj(self) -> int:
        """Microjoules since open; called with the lock held."""
        raise NotImplementedError

    def sample(self) -> EnergySample:
        with self._lock:
            uj = self._energy_uj()
            watts = self._rate.update(uj, self._clock())
        return EnergySample(uj / UJ_PER_J, watts, self.source, self.exact)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        self._release()

    def _release(self) -> None:
        """Give the device back; nothing to do for most meters."""
