"""Signals: the power budget over time, and optionally carbon intensity and price.

A :class:`Signal` answers "what is the budget at time t" (:meth:`Signal.at`). Two kinds
live here:

- :class:`Trace`: a recorded or generated series (see :mod:`hashcore.throttle.traces` for
  the CSV format), step or linear interpolation between rows, held flat outside them;
- :class:`ConstantSignal`: one figure for ever (``--power-budget 350``).

A third, the live source that polls a file or URL (:class:`hashcore.app.sources.LiveSource`),
belongs to the application: sources that do I/O do it in :meth:`Signal.refresh`, which
the live loop runs on a daemon thread; :meth:`Signal.at` never blocks. Only a trace can
say what comes later (:meth:`Trace.span`); forecasts that may read ahead build on that
and nothing else.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from hashcore.errors import ConfigError

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
