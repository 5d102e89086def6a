"""The EnergyMeter contract: cumulative joules and the latest watts from one source.

Counters are integers inside (microjoules); floats appear only at the edge, in
:class:`EnergySample`. ``source`` is one of ``rapl``, ``nvml``, ``asic``, ``estimate``
or ``none``; ``exact`` is false for an estimate and for the null meter, and every report
that shows a figure from such a source says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class EnergySample:
    """One reading.

    Attributes:
        joules: energy used since the meter was opened (cumulative, monotonic).
        watts: the latest power figure.
        source: where the figure comes from (rapl, nvml, asic, estimate, none).
        exact: whether it is measured (True) or estimated / unknown (False).
    """

    joules: float
    watts: float
    source: str
    exact: bool


@runtime_checkable
class EnergyMeter(Protocol):
    """A source of energy readings."""

    source: str
    exact: bool

    def sample(self) -> EnergySample: ...

    def close(self) -> None: ...


class NullMeter:
    """The meter for "nothing to measure with": zero joules, labelled ``none``."""

    source = "none"
    exact = False

    def sample(self) -> EnergySample:
        return EnergySample(0.0, 0.0, self.source, False)

    def close(self) -> None:
        pass
