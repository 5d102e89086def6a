"""How fast each backend runs here with its measured path, and which one ``--backend
auto`` takes.

Each CPU backend's rate comes from its :class:`~hashcore.backends.pathchoice.Choice`
(one thread measured, times the cores); OpenCL's from its tune. Rates measured at
different times are compared over the yardstick of their own measurement, so that a
neighbour busy during one of them does not decide; backends within a few percent of
the fastest tie, and the first of them in the order of preference (C first) takes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.backends.pathchoice import Choice

#: Backends within this fraction of the fastest tie: rates measured at different times
#: move by 1-2 % between runs. Of tied backends ``auto`` takes the first in the order the
#: rates come in (``base.FASTEST_FIRST``: C starts at once, OpenCL and Numba build first),
#: so a tie neither flips the choice from one measurement to the next nor costs a start-up.
TIE = 0.03


@dataclass(frozen=True, slots=True)
class BackendRate:
    """How fast a backend runs here with its measured path, for ``--backend auto``.

    Attributes:
        backend / path: the backend and the path its ``auto`` takes.
        per_core_hs: nonces per second per CPU core (None for GPUs).
        all_cores_hs: on every core, or every selected device (what ``mine`` runs).
        how: how ``all_cores_hs`` was found, in words.
        yardstick_hs: the yardstick of the measurement behind it (0 where unknown).
    """

    backend: str
    path: str
    per_core_hs: float | None
    all_cores_hs: float
    how: str
    yardstick_hs: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "per_core_hs": self.per_core_hs,
            "all_cores_hs": self.all_cores_hs,
            "how": self.how,
            "yardstick_hs": self.yardstick_hs,
        }


def by_yardstick(rates: Mapping[str, BackendRate]) -> bool:
    """Whether :func:`ranked` compares rates over their yardsticks: only when every
    measurement has one (a GPU's has none)."""
    return all(r.yardstick_hs > 0 for r in rates.values())


def _scores(rates: Mapping[str, BackendRate]) -> dict[str, float]:
    """Each backend's most on all cores, as a multiple of the yardstick of its own
    measurement where every one has one (so that a neighbour busy during one measurement
    does not decide), else its raw rate."""
    if by_yardstick(rates):
        return {name: rate.all_cores_hs / rate.yardstick_hs for name, rate in rates.items()}
    return {name: rate.all_cores_hs for name, rate in rates.items()}


def fastest(rates: Mapping[str, BackendRate]) -> str:
    """The backend ``auto`` takes: the fastest, or where others are within :data:`TIE`
    of it, the first of those in the order ``rates`` is given in."""
    scores = _scores(rates)
    best = max(scores.values())
    return next(name for name in rates if scores[name] >= best * (1 - TIE))


def ranked(rates: Mapping[str, BackendRate]) -> list[str]:
    """The backends as ``auto`` ranks them: its choice (:func:`fastest`), then the others
    fastest first."""
    scores, chosen = _scores(rates), fastest(rates)
    return [chosen, *sorted((name for name in rates if name != chosen), key=lambda name: -scores[name])]


def threaded_rate(backend: str, choice: Choice) -> BackendRate:
    """A CPU backend run one thread per core: its best per-thread rate times the cores
    (scaling assumed linear, as on cores without SMT siblings)."""
    cores = os.cpu_count() or 1
    per_core = choice.best_hs / choice.cores
    return BackendRate(backend, choice.chosen, per_core, per_core * cores,
                       f"one thread measured, times {cores} cores", choice.yardstick_hs)  # fmt: skip
