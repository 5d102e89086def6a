"""The power model of the fleet: watts and hashrate of each backend against its duty.

A backend duty-cycles between running and paused, so its average power is linear in
the fraction of the time it runs: ``paused + fraction × (full - paused)``, and its
hashrate is ``fraction × full hashrate``. The full-duty figures come from
``hashcore bench`` (on a VM without RAPL that is the labelled estimate, and the model
says so in ``source``). Every watt here is power above the host's idle floor: what
mining adds. ``paused_watts`` is what a paused backend still draws (zero for a CPU,
the sleep power of an ASIC board).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hashcore.errors import ConfigError

#: Which backends are not CPU code (for the actuators they get).
KIND_BY_BACKEND = {"opencl": "gpu", "cuda": "gpu", "asic": "asic"}


@dataclass(frozen=True, slots=True)
class BackendModel:
    """One backend at full duty with all its threads.

    Attributes:
        name: the backend's name.
        full_watts: power at full duty, above the idle floor (W).
        hashrate_hs: hashes per second at full duty.
        threads: worker threads at full duty.
        paused_watts: power while paused (W), part of ``full_watts``.
        kind: cpu, gpu or asic (which actuators apply).
        source: where the figures come from (``estimate``, ``rapl``, ``model``...).
    """

    name: str
    full_watts: float
    hashrate_hs: float
    threads: int = 1
    paused_watts: float = 0.0
    kind: str = "cpu"
    source: str = "model"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.full_watts) and self.full_watts > 0):
            raise ConfigError(f"{self.name}: full-duty power must be positive, not {self.full_watts}")
        if not (0 <= self.paused_watts < self.full_watts):
            raise ConfigError(f"{self.name}: paused power must be in [0, full power), not {self.paused_watts}")
        if not (math.isfinite(self.hashrate_hs) and self.hashrate_hs > 0):
            raise ConfigError(f"{self.name}: hashrate must be positive, not {self.hashrate_hs}")
        if self.threads < 1:
            raise ConfigError(f"{self.name}: threads must be at least 1")

    @property
    def span_watts(self) -> float:
        """The power the duty cycle controls: full minus paused."""
        return self.full_watts - self.paused_watts

    @property
    def j_per_hash(self) -> float:
        return self.full_watts / self.hashrate_hs

    def power(self, fraction: float) -> float:
        return self.paused_watts + fraction * self.span_watts

    def hashrate(self, fraction: float) -> float:
        return fraction * self.hashrate_hs


@dataclass(frozen=True, slots=True)
class FleetModel:
    """Every backend, cheapest joules per hash first (the order they are switched on)."""

    backends: tuple[BackendModel, ...]

    def __post_init__(self) -> None:
        if not self.backends:
            raise ConfigError("a fleet needs at least one backend")
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ConfigError(f"backend listed twice: {', '.join(names)}")
        ordered = tuple(sorted(self.backends, key=lambda b: b.j_per_hash))
        object.__setattr__(self, "backends", ordered)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]

    @property
    def full_watts(self) -> float:
        return sum(b.full_watts for b in self.backends)

    @property
    def paused_watts(self) -> float:
        return sum(b.paused_watts for b in self.backends)

    @property
    def span_watts(self) -> float:
        return self.full_watts - self.paused_watts

    @property
    def hashrate_hs(self) -> float:
        return sum(b.hashrate_hs for b in self.backends)

    @property
    def source(self) -> str:
        return "+".join(sorted({b.source for b in self.backends}))

    def backend(self, name: str) -> BackendModel:
        for b in self.backends:
            if b.name == name:
                return b
        raise KeyError(name)

    def scaled(
        self,
        miner_watts: float | None = None,
        j_per_th: float | None = None,
        paused_watts: float | None = None,
    ) -> FleetModel:
        """The same fleet sized to a site.

        ``miner_watts`` scales every backend's power and hashrate together (same J/H: more
        machines of the same kind); ``j_per_th`` sets every backend's efficiency (its
        hashrate follows from its power); ``paused_watts`` sets the fleet's total paused
        power, split in proportion to full power.
        """
        backends = list(self.backends)
        if miner_watts is not None:
            if not (math.isfinite(miner_watts) and miner_watts > 0):
                raise ConfigError(f"--miner-watts must be positive, not {miner_watts}")
            k = miner_watts / self.full_watts
            backends = [replace(b, full_watts=b.full_watts * k, hashrate_hs=b.hashrate_hs * k,
                                paused_watts=b.paused_watts * k) for b in backends]
        if j_per_th is not None:
            if not (math.isfinite(j_per_th) and j_per_th > 0):
                raise ConfigError(f"J/TH must be positive, not {j_per_th}")
            backends = [replace(b, hashrate_hs=b.full_watts / (j_per_th * 1e-12), source="model")
                        for b in backends]
        if paused_watts is not None:
            total = sum(b.full_watts for b in backends)
            if not 0 <= paused_watts < total:
                raise ConfigError(f"paused power must be in [0, {total:g}) W, not {paused_watts}")
            backends = [replace(b, paused_watts=paused_watts * b.full_watts / total) for b in backends]
        return FleetModel(tuple(backends))

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "backend": b.name,
                "full_watts": b.full_watts,
                "paused_watts": b.paused_watts,
                "hashrate_hs": b.hashrate_hs,
                "threads": b.threads,
                "j_per_th": b.j_per_hash * 1e12,
                "kind": b.kind,
                "source": b.source,
            }
            for b in self.backends
        ]


def backend_from_report(report: dict[str, Any]) -> BackendModel:
    """A backend model from one ``hashcore bench --json`` report (or its dict)."""
    try:
        name = str(report["backend"])
        return BackendModel(
            name=name,
            full_watts=float(report["watts"]),
            hashrate_hs=float(report["hashrate_hs"]),
            threads=int(report.get("threads", 1)),
            kind=KIND_BY_BACKEND.get(name, "cpu"),
            source=str(report.get("energy_source", "model")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"a bench report needs backend, watts and hashrate_hs ({exc})") from None


def fleet_from_reports(reports: Iterable[dict[str, Any]]) -> FleetModel:
    return FleetModel(tuple(backend_from_report(r) for r in reports))


def load_fleet(path: str | Path) -> FleetModel:
    """A fleet from a file written by ``hashcore bench --json`` or ``bench --all --json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from None
    if isinstance(data, dict) and "backends" in data:
        data = data["backends"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ConfigError(f"{path}: expected the JSON of 'hashcore bench --json' or 'bench --all --json'")
    return fleet_from_reports(data)


def measure_fleet(
    names: Sequence[str],
    threads: int | None = None,
    seconds: float = 1.0,
    **bench_options: Any,
) -> FleetModel:
    """Benchmark each backend (``hashcore.bench``) and model it from the result.

    ``threads`` None uses each backend's default (one per core for CPU backends), as the
    miner does. Takes about ``seconds`` per backend.
    """
    from hashcore.bench import bench
    from hashcore.workers import default_threads

    reports = []
    for name in names:
        count = threads or default_threads(name)
        reports.append(bench(name, seconds, count, baseline=False, **bench_options).to_json())
    return fleet_from_reports(reports)
