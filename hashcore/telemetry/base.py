"""The EnergyMeter contract: cumulative joules and the latest watts from one source.

Counters are integers inside (microjoules, millijoules, picojoules, each named in the
docstring that holds it); floats appear only at the edge, in :class:`EnergySample`.
``source`` is one of ``rapl``, ``nvml``, ``asic``, ``estimate`` or ``none``; ``exact`` is
false for an estimate and for the null meter, and every report that shows a figure from
such a source says so.

Meters of this package also carry ``note``: one line saying what is measured, or why the
figure is an estimate. It is optional for other meters; read it with :func:`note_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hashcore.errors import TelemetryError

#: Unit conversions at the edge.
UJ_PER_J = 1_000_000
NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class EnergySample:
    """One reading.

    Attributes:
        joules: energy used since the meter was opened (cumulative, monotonic).
        watts: the latest power figure (the average since the previous sample).
        source: where the figure comes from (rapl, nvml, asic, estimate, none).
        exact: whether it is measured (True) or estimated / unknown (False).
    """

    joules: float
    watts: float
    source: str
    exact: bool


@runtime_checkable
class EnergyMeter(Protocol):
    """A source of energy readings (``source`` and ``exact`` may be plain attributes)."""

    @property
    def source(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def sample(self) -> EnergySample: ...

    def close(self) -> None: ...


@runtime_checkable
class DetailedMeter(Protocol):
    """A meter that also reports its parts (RAPL: packages, core, dram, psys)."""

    def detail(self) -> dict[str, float]:
        """Joules per part since the meter was opened, as of the latest sample."""
        ...


class CounterUnsupported(TelemetryError):
    """The device has no such counter (NVML's energy counter before Volta); fall back."""


class NullMeter:
    """The meter for "nothing to measure with": zero joules, labelled ``none``."""

    source = "none"
    exact = False

    def __init__(self, reason: str = "no energy source") -> None:
        self.note = reason

    def sample(self) -> EnergySample:
        return EnergySample(0.0, 0.0, self.source, False)

    def close(self) -> None:
        pass


def note_of(meter: EnergyMeter) -> str:
    """The meter's one-line note, or "" for a meter from elsewhere that has none."""
    note = getattr(meter, "note", "")
    return note if isinstance(note, str) else ""


class RateTracker:
    """Average watts between consecutive samples, from integer microjoules and nanoseconds."""

    __slots__ = ("_last_ns", "_last_uj", "_watts")

    def __init__(self, uj: int, ns: int) -> None:
        self._last_uj = uj
        self._last_ns = ns
        self._watts = 0.0

    def update(self, uj: int, ns: int) -> float:
        """Record a reading (microjoules, nanoseconds); return watts since the previous one."""
        d_ns = ns - self._last_ns
        if d_ns > 0:
            # uJ / ns * 1e3 = W
            self._watts = (uj - self._last_uj) * 1000 / d_ns
            self._last_uj = uj
            self._last_ns = ns
        return self._watts
