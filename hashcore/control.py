"""The one typed boundary of a running miner: what it shows and the knobs it offers.

A snapshot (:class:`MinerStats`) is frozen values: the miner's counts, one
:class:`PoolView` per pool, one :class:`BackendView` per backend and an
:class:`EnergyView`. ``MinerStats.to_json()`` is the ``hashcore mine --json`` summary, and each view's
``to_json()`` its part of it.

The API, the metrics, the dashboard, the live view and the throttle read snapshots and
drive the miner through :class:`MinerControl`; a throttle is driven through
:class:`ThrottleControl`. Neither protocol names the engine, so a test double
implements them in a few lines. Pool URLs in a snapshot carry no password (a view
redacts the URL it is given): every URL shown anywhere goes through :func:`redact_url`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hashcore.errors import ConfigError
from hashcore.stratum.urls import redact_url
from hashcore.work import Job

#: The most pools a miner takes (the command line's, the config's and those added through
#: the API together): each is a failover entry the client walks and a row in every reply.
MAX_POOLS = 16

__all__ = [
    "MAX_POOLS",
    "BackendView",
    "EnergyView",
    "MinerControl",
    "MinerStats",
    "PoolView",
    "ThrottleControl",
    "ThrottleView",
    "budget_watts",
    "finite_or_none",
    "power_target",
    "redact_url",
    "short_label",
]


@dataclass(frozen=True, slots=True, eq=True)
class EnergyView:
    """Energy since the miner started, for one backend or all of them.

    Attributes:
        joules: energy used (J).
        watts: average power since start (W).
        j_per_hash / j_per_th: energy per hash and per terahash; None before the first hash.
        source: where the figures come from (``rapl``, ``nvml``, ``asic``, ``estimate``, ``none``).
        exact: False for an estimate.
        note: how the figure was made (shown beside it).
        recent_watts: the power over the last few seconds (W); for the miner's total only.
    """

    joules: float = 0.0
    watts: float = 0.0
    j_per_hash: float | None = None
    j_per_th: float | None = None
    source: str = "none"
    exact: bool = False
    note: str = ""
    recent_watts: float | None = None

    def to_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "joules": self.joules,
            "watts": self.watts,
            "j_per_hash": self.j_per_hash,
            "j_per_th": self.j_per_th,
            "energy_source": self.source,
            "energy_exact": self.exact,
            "energy_note": self.note,
        }
        if self.recent_watts is not None:
            fields["recent_watts"] = self.recent_watts
        return fields


@dataclass(frozen=True, slots=True, eq=True)
class PoolView:
    """One pool of the failover list.

    Attributes:
        url: the pool's URL, without any password (taken out here if given).
        user: the worker name used on it.
        accepted / rejected / stale: shares by the pool's answer.
        unanswered: shares sent that got no answer (or could not be sent).
        connected: whether it is connected now.
        difficulty: its share difficulty (None before it said).
        enabled / priority: the operator's switch and the failover rank (0 first).
        difficulty_accepted: the sum of the difficulty of the accepted shares.
        last_share_time: when the last share was accepted (epoch seconds), or None.
        connects: connections opened; last_error: why the last one failed, or None.
    """

    url: str
    user: str
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    unanswered: int = 0
    connected: bool = False
    difficulty: float | None = None
    enabled: bool = True
    priority: int = 0
    difficulty_accepted: float = 0.0
    last_share_time: float | None = None
    connects: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", redact_url(self.url))

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "user": self.user,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stale": self.stale,
            "unanswered": self.unanswered,
            "connected": self.connected,
            "difficulty": self.difficulty,
            "enabled": self.enabled,
            "priority": self.priority,
            "difficulty_accepted": self.difficulty_accepted,
            "last_share_time": self.last_share_time,
            "connects": self.connects,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True, eq=True)
class BackendView:
    """One backend: its hashes, its workers, its state, its shares and its energy.

    Attributes:
        hashes / hashrate_hs / recent_hashrate_hs: hashes done, their rate since start
            and over the last 5 s (H/s).
        threads / active_threads / duty: workers opened, those allowed to scan, and the
            fraction of the time they scan.
        path: the code path (``shani``, ``avx2``...), or None.
        state: ``mining``, ``paused``, ``waiting for work``, ``retrying: <why>``, a
            device's own state, or ``stopped``.
        false_positives / errors: results failing the exact check; failed scans or results.
        accepted / rejected / stale / difficulty_accepted / last_share_time: its shares.
        energy: its energy figures; None where no meter reported on it.
    """

    hashes: int = 0
    hashrate_hs: float = 0.0
    recent_hashrate_hs: float = 0.0
    threads: int = 0
    path: str | None = None
    false_positives: int = 0
    errors: int = 0
    duty: float = 1.0
    state: str = "mining"
    active_threads: int = 0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    difficulty_accepted: float = 0.0
    last_share_time: float | None = None
    energy: EnergyView | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "hashes": self.hashes,
            "hashrate_hs": self.hashrate_hs,
            "recent_hashrate_hs": self.recent_hashrate_hs,
            "threads": self.threads,
            "path": self.path,
            "false_positives": self.false_positives,
            "errors": self.errors,
            "duty": self.duty,
            "state": self.state,
            "active_threads": self.active_threads,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stale": self.stale,
            "difficulty_accepted": self.difficulty_accepted,
            "last_share_time": self.last_share_time,
            **(self.energy.to_json() if self.energy is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class MinerStats:
    """A snapshot of a running miner (see :meth:`hashcore.Miner.stats`).

    Attributes:
        seconds: since the miner started.
        hashes / hashrate_hs / recent_hashrate_hs: all backends together.
        accepted / rejected / stale: shares by the pools' answers, all pools together.
        discarded: valid shares found for a job already gone; duplicates: found twice.
        capped: valid shares not sent, over the share-rate cap.
        block_candidates / blocks_accepted: nonces meeting the block target sent, and
            those the pool accepted.
        pools / backends / energy: the views above.
        active_pool: the URL of the pool mined on now (password taken out), or None.
        paused: whether the operator paused mining.
        current_job: the job being mined, or None between connections.
    """

    seconds: float
    hashes: int
    hashrate_hs: float
    recent_hashrate_hs: float
    accepted: int
    rejected: int
    stale: int
    discarded: int
    duplicates: int
    block_candidates: int
    blocks_accepted: int
    pools: tuple[PoolView, ...]
    backends: Mapping[str, BackendView]
    energy: EnergyView
    active_pool: str | None
    paused: bool = False
    capped: int = 0
    current_job: Job | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.active_pool is not None:
            object.__setattr__(self, "active_pool", redact_url(self.active_pool))

    def to_json(self) -> dict[str, Any]:
        """The ``hashcore mine --json`` summary object."""
        return {
            "hashes": self.hashes,
            "seconds": round(self.seconds, 3),
            "hashrate_hs": self.hashrate_hs,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "stale": self.stale,
            "discarded": self.discarded,
            "duplicates": self.duplicates,
            "capped": self.capped,
            "blocks": {"candidates": self.block_candidates, "accepted": self.blocks_accepted},
            "pools": [pool.to_json() for pool in self.pools],
            "backends": {name: backend.to_json() for name, backend in self.backends.items()},
            "paused": self.paused,
            **self.energy.to_json(),
        }

    @property
    def unanswered(self) -> int:
        """Shares sent to any pool that got no answer."""
        return sum(pool.unanswered for pool in self.pools)

    @property
    def difficulty_accepted(self) -> float:
        """The sum of the difficulty of the shares every pool accepted."""
        return sum(pool.difficulty_accepted for pool in self.pools)

    @property
    def mean_duty(self) -> float | None:
        """The backends' duty cycles weighted by their threads (None before any runs)."""
        total = sum(b.threads for b in self.backends.values())
        return sum(b.duty * b.threads for b in self.backends.values()) / total if total else None

    def pool_at(self, url: str | None) -> PoolView | None:
        """The pool whose URL is ``url`` (the active pool's view, say), or None."""
        return next((pool for pool in self.pools if pool.url == url), None)


class MinerControl(Protocol):
    """What presenters and the throttle may do with a running miner.

    :class:`hashcore.engine.Miner` satisfies it; so does the double in ``tests/doubles.py``.
    Knobs naming a backend that is not running raise ConfigError.
    """

    @property
    def user(self) -> str:
        """The worker name pools get unless their URL names another."""
        ...

    @property
    def paused(self) -> bool: ...

    @property
    def shares_in_flight(self) -> int:
        """Shares sent whose answer has not come back yet."""
        ...

    def stats(self) -> MinerStats: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def set_duty(self, backend: str, duty: float) -> None: ...
    def duty(self, backend: str) -> float: ...
    def max_threads(self, backend: str) -> int: ...
    def set_threads(self, backend: str, threads: int) -> None: ...
    def active_threads(self, backend: str) -> int: ...
    def has_operating_points(self, backend: str) -> bool: ...
    def set_operating_point(self, backend: str, freq_mhz: float, voltage_mv: float | None = None) -> None: ...
    def add_pool(self, url: str) -> int: ...
    def switch_pool(self, index: int) -> None: ...
    def enable_pool(self, index: int) -> None: ...
    def disable_pool(self, index: int) -> None: ...


@runtime_checkable
class ThrottleControl(Protocol):
    """A power-budget follower the operator can steer.

    ``set_target(watts)`` sets a fixed power target (None: back to the configured
    policy); ``status()`` describes the current state: ``budget_w`` (the budget in
    force, watts or None), and optionally ``power_w``, ``policy`` and ``state``.
    """

    def set_target(self, watts: float | None) -> None: ...
    def status(self) -> Mapping[str, Any]: ...


#: Longest label taken from outside (a throttle's status, a bench file): a label, not a document.
MAX_LABEL = 80


@dataclass(frozen=True, slots=True)
class ThrottleView:
    """The throttle fields shown beside a snapshot: numbers finite or None, labels short."""

    budget_w: float | None = None
    power_w: float | None = None
    policy: str | None = None
    state: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> ThrottleView:
        return cls(finite_or_none(status.get("budget_w")), finite_or_none(status.get("power_w")),
                   short_label(status.get("policy")), short_label(status.get("state")))

    def to_json(self) -> dict[str, Any]:
        return {"budget_w": self.budget_w, "power_w": self.power_w, "policy": self.policy, "state": self.state}


def budget_watts(throttle: ThrottleControl | None) -> float | None:
    """The budget in force, or None (no throttle, or no budget set)."""
    if throttle is None:
        return None
    value = throttle.status().get("budget_w")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def power_target(watts: object) -> float:
    """A power target from an operator (API or dashboard): a finite number of watts above 0.

    Raises ConfigError saying what is accepted. Zero is refused: it would stop every
    backend while looking like a target (pause does that, and says so)."""
    if isinstance(watts, bool) or not isinstance(watts, (int, float)) or not (math.isfinite(watts) and watts > 0):
        raise ConfigError("a power target is a number of watts above 0")
    return float(watts)


def finite_or_none(value: Any) -> float | None:
    """A finite number as a float; anything else (text, a bool, NaN, infinity) None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def short_label(value: Any) -> str | None:
    """``value`` as text of at most :data:`MAX_LABEL` characters; None stays None."""
    return None if value is None else str(value)[:MAX_LABEL]
