"""From pool jobs to nonce ranges: extranonce2, version and ntime rolling, and staleness.

A :class:`Template` is one job made ready for one pool connection (extranonces,
targets, version mask). The :class:`WorkSource` turns the newest template into a stream
of :class:`~hashcore.work.Work` headers (each a fresh extranonce2 and/or rolled version
bits, never reused within a job) and hands out nonce ranges of them to worker threads.
It is shared by those threads, hence the lock; it does no hashing and no I/O.

Rolling order: version bits first (BIP 310, cheap: the merkle root is kept), then
extranonce2, then ntime (only if the extranonce2 space of a job ran out).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field

from hashcore.work import NONCE_SPACE, Job, Work, WorkOrigin, deposit_bits, rolled_version


@dataclass(slots=True)
class Template:
    """A job made ready for one connection.

    Attributes:
        job: the job.
        session: the connection it came on (shares are only ever sent back there).
        extranonce1 / extranonce2_size: from the pool's subscribe or set_extranonce.
        share_target: the pool's share target when the job arrived (updated on
            set_difficulty for the work built afterwards).
        version_mask: the BIP 310 mask granted (0: none).
        block_candidate_sent: a block-target nonce was already submitted for this job;
            later work reports against the share target only (DESIGN.md).
        scan_target: the target backends scan for: the share target, or a harder one
            when the share-rate cap raised the local difficulty (None: the share target).
        block_candidates: whether nonces meeting only the block target (below the share
            difficulty) are looked for; off for pools that refuse them.
        serial: set by the WorkSource, unique per template: a pool may reuse a job id
            for another job, and a result must go with the job it was found in.
    """

    job: Job
    session: Hashable
    extranonce1: bytes
    extranonce2_size: int
    share_target: int
    version_mask: int = 0
    block_candidate_sent: bool = False
    scan_target: int | None = None
    block_candidates: bool = True
    serial: int = 0
    _extranonce2: int = 0
    _version_step: int = 0
    _ntime_offset: int = 0
    _merkle: bytes | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[Hashable, str]:
        return (self.session, self.job.job_id)

    @property
    def block_target(self) -> int:
        return self.job.block_target

    @property
    def local_target(self) -> int:
        """The target a share must meet to be sent: the pool's, or the capped one."""
        return self.share_target if self.scan_target is None else min(self.scan_target, self.share_target)

    def set_version_mask(self, mask: int) -> None:
        """A new BIP 310 mask, in force at once: the next header starts a fresh
        extranonce2, so no header is built twice under the two masks."""
        if mask != self.version_mask:
            self.version_mask = mask
            if self._merkle is not None:
                self._version_step = 1 << 32

    def next_work(self) -> Work:
        """The next header of this job that no earlier call has produced."""
        job = self.job
        rollable = 1 << bin(self.version_mask).count("1")
        if self._merkle is None or self._version_step >= rollable:
            if self._merkle is not None:
                self._extranonce2 += 1
                self._version_step = 0
            if self._extranonce2 >= 1 << (8 * self.extranonce2_size):
                self._extranonce2 = 0
                self._ntime_offset += 1
            extranonce2 = self._extranonce2.to_bytes(self.extranonce2_size, "big")
            self._merkle = job.merkle_root(self.extranonce1, extranonce2)
        extranonce2 = self._extranonce2.to_bytes(self.extranonce2_size, "big")
        bits = deposit_bits(self._version_step, self.version_mask)
        self._version_step += 1
        version = rolled_version(job.version, self.version_mask, bits)
        ntime = job.ntime + self._ntime_offset
        block_target = self.block_target
        target = self.local_target
        if self.block_candidates and not self.block_candidate_sent:
            target = max(target, block_target)
        origin = WorkOrigin(job.job_id, extranonce2, ntime, bits if self.version_mask else None)
        return Work(
            job.header76(self._merkle, ntime=ntime, version=version),
            target,
            share_target=self.share_target,
            block_target=block_target,
            origin=origin,
            version_mask=self.version_mask,
        )


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """A nonce range of one Work, with the template key it came from."""

    work: Work
    nonce_start: int
    count: int
    key: tuple[Hashable, str]
    serial: int = 0


class WorkSource:
    """Thread-safe supply of nonce ranges from the newest template.

    Args:
        nonce_span: nonces scanned per header before moving to the next header (2**32 is
            the whole nonce space; smaller spans spread work over more headers).
        keep_jobs: how many non-clean jobs stay valid for late results. A pool in a
            job storm (100 notify a second without clean_jobs) must not make a quarter
            second's scan stale before it returns; the embedded pool keeps as many.
    """

    def __init__(self, nonce_span: int = NONCE_SPACE, keep_jobs: int = 64) -> None:
        if not 1 <= nonce_span <= NONCE_SPACE:
            raise ValueError("nonce_span must be between 1 and 2**32")
        self.nonce_span = nonce_span
        self.keep_jobs = keep_jobs
        self._lock = threading.Condition()
        self._templates: dict[tuple[Hashable, str], Template] = {}
        self._current: Template | None = None
        self._work: Work | None = None
        self._cursor = 0
        self._stopped = False
        self._serials = itertools.count(1)

    # --- updates from the engine (event loop thread) ------------------------------------

    def add(self, template: Template) -> None:
        """A new job; clean jobs (or another connection's) make every earlier one stale."""
        with self._lock:
            template.serial = next(self._serials)
            if template.job.clean_jobs or (self._current is not None and self._current.session != template.session):
                self._templates.clear()
            self._templates[template.key] = template
            while len(self._templates) > self.keep_jobs:
                self._templates.pop(next(iter(self._templates)))
            self._current = template
            self._work = None
            self._lock.notify_all()

    def set_share_target(self, session: Hashable, target: int, scan_target: int | None = None) -> None:
        """A new difficulty (and local scan target): work built from now on uses it."""
        with self._lock:
            for template in self._templates.values():
                if template.session == session:
                    template.share_target, template.scan_target = target, scan_target
            self._work = None

    def set_version_mask(self, session: Hashable, mask: int) -> None:
        """The pool changed the version mask (mining.set_version_mask): in force at once."""
        with self._lock:
            for template in self._templates.values():
                if template.session == session:
                    template.set_version_mask(mask)
            self._work = None

    def refuse_block_candidates(self, session: Hashable) -> None:
        """The pool refuses block candidates below its share difficulty: stop looking."""
        with self._lock:
            for template in self._templates.values():
                if template.session == session:
                    template.block_candidates = False
            self._work = None

    def drop_session(self, session: Hashable) -> None:
        """A connection ended: its jobs are stale; workers wait for new work."""
        with self._lock:
            for key in [k for k, t in self._templates.items() if t.session == session]:
                del self._templates[key]
            if self._current is not None and self._current.session == session:
                self._current, self._work = None, None

    def mark_block_candidate(self, key: tuple[Hashable, str]) -> bool:
        """Record the job's block candidate; False when one was already sent."""
        with self._lock:
            template = self._templates.get(key)
            if template is None or template.block_candidate_sent:
                return False
            template.block_candidate_sent = True
            if template is self._current:
                self._work = None
            return True

    def template(self, key: tuple[Hashable, str], serial: int | None = None) -> Template | None:
        """The live template for a result's key, or None when its job is stale (or the
        job id now names another job than the one of ``serial``)."""
        with self._lock:
            template = self._templates.get(key)
            if template is None or (serial is not None and template.serial != serial):
                return None
            return template

    @property
    def current_job(self) -> Job | None:
        """The job being scanned now (None between connections)."""
        with self._lock:
            return self._current.job if self._current is not None else None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    # --- for worker threads ------------------------------------------------------------

    def take(self, count: int, timeout: float = 0.5) -> WorkUnit | None:
        """Up to ``count`` nonces of the current header; None when there is no work."""
        with self._lock:
            if self._current is None and not self._stopped:
                self._lock.wait(timeout)
            template = self._current
            if template is None or self._stopped:
                return None
            if self._work is None or self._cursor >= self.nonce_span:
                self._work = template.next_work()
                self._cursor = 0
            start = self._cursor
            count = max(1, min(count, self.nonce_span - start))
            self._cursor += count
            return WorkUnit(self._work, start, count, template.key, template.serial)
