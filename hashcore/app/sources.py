"""Live sources: a power budget or a battery's state, read from a file or an HTTP(S) URL
on a schedule.

Each read is bounded in size and, for a URL, in time (:mod:`hashcore.boundedio`); JSON is
decoded by :mod:`hashcore.boundedjson` and the text parsed by the throttle core
(:func:`hashcore.throttle.traces.reading_from_text`,
:func:`hashcore.throttle.battery.battery_reading_from_text`). The live loop runs
:meth:`LiveSource.refresh` on a daemon thread, so a read that hangs never holds up the
miner's exit; :meth:`LiveSource.at` never blocks. A budget whose reading is older than
``max_age_s`` is zero (an unknown surplus is no surplus); a battery whose state is
unknown counts as empty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from hashcore import boundedjson
from hashcore.boundedio import decode_text, fetch_bounded, read_bounded
from hashcore.errors import ConfigError
from hashcore.throttle.battery import BatteryConfig, BatteryReading, battery_reading_from_text
from hashcore.throttle.signals import SignalPoint
from hashcore.throttle.traces import reading_from_text

T = TypeVar("T")

log = logging.getLogger("hashcore.throttle.signals")  # the name operators filter on

#: The most a live reading may hold: a number, a JSON object or a short CSV.
MAX_READING_BYTES = 1 << 20


def parse_reading(text: str, where: str) -> SignalPoint:
    """One live budget reading: a number of watts, JSON with ``watts`` (and
    ``gco2_per_kwh``, ``price``), or CSV trace text whose last row counts."""
    return reading_from_text(text, where, boundedjson.loads)


def parse_battery_reading(text: str, where: str) -> BatteryReading:
    """A state of charge (0-1, or a percentage), or JSON ``{"soc", "available_w"}``."""
    return battery_reading_from_text(text, where, boundedjson.loads)


def read_location(location: str, timeout_s: float = 5.0) -> str:
    """The text of a regular file or an HTTP(S) URL: at most :data:`MAX_READING_BYTES`,
    a URL's whole answer within ``timeout_s``; ConfigError naming it otherwise (a FIFO or
    a device is refused, never waited on)."""
    if location.startswith(("http://", "https://")):
        data = fetch_bounded(location, MAX_READING_BYTES, timeout_s)
        return data.decode("utf-8", errors="replace")
    return decode_text(read_bounded(location, MAX_READING_BYTES, "file"), location)


class PolledLocation(Generic[T]):
    """The latest good reading of a file or an HTTP(S) URL, re-read every ``interval_s``.

    A failed read keeps the last good value (logged once, and shown in :attr:`error`)
    until it is ``max_age_s`` old; after that, and before the first good read,
    :meth:`latest` is None and the caller falls back to its safe value.
    """

    def __init__(self, location: str, parse: Callable[[str, str], T], what: str, interval_s: float = 10.0,
                 *, max_age_s: float | None = None, timeout_s: float = 5.0) -> None:
        if not interval_s > 0:
            raise ConfigError(f"a poll interval must be positive, not {interval_s}")
        self.location = location
        self.parse = parse
        self.what = what
        self.interval_s = interval_s
        self.max_age_s = max_age_s if max_age_s is not None else 3 * interval_s
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._read_at: float | None = None
        self._tried_at: float | None = None
        self.error: str | None = None
        self.reads = 0

    def refresh(self, t: float) -> None:
        """Read again when ``interval_s`` has passed since the last try."""
        with self._lock:
            if self._tried_at is not None and t - self._tried_at < self.interval_s:
                return
            self._tried_at = t
        try:
            value = self.parse(read_location(self.location, self.timeout_s), self.location)
        except ConfigError as exc:
            with self._lock:
                if self.error != str(exc):
                    log.warning("%s: %s", self.what, exc)
                self.error = str(exc)
            return
        with self._lock:
            self._value, self._read_at, self.error = value, t, None
            self.reads += 1

    def age(self, t: float) -> float | None:
        """Seconds since the last good reading; None before the first."""
        with self._lock:
            return None if self._read_at is None else t - self._read_at

    def latest(self, t: float) -> T | None:
        """The last good reading, or None when there is none or it is too old."""
        with self._lock:
            value, read_at = self._value, self._read_at
        if value is None or read_at is None or t - read_at > self.max_age_s:
            return None
        return value


class LiveSource:
    """A power budget read from a file or an HTTP(S) URL, re-read every ``interval_s``
    (a :class:`~hashcore.throttle.signals.Signal`).

    The reading's format is :func:`parse_reading`'s; polling and staleness are
    :class:`PolledLocation`'s, with a zero budget while there is no fresh reading.
    ``has_carbon`` / ``has_price`` say what the caller expects the source to carry (a
    policy checks them up front).
    """

    def __init__(
        self,
        location: str,
        interval_s: float = 10.0,
        *,
        max_age_s: float | None = None,
        timeout_s: float = 5.0,
        has_carbon: bool = False,
        has_price: bool = False,
    ) -> None:
        self._poll = PolledLocation(location, parse_reading, "power budget source", interval_s,
                                    max_age_s=max_age_s, timeout_s=timeout_s)
        self.location = location
        self.interval_s = interval_s
        self._has_carbon = has_carbon
        self._has_price = has_price

    @property
    def has_carbon(self) -> bool:
        return self._has_carbon

    @property
    def has_price(self) -> bool:
        return self._has_price

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    @property
    def error(self) -> str | None:
        return self._poll.error

    @property
    def reads(self) -> int:
        return self._poll.reads

    def refresh(self, t: float) -> None:
        self._poll.refresh(t)

    def age(self, t: float) -> float | None:
        """Seconds since the last good reading; None before the first."""
        return self._poll.age(t)

    def at(self, t: float) -> SignalPoint:
        point = self._poll.latest(t)
        return point if point is not None else SignalPoint(0.0, None, None)

    def describe(self) -> str:
        kind = "URL" if self.is_url else "file"
        return f"live {kind} {self.location} every {self.interval_s:g} s"


class LiveBatteryState:
    """A battery's state read from a file or URL every ``interval_s`` (in a worker
    thread, like a live budget source). Until a good reading arrives, and once the last
    one is ``max_age_s`` old, the battery counts as empty: the miners do not lean on a
    battery whose state is unknown."""

    def __init__(self, location: str, config: BatteryConfig, interval_s: float = 10.0,
                 max_age_s: float | None = None, timeout_s: float = 5.0) -> None:
        self._poll = PolledLocation(location, parse_battery_reading, "battery state", interval_s,
                                    max_age_s=max_age_s, timeout_s=timeout_s)
        self.location = location
        self.config = config

    @property
    def error(self) -> str | None:
        return self._poll.error

    def refresh(self, t: float) -> None:
        self._poll.refresh(t)

    def reading(self, t: float) -> BatteryReading | None:
        return self._poll.latest(t)

    def available_w(self, t: float) -> float:
        """What the miners may draw from the battery now (W)."""
        reading = self.reading(t)
        if reading is None or reading.soc <= self.config.soc_min:
            return 0.0
        limit = self.config.power_kw * 1000.0
        return min(limit, reading.available_w) if reading.available_w is not None else limit

    def status(self, t: float) -> dict[str, Any]:
        reading = self.reading(t)
        return {"location": self.location, "soc": None if reading is None else reading.soc,
                "available_w": self.available_w(t), "error": self.error}
