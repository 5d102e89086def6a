"""Test doubles of the control boundary (:mod:`hashcore.control`): a miner and a throttle.

:class:`MinerDouble` implements :class:`~hashcore.control.MinerControl`: it returns the
snapshot it is given (with the knobs' effects applied) and records every knob call.
:class:`ThrottleDouble` implements :class:`~hashcore.control.ThrottleControl`. Build
snapshots with :func:`stats`, :func:`backend` and :func:`pool`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hashcore.control import BackendView, EnergyView, MinerStats, PoolView
from hashcore.errors import ConfigError


def backend(**fields: Any) -> BackendView:
    """A backend hashing at 1 H/s on one thread, with ``fields`` changed."""
    defaults: dict[str, Any] = {"hashes": 10, "hashrate_hs": 1.0, "recent_hashrate_hs": 1.0, "threads": 1,
                                "active_threads": 1}
    return BackendView(**{**defaults, **fields})


def pool(url: str = "stratum+tcp://pool.example:3333", **fields: Any) -> PoolView:
    return PoolView(url=url, user=fields.pop("user", "alice"), **fields)


def stats(**fields: Any) -> MinerStats:
    """A snapshot of ten seconds' mining on one ``c`` backend, with ``fields`` changed."""
    backends = fields.pop("backends", {"c": backend()})
    defaults: dict[str, Any] = {
        "seconds": 10.0, "hashes": sum(b.hashes for b in backends.values()), "hashrate_hs": 1.0,
        "recent_hashrate_hs": 1.0, "accepted": 0, "rejected": 0, "stale": 0, "discarded": 0, "duplicates": 0,
        "block_candidates": 0, "blocks_accepted": 0, "pools": (), "energy": EnergyView(recent_watts=0.0),
        "active_pool": None,
    }
    return MinerStats(backends=backends, **{**defaults, **fields})


class MinerDouble:
    """A miner as presenters and the throttle see one.

    ``stats()`` is ``snapshot`` with what the knobs set (paused, duty, threads, pools);
    ``calls`` lists each knob call as ``(name, *args)``.
    """

    def __init__(self, snapshot: MinerStats | None = None, *, user: str = "alice") -> None:
        self.snapshot = snapshot or stats()
        self._user = user
        self.calls: list[tuple[Any, ...]] = []
        self._paused = self.snapshot.paused
        self.shares_in_flight = 0

    @property
    def user(self) -> str:
        return self._user

    @property
    def paused(self) -> bool:
        return self._paused

    def stats(self) -> MinerStats:
        return dataclasses.replace(self.snapshot, paused=self._paused)

    def _backend(self, name: str) -> BackendView:
        if name not in self.snapshot.backends:
            raise ConfigError(f"backend {name!r} is not running")
        return self.snapshot.backends[name]

    def _set_backend(self, name: str, **changes: Any) -> None:
        views = dict(self.snapshot.backends)
        views[name] = dataclasses.replace(self._backend(name), **changes)
        self.snapshot = dataclasses.replace(self.snapshot, backends=views)

    def _set_pool(self, index: int, **changes: Any) -> None:
        pools = list(self.snapshot.pools)
        if not 0 <= index < len(pools):
            raise ConfigError(f"no pool {index}")
        pools[index] = dataclasses.replace(pools[index], **changes)
        self.snapshot = dataclasses.replace(self.snapshot, pools=tuple(pools))

    def pause(self) -> None:
        self.calls.append(("pause",))
        self._paused = True

    def resume(self) -> None:
        self.calls.append(("resume",))
        self._paused = False

    def set_duty(self, backend: str, duty: float) -> None:
        self.calls.append(("set_duty", backend, duty))
        self._set_backend(backend, duty=min(max(duty, 0.0), 1.0))

    def duty(self, backend: str) -> float:
        return self._backend(backend).duty

    def max_threads(self, backend: str) -> int:
        return self._backend(backend).threads

    def set_threads(self, backend: str, threads: int) -> None:
        self.calls.append(("set_threads", backend, threads))
        self._set_backend(backend, active_threads=min(max(threads, 0), self.max_threads(backend)))

    def active_threads(self, backend: str) -> int:
        return self._backend(backend).active_threads

    def has_operating_points(self, backend: str) -> bool:
        self._backend(backend)
        return False

    def set_operating_point(self, backend: str, freq_mhz: float, voltage_mv: float | None = None) -> None:
        self.calls.append(("set_operating_point", backend, freq_mhz, voltage_mv))
        raise ConfigError(f"backend {backend!r} has no frequency or voltage control")

    def add_pool(self, url: str) -> int:
        self.calls.append(("add_pool", url))
        self.snapshot = dataclasses.replace(self.snapshot, pools=(*self.snapshot.pools, pool(url, user=self._user)))
        return len(self.snapshot.pools) - 1

    def switch_pool(self, index: int) -> None:
        self.calls.append(("switch_pool", index))
        self._set_pool(index)
        self.snapshot = dataclasses.replace(self.snapshot, active_pool=self.snapshot.pools[index].url)

    def enable_pool(self, index: int) -> None:
        self.calls.append(("enable_pool", index))
        self._set_pool(index, enabled=True)

    def disable_pool(self, index: int) -> None:
        self.calls.append(("disable_pool", index))
        self._set_pool(index, enabled=False)


class ThrottleDouble:
    """A throttle following ``budget_w`` until given a target; ``targets`` lists each
    ``set_target`` call. ``status()`` carries ``extra`` fields besides ``budget_w``."""

    def __init__(self, budget_w: float | None = 40.0, **extra: Any) -> None:
        self.configured = budget_w
        self.target: float | None = None
        self.targets: list[float | None] = []
        self.extra = extra

    def set_target(self, watts: float | None) -> None:
        self.targets.append(watts)
        self.target = watts

    def status(self) -> Mapping[str, Any]:
        return {"budget_w": self.configured if self.target is None else self.target, **self.extra}
