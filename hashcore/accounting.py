"""The miner's books: share and hash counters, the recent power, and the snapshot built
from them (:class:`~hashcore.control.MinerStats`).

The counters are changed on the miner's event loop only; building a snapshot reads them
and the energy meters and changes nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from hashcore.control import BackendView, EnergyView, MinerStats, PoolView
from hashcore.metering import EnergyLedger
from hashcore.stratum import events as ev
from hashcore.stratum.client import StratumClient
from hashcore.telemetry import BackendEnergy
from hashcore.work import Job

#: The window of the "recent" hashrate and power shown live (cgminer's "5s" figure).
RECENT_SECONDS = 5.0

#: What a snapshot says of the energy before the miner started.
NOT_STARTED = EnergyView(note="not started", recent_watts=0.0)


@dataclass(slots=True)
class ShareCounts:
    """Shares by the pool's answer, kept per pool and per backend."""

    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    difficulty_accepted: float = 0.0
    last_share_time: float | None = None
    last_reject_reason: str | None = None

    def record(self, result: ev.ShareResult, difficulty: float) -> None:
        if result.accepted:
            self.accepted += 1
            self.difficulty_accepted += difficulty
            self.last_share_time = time.time()
        elif result.stale:
            self.stale += 1
        else:
            self.rejected += 1
            self.last_reject_reason = result.reason


@dataclass(slots=True)
class PoolCounters(ShareCounts):
    """Shares by outcome for one pool, and its connection state."""

    url: str = ""
    unanswered: int = 0
    connected: bool = False
    difficulty: float | None = None


@dataclass(slots=True)
class BackendCounters(ShareCounts):
    """Hashes, results and shares for one backend."""

    name: str = ""
    threads: int = 0
    hashes: int = 0
    results: int = 0
    false_positives: int = 0
    errors: int = 0
    path: str | None = None
    #: Why each failing worker (by index) is failing; empty while all scan.
    failing: dict[int, str] = field(default_factory=dict)
    _recent: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def add(self, hashes: int, now: float) -> None:
        self.hashes += hashes
        self._recent.append((now, hashes))
        while self._recent and self._recent[0][0] < now - RECENT_SECONDS:
            self._recent.popleft()

    def recent_hashrate(self, now: float) -> float:
        recent = [h for t, h in self._recent if t >= now - RECENT_SECONDS]
        return sum(recent) / RECENT_SECONDS


@dataclass(slots=True)
class Books:
    """Every count the miner keeps: per pool, per backend, and of shares not sent."""

    pools: list[PoolCounters]
    backends: dict[str, BackendCounters] = field(default_factory=dict)
    #: Valid shares found for a job already gone (cleaned, or its connection closed).
    discarded: int = 0
    #: Shares found twice (sent once).
    duplicates: int = 0
    block_candidates: int = 0
    blocks_accepted: int = 0
    #: Valid shares not sent: over the share-rate cap.
    capped: int = 0

    def hashes(self) -> dict[str, int]:
        return {name: c.hashes for name, c in self.backends.items()}

    def recent_hashrate(self, now: float) -> float:
        return sum(c.recent_hashrate(now) for c in self.backends.values())


class PowerHistory:
    """Total joules sampled on the miner's tick, for the power over the last seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    def sample(self, now: float, joules: float) -> None:
        self._samples.append((now, joules))
        while len(self._samples) > 2 and self._samples[1][0] < now - RECENT_SECONDS:
            self._samples.popleft()

    def recent_watts(self, now: float, joules: float, average: float) -> float:
        """Watts since the oldest sample of the window; ``average`` until it spans half a second."""
        if not self._samples:
            return average
        then, joules_then = self._samples[0]
        span = now - then
        return (joules - joules_then) / span if span > 0.5 else average


def energy_view(energy: BackendEnergy, recent_watts: float | None = None) -> EnergyView:
    return EnergyView(energy.joules, energy.watts, energy.j_per_hash, energy.j_per_th, energy.source,
                      energy.exact, energy.note, recent_watts)


def read_energy(
    ledger: EnergyLedger | None, books: Books, power: PowerHistory, now: float
) -> tuple[dict[str, EnergyView], EnergyView]:
    """Energy per backend and in total, the total with its recent power."""
    if ledger is None:
        return {}, NOT_STARTED
    entries, overall = ledger.report(books.hashes())
    recent = power.recent_watts(now, overall.joules, overall.watts)
    return {name: energy_view(entry) for name, entry in entries.items()}, energy_view(overall, recent)


def pool_views(books: Books, client: StratumClient) -> tuple[PoolView, ...]:
    return tuple(
        PoolView(
            url=p.url,
            user=client.user_of(index),
            accepted=p.accepted,
            rejected=p.rejected,
            stale=p.stale,
            unanswered=p.unanswered,
            connected=p.connected,
            difficulty=p.difficulty,
            enabled=status.enabled,
            priority=client.priority.index(index),
            difficulty_accepted=p.difficulty_accepted,
            last_share_time=p.last_share_time,
            connects=status.connects,
            last_error=status.last_error,
        )
        for index, (p, status) in enumerate(zip(books.pools, client.status, strict=True))
    )


@dataclass(frozen=True, slots=True)
class Controls:
    """What the operator or the throttle set on one backend, and what it is doing."""

    duty: float
    active_threads: int
    state: str


def backend_view(c: BackendCounters, seconds: float, now: float, controls: Controls,
                 energy: EnergyView | None) -> BackendView:
    return BackendView(
        hashes=c.hashes,
        hashrate_hs=c.hashes / seconds if seconds else 0.0,
        recent_hashrate_hs=c.recent_hashrate(now),
        threads=c.threads,
        path=c.path,
        false_positives=c.false_positives,
        errors=c.errors,
        duty=controls.duty,
        state=controls.state,
        active_threads=controls.active_threads,
        accepted=c.accepted,
        rejected=c.rejected,
        stale=c.stale,
        difficulty_accepted=c.difficulty_accepted,
        last_share_time=c.last_share_time,
        energy=energy,
    )


def snapshot(
    books: Books,
    *,
    seconds: float,
    now: float,
    pools: tuple[PoolView, ...],
    backends: Mapping[str, BackendView],
    energy: EnergyView,
    active_pool: str | None,
    paused: bool,
    current_job: Job | None,
) -> MinerStats:
    hashes = sum(c.hashes for c in books.backends.values())
    return MinerStats(
        seconds=seconds,
        hashes=hashes,
        hashrate_hs=hashes / seconds if seconds else 0.0,
        recent_hashrate_hs=books.recent_hashrate(now),
        accepted=sum(p.accepted for p in books.pools),
        rejected=sum(p.rejected for p in books.pools),
        stale=sum(p.stale for p in books.pools),
        discarded=books.discarded,
        duplicates=books.duplicates,
        block_candidates=books.block_candidates,
        blocks_accepted=books.blocks_accepted,
        pools=pools,
        backends=backends,
        energy=energy,
        active_pool=active_pool,
        paused=paused,
        capped=books.capped,
        current_job=current_job,
    )
