"""The power model of the fleet: watts and hashrate of each backend against its duty.

A backend duty-cycles between running and paused, so its average power is linear in
the fraction of the time it runs: ``paused + fraction × (full - paused)``, and its
hashrate is ``fraction × full hashrate``. The full-duty figures come from
``hashcore bench`` (on a VM without RAPL that is the labelled estimate, and the model
says so in ``source``). Every watt here is power above the host's idle floor: what
mining adds. ``paused_watts`` is what a paused backend still draws (zero for a CPU,
the sleep power of an ASIC board).

A backend may also carry an efficiency curve (its operating points, from
``hashcore bench --sweep`` or a device model): full duty is then its top point, and a
DVFS actuator may run it at a slower, cheaper point instead of duty-cycling it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from hashcore.errors import ConfigError
from hashcore.throttle.devices import EfficiencyCurve, curve_from_points

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
        curve: its operating points (the top one is full duty), where known.
    """

    name: str
    full_watts: float
    hashrate_hs: float
    threads: int = 1
    paused_watts: float = 0.0
    kind: str = "cpu"
    source: str = "model"
    curve: EfficiencyCurve | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.full_watts) and self.full_watts > 0):
            raise ConfigError(f"{self.name}: full-duty power must be positive, not {self.full_watts}")
        if not (0 <= self.paused_watts < self.full_watts):
            raise ConfigError(f"{self.name}: paused power must be in [0, full power), not {self.paused_watts}")
        if not (math.isfinite(self.hashrate_hs) and self.hashrate_hs > 0):
            raise ConfigError(f"{self.name}: hashrate must be positive, not {self.hashrate_hs}")
        if self.threads < 1:
            raise ConfigError(f"{self.name}: threads must be at least 1")
        if self.curve is not None:
            top = self.curve.top
            if not (math.isclose(top.watts, self.full_watts, rel_tol=1e-6)
                    and math.isclose(top.hashrate_hs, self.hashrate_hs, rel_tol=1e-6)):
                raise ConfigError(f"{self.name}: full duty must be the curve's top operating point")
            if self.curve.points[0].watts <= self.paused_watts:
                raise ConfigError(f"{self.name}: every operating point must draw more than the paused power")

    @classmethod
    def from_curve(cls, name: str, curve: EfficiencyCurve, *, kind: str = "asic", threads: int = 1,
                   paused_watts: float = 0.0, source: str | None = None) -> BackendModel:
        """A backend whose full duty is ``curve``'s top point."""
        return cls(name, curve.top.watts, curve.top.hashrate_hs, threads, paused_watts, kind,
                   source or curve.source.split(":")[0], curve)

    def resized(self, watts_factor: float, j_per_th: float | None = None) -> BackendModel:
        """More (or fewer) machines of the same kind, and optionally another efficiency."""
        hash_factor = watts_factor
        if j_per_th is not None:
            hash_factor = self.full_watts * watts_factor / (j_per_th * 1e-12) / self.hashrate_hs
        curve = None
        if self.curve is not None:
            curve = self.curve.scaled(self.full_watts * watts_factor, j_per_th)
        return replace(self, full_watts=self.full_watts * watts_factor, hashrate_hs=self.hashrate_hs * hash_factor,
                       paused_watts=self.paused_watts * watts_factor, curve=curve,
                       source="model" if j_per_th is not None else self.source)

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
            backends = [b.resized(k) for b in backends]
        if j_per_th is not None:
            if not (math.isfinite(j_per_th) and j_per_th > 0):
                raise ConfigError(f"J/TH must be positive, not {j_per_th}")
            backends = [b.resized(1.0, j_per_th) for b in backends]
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
                **({"operating_points": b.curve.to_json()} if b.curve is not None else {}),
            }
            for b in self.backends
        ]


def backend_from_report(report: dict[str, Any]) -> BackendModel:
    """A backend model from one ``hashcore bench --json`` report (or its dict)."""
    try:
        name = str(report["backend"])
        points = report.get("operating_points")
        if points:
            curve = curve_from_points(name, points, "sweep")
            return BackendModel.from_curve(name, curve, kind=str(report.get("kind", KIND_BY_BACKEND.get(name, "cpu"))),
                                           threads=int(report.get("threads", 1)),
                                           paused_watts=float(report.get("paused_watts", 0.0)),
                                           source=str(report.get("source", "sweep")))
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
    """A fleet from bench reports, or from the operating points of ``bench --sweep``
    (rows with ``freq_mhz``: one backend per ``backend`` named in them)."""
    rows = list(reports)
    if rows and all("freq_mhz" in r for r in rows):
        by_backend: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_backend.setdefault(str(row.get("backend", "sweep")), []).append(row)
        return FleetModel(tuple(
            BackendModel.from_curve(name, curve_from_points(name, points, "sweep"),
                                    kind=KIND_BY_BACKEND.get(name, "cpu"),
                                    source=str(points[0].get("energy_source", "sweep")))
            for name, points in by_backend.items()))
    return FleetModel(tuple(backend_from_report(r) for r in rows))


def fleet_from_json(data: Any, where: str) -> FleetModel:
    """A fleet from the JSON of ``hashcore bench --json`` or ``bench --all --json``."""
    if isinstance(data, dict) and "backends" in data:
        data = data["backends"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ConfigError(f"{where}: expected the JSON of 'hashcore bench --json' or 'bench --all --json'")
    return fleet_from_reports(data)
