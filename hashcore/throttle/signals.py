"""Signals: the power budget over time, and optionally carbon intensity and price.

A :class:`Signal` answers "what is the budget at time t" (:meth:`Signal.at`). Three kinds:

- :class:`Trace`: a recorded or generated series (see :mod:`hashcore.throttle.traces` for
  the CSV format), step or linear interpolation between rows, held flat outside them;
- :class:`ConstantSignal`: one figure for ever (``--power-budget 350``);
- :class:`LiveSource`: the latest value read from a file or an HTTP URL on a schedule,
  falling back to a zero budget when the reading is older than ``max_age_s`` (an
  unknown surplus is no surplus).

Sources that do I/O do it in :meth:`Signal.refresh`, which the live loop runs on a daemon
thread (a read that hangs never holds up the miner's exit), each read bounded in size and,
for a URL, in time (:mod:`hashcore.boundedio`); :meth:`Signal.at` never blocks. Only a trace can say what comes later
(:meth:`Trace.span`); forecasts that may read ahead build on that and nothing else.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

from hashcore import boundedjson
from hashcore.boundedio import decode_text, fetch_bounded, read_bounded
from hashcore.errors import ConfigError

T = TypeVar("T")

log = logging.getLogger("hashcore.throttle.signals")

Interpolation = Literal["step", "linear"]
INTERPOLATIONS: tuple[Interpolation, ...] = ("step", "linear")


class SignalPoint(NamedTuple):
    """The signal at one instant.

    Attributes:
        watts: the power budget for mining, in watts (>= 0).
        gco2_per_kwh: grid carbon intensity, when the signal has it.
        price: electricity price per kWh (the trace's currency), when the signal has it.
    """

    watts: float
    gco2_per_kwh: float | None = None
    price: float | None = None


@runtime_checkable
class Signal(Protocol):
    """A power budget (and optionally carbon intensity and price) over time."""

    @property
    def has_carbon(self) -> bool: ...

    @property
    def has_price(self) -> bool: ...

    def at(self, t: float) -> SignalPoint:
        """The signal at time ``t`` (seconds on the signal's timeline); never blocks."""
        ...

    def refresh(self, t: float) -> None:
        """Do any I/O the source needs (a live source reads when due); may block."""
        ...

    def describe(self) -> str:
        """One line saying where the signal comes from."""
        ...


@dataclass(frozen=True, slots=True)
class ConstantSignal:
    """The same budget (and carbon intensity, price) at every instant."""

    watts: float
    gco2_per_kwh: float | None = None
    price: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.watts) and self.watts >= 0):
            raise ConfigError(f"a power budget must be a non-negative number of watts, not {self.watts}")

    @property
    def has_carbon(self) -> bool:
        return self.gco2_per_kwh is not None

    @property
    def has_price(self) -> bool:
        return self.price is not None

    def at(self, t: float) -> SignalPoint:
        return SignalPoint(self.watts, self.gco2_per_kwh, self.price)

    def refresh(self, t: float) -> None:
        pass

    def describe(self) -> str:
        return f"constant {self.watts:g} W"


class Trace:
    """A series of (time, watts[, gCO2/kWh][, price]) rows with an interpolation rule.

    Args:
        times: strictly increasing epoch seconds.
        watts / gco2_per_kwh / price: one value per time (the last two optional).
        interpolation: ``step`` holds each row until the next; ``linear`` draws lines.
        utc_offset_s: the local time offset of the trace's timestamps (for plots).
        notes: the comment lines of the file (how the trace was made).
        name: where it came from (a path), for messages.
    """

    def __init__(
        self,
        times: Sequence[float],
        watts: Sequence[float],
        gco2_per_kwh: Sequence[float] | None = None,
        price: Sequence[float] | None = None,
        *,
        interpolation: Interpolation = "linear",
        utc_offset_s: float = 0.0,
        notes: Sequence[str] = (),
        name: str = "trace",
    ) -> None:
        if not times:
            raise ConfigError(f"{name}: the trace has no rows")
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"{name}: interpolation must be step or linear, not {interpolation!r}")
        columns = [c for c in (watts, gco2_per_kwh, price) if c is not None]
        if any(len(c) != len(times) for c in columns):
            raise ConfigError(f"{name}: every column needs one value per timestamp")
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ConfigError(f"{name}: timestamps must increase strictly")
        self.times = [float(t) for t in times]
        self.watts = [float(w) for w in watts]
        self.gco2_per_kwh = [float(g) for g in gco2_per_kwh] if gco2_per_kwh is not None else None
        self.price = [float(p) for p in price] if price is not None else None
        self.interpolation: Interpolation = interpolation
        self.utc_offset_s = utc_offset_s
        self.notes = list(notes)
        self.name = name
        self._times_array: np.ndarray | None = None
        self._watts_array: np.ndarray | None = None

    @property
    def has_carbon(self) -> bool:
        return self.gco2_per_kwh is not None

    @property
    def has_price(self) -> bool:
        return self.price is not None

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def span(self) -> tuple[float, float]:
        return self.times[0], self.times[-1]

    def __len__(self) -> int:
        return len(self.times)

    def with_interpolation(self, interpolation: Interpolation) -> Trace:
        return Trace(self.times, self.watts, self.gco2_per_kwh, self.price, interpolation=interpolation,
                     utc_offset_s=self.utc_offset_s, notes=self.notes, name=self.name)

    def scaled(self, factor: float) -> Trace:
        """The same trace with every budget multiplied by ``factor`` (a site to a host)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ConfigError(f"a budget scale must be a positive number, not {factor}")
        return Trace(self.times, [w * factor for w in self.watts], self.gco2_per_kwh, self.price,
                     interpolation=self.interpolation, utc_offset_s=self.utc_offset_s, notes=self.notes,
                     name=self.name)

    def _value(self, column: list[float], i: int, t: float) -> float:
        if self.interpolation == "step" or i + 1 >= len(column):
            return column[i]
        t0, t1 = self.times[i], self.times[i + 1]
        return column[i] + (column[i + 1] - column[i]) * (t - t0) / (t1 - t0)

    def at(self, t: float) -> SignalPoint:
        i = bisect_right(self.times, t) - 1
        if i < 0:
            i, t = 0, self.times[0]
        elif i >= len(self.times) - 1:
            i, t = len(self.times) - 1, self.times[-1]
        carbon = self._value(self.gco2_per_kwh, i, t) if self.gco2_per_kwh is not None else None
        price = self._value(self.price, i, t) if self.price is not None else None
        return SignalPoint(self._value(self.watts, i, t), carbon, price)

    def watts_at(self, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """The budget at many instants at once (what :meth:`at` gives, one by one)."""
        t = np.clip(np.asarray(times, dtype=np.float64), self.times[0], self.times[-1])
        if self._times_array is None:
            self._times_array = np.asarray(self.times)
            self._watts_array = np.asarray(self.watts)
        assert self._watts_array is not None
        if self.interpolation == "linear":
            return np.interp(t, self._times_array, self._watts_array)
        index = np.clip(np.searchsorted(self._times_array, t, side="right") - 1, 0, len(self.times) - 1)
        return np.asarray(self._watts_array[index], dtype=np.float64)

    def refresh(self, t: float) -> None:
        pass

    def describe(self) -> str:
        hours = (self.end - self.start) / 3600
        return f"trace {self.name} ({len(self)} rows over {hours:.1f} h, {self.interpolation})"


def parse_reading(text: str, where: str) -> SignalPoint:
    """One live reading: a bare number of watts, a JSON object with ``watts`` (and
    ``gco2_per_kwh``, ``price``), or CSV trace text whose last row counts."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"{where}: empty reading")
    try:
        return ConstantSignal(float(stripped)).at(0.0)
    except ValueError:
        pass
    if stripped.startswith("{"):
        try:
            data = boundedjson.loads(stripped)
            watts = float(data["watts"])
            carbon = data.get("gco2_per_kwh")
            price = data.get("price")
            return ConstantSignal(
                watts,
                None if carbon is None else float(carbon),
                None if price is None else float(price),
            ).at(0.0)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: a JSON reading needs a numeric 'watts' ({exc})") from None
    from hashcore.throttle.traces import parse_trace

    trace = parse_trace(stripped.splitlines(), name=where)
    return trace.at(trace.end)


#: The most a live reading may hold: a number, a JSON object or a short CSV.
MAX_READING_BYTES = 1 << 20


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
    """A power budget read from a file or an HTTP(S) URL, re-read every ``interval_s``.

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
