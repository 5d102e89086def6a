"""Energy over an interval, and joules per hash per backend over that same interval.

The engine and the bench open a :class:`EnergyWindow` on a meter when hashing starts and
stop it when hashing stops, so the energy and the hash count cover one interval. CPU
backends that run together share one package counter; :func:`attribute` splits it by
the CPU time each used and says so in the note.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from hashcore.telemetry.base import NS_PER_S, EnergyMeter, EnergySample, note_of
from hashcore.telemetry.poll import Clock

#: Hashes per terahash: J/TH = J/H × 1e12.
H_PER_TH = 10**12


def j_per_hash(joules: float, hashes: int) -> float | None:
    """Joules per hash; None when no hash was done (nothing to divide by)."""
    return joules / hashes if hashes > 0 else None


def round_figure(value: Any, digits: int) -> float | None:
    """``value`` rounded to ``digits`` decimals but never to fewer than four significant
    figures (an emulated chip draws microwatts: it must not read as zero); None for a
    figure that does not exist (None, NaN, infinity)."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    if number == 0.0:
        return 0.0
    return round(number, max(digits, 3 - math.floor(math.log10(abs(number)))))


def j_per_th(joules: float, hashes: int) -> float | None:
    """Joules per terahash, the unit ASIC miners are compared in."""
    return joules * H_PER_TH / hashes if hashes > 0 else None


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """Energy used over one interval, as one meter saw it.

    Attributes:
        joules: energy over the interval.
        seconds: length of the interval.
        source: rapl, nvml, asic, estimate or none.
        exact: True only if measured at both ends.
        note: what was measured, or why it is an estimate.
    """

    joules: float
    seconds: float
    source: str
    exact: bool
    note: str = ""

    @property
    def watts(self) -> float:
        """Average power over the interval."""
        return self.joules / self.seconds if self.seconds > 0 else 0.0

    def j_per_hash(self, hashes: int) -> float | None:
        return j_per_hash(self.joules, hashes)

    def j_per_th(self, hashes: int) -> float | None:
        return j_per_th(self.joules, hashes)


class EnergyWindow:
    """The energy a meter saw between :meth:`start` and :meth:`stop`.

    Usable as a context manager; ``reading`` holds the result after the block::

        with EnergyWindow(meter) as window:
            hashes = run_benchmark()
        window.reading.j_per_th(hashes)
    """

    def __init__(self, meter: EnergyMeter, *, clock: Clock = time.monotonic_ns) -> None:
        self.meter = meter
        self._clock = clock
        self._first: EnergySample | None = None
        self._t0 = 0
        self.reading: EnergyReading | None = None

    def start(self) -> EnergyWindow:
        self._first = self.meter.sample()
        self._t0 = self._clock()
        self.reading = None
        return self

    def read(self) -> EnergyReading:
        """Energy from the start until now, leaving the window open (for a live view)."""
        if self._first is None:
            raise RuntimeError("EnergyWindow.read() before start()")
        last = self.meter.sample()
        seconds = (self._clock() - self._t0) / NS_PER_S
        return EnergyReading(
            joules=max(0.0, last.joules - self._first.joules),
            seconds=seconds,
            source=last.source,
            exact=self._first.exact and last.exact,
            note=note_of(self.meter),
        )

    def stop(self) -> EnergyReading:
        self.reading = self.read()
        self._first = None
        return self.reading

    def __enter__(self) -> EnergyWindow:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._first is not None:
            self.stop()


@dataclass(frozen=True, slots=True)
class BackendEnergy:
    """One backend's energy and hashes over the same interval.

    Attributes:
        backend: the backend's name (or "total").
        hashes: hashes done over the interval.
        joules: the backend's part of the energy.
        seconds: length of the interval.
        source: where the energy figure comes from.
        exact: whether it is measured.
        share: the fraction of the meter's energy given to this backend.
        note: the meter's note, plus how the energy was split.
    """

    backend: str
    hashes: int
    joules: float
    seconds: float
    source: str
    exact: bool
    share: float = 1.0
    note: str = ""

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0

    @property
    def j_per_hash(self) -> float | None:
        return j_per_hash(self.joules, self.hashes)

    @property
    def j_per_th(self) -> float | None:
        return j_per_th(self.joules, self.hashes)

    def as_dict(self) -> dict[str, Any]:
        """The JSON fields of bench and mine reports."""
        return {
            "backend": self.backend,
            "hashes": self.hashes,
            "seconds": self.seconds,
            "joules": self.joules,
            "watts": self.watts,
            "j_per_hash": self.j_per_hash,
            "j_per_th": self.j_per_th,
            "energy_source": self.source,
            "energy_exact": self.exact,
            "energy_share": self.share,
            "energy_note": self.note,
        }


def attribute(
    reading: EnergyReading,
    hashes: Mapping[str, int],
    cpu_us: Mapping[str, int] | None = None,
) -> list[BackendEnergy]:
    """Split one meter's reading between the backends that ran under it.

    One backend gets it all. Several (CPU backends on one package counter) are split by
    the CPU time each used, in microseconds (``cpu_us``, see
    :mod:`hashcore.telemetry.cputime` or ``time.thread_time_ns`` in each worker); with no
    CPU time recorded they are split evenly. The note says which was done.
    """
    names = list(hashes)
    if not names:
        return []
    if len(names) == 1:
        (name,) = names
        return [
            BackendEnergy(
                name, hashes[name], reading.joules, reading.seconds, reading.source, reading.exact, 1.0, reading.note
            )
        ]
    if cpu_us is not None and (missing := [n for n in names if n not in cpu_us]):
        raise ValueError(f"no CPU time given for {', '.join(missing)}")
    cpu = {n: max(0, cpu_us[n]) for n in names} if cpu_us is not None else {}
    spent = sum(cpu.values())
    if spent > 0:
        shares = {n: cpu[n] / spent for n in names}
        how = "by CPU time"
    else:
        shares = {n: 1 / len(names) for n in names}
        how = "evenly (no CPU time recorded)"
    split = ", ".join(f"{n} {shares[n]:.1%}" for n in names)
    note = f"{reading.note}; one {reading.source} counter split {how}: {split}".lstrip("; ")
    return [
        BackendEnergy(
            n, hashes[n], reading.joules * shares[n], reading.seconds, reading.source, reading.exact, shares[n], note
        )
        for n in names
    ]


def total(entries: Sequence[BackendEnergy], name: str = "total") -> BackendEnergy:
    """Every backend together: summed joules and hashes, the longest interval, and a
    source that names every source used ("rapl+nvml"); exact only if all are."""
    sources = sorted({e.source for e in entries}) or ["none"]
    return BackendEnergy(
        backend=name,
        hashes=sum(e.hashes for e in entries),
        joules=sum(e.joules for e in entries),
        seconds=max((e.seconds for e in entries), default=0.0),
        source="+".join(sources),
        exact=bool(entries) and all(e.exact for e in entries),
        share=1.0,
        note="; ".join(dict.fromkeys(e.note for e in entries if e.note)),
    )
