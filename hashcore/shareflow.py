"""Between the pool and the workers' results, on the event loop: pool events become
work templates; each scan result is checked exactly, and shares are sent and their
answers counted.

Block candidates: a Work reports against the easier of the share and block targets.
A nonce that meets the block target is submitted even below the share difficulty, but
at most one per job (on regtest nearly every nonce does); it is counted as a block
candidate, not as a share. A pool that rejects such a candidate (ckpool answers "below
pool mindiff" and then bans the worker for a while) gets shares at its difficulty only,
for the rest of the run.

The share rate: a :class:`~hashcore.sharerate.ShareRateCap` per connection keeps the
shares sent under ``max_share_rate`` a second by raising the local difficulty when the
pool's would flood the loop and the socket (said once in the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from hashcore.accounting import Books
from hashcore.backends.base import ScanResult
from hashcore.errors import PoolError, WorkError
from hashcore.lograte import RateLimitedLog
from hashcore.sharerate import ShareRateCap
from hashcore.stratum import events as ev
from hashcore.stratum.client import StratumClient
from hashcore.stratum.options import Connected, Disconnected, Link
from hashcore.stratum.protocol import ClientConnection
from hashcore.work import Work, difficulty_to_target, target_to_difficulty, verify_nonce
from hashcore.worksource import Template, WorkSource, WorkUnit

# The engine's logger: operators filter share and pool messages by this name.
log = logging.getLogger("hashcore.engine")

#: Shares remembered per job to drop a backend's repeats (each header is built once).
MAX_SEEN_PER_JOB = 65536


@dataclass(slots=True)
class _Session:
    """The engine's own state for one pool connection; what the pool set (extranonce,
    version mask, difficulty) is the protocol's (``protocol``)."""

    protocol: ClientConnection
    rate_cap: ShareRateCap
    capped_said: bool = False

    @property
    def difficulty(self) -> float:
        return self.protocol.difficulty


class ShareFlow:
    """Pool events in, shares out, for one miner (see the module's docstring).

    Args:
        books: the miner's counters, changed here.
        source: where templates go and work units come from.
        client: the pool connection shares are sent on.
        max_share_rate: shares a second sent to one pool at most.
        warn: the miner's rate-limited warnings.
    """

    def __init__(self, books: Books, source: WorkSource, client: StratumClient, max_share_rate: float,
                 warn: RateLimitedLog) -> None:
        self.books = books
        self.source = source
        self.client = client
        self.max_share_rate = max_share_rate
        self._warn = warn
        #: Each share sent, waiting for its answer.
        self.answers: set[asyncio.Task[None]] = set()
        #: Pools (by index) that refuse block candidates below their share difficulty.
        self._shares_only: set[int] = set()
        self._sessions: dict[Link, _Session] = {}
        self._submitted: OrderedDict[Hashable, set[tuple[Any, ...]]] = OrderedDict()

    # --- results ---------------------------------------------------------------------------

    def on_result(self, name: str, unit: WorkUnit, result: ScanResult) -> None:
        """A scan's result: hashes counted, each nonce checked exactly, shares sent."""
        counters = self.books.backends[name]
        counters.add(result.hashes_done, time.monotonic())
        for i, nonce in enumerate(result.nonces):
            work = unit.work
            if result.versions is not None:
                try:
                    work = work.with_version(result.versions[i])
                except (WorkError, IndexError) as exc:
                    counters.errors += 1
                    self._warn.warning("bad result", "backend %s returned a bad version: %s", name, exc)
                    continue
            try:
                share = verify_nonce(work, nonce)
            except WorkError as exc:
                counters.errors += 1
                self._warn.warning("bad result", "backend %s returned a bad nonce: %s", name, exc)
                continue
            counters.results += 1
            if not share.meets_target:
                counters.false_positives += 1
                continue
            self._consider(unit, share, name)
        link = unit.key[0]
        session = self._sessions.get(link) if isinstance(link, Link) else None
        if session is not None and session.rate_cap.floor and session.rate_cap.relax(session.difficulty):
            assert isinstance(link, Link)
            self._apply_rate_cap(link, session)
            local = session.rate_cap.difficulty(session.difficulty)
            log.info("%s: local share difficulty lowered to %g", link.url, local)

    def _consider(self, unit: WorkUnit, share: Any, backend: str) -> None:
        template = self.source.template(unit.key, unit.serial)
        if template is None:
            self.books.discarded += 1  # its job was cleaned (or its id reused) or its connection is gone
            return
        origin = share.work.origin
        if origin.version_bits is not None and origin.version_bits & ~template.version_mask:
            self.books.discarded += 1  # rolled under a mask the pool has since narrowed
            return
        link = template.session
        assert isinstance(link, Link)
        seen = self._submitted.setdefault((unit.key, unit.serial), set())
        while len(self._submitted) > self.source.keep_jobs:
            self._submitted.popitem(last=False)
        identity = (origin.extranonce2, origin.ntime, origin.version_bits, share.nonce)
        if identity in seen:
            self.books.duplicates += 1
            return
        if len(seen) >= MAX_SEEN_PER_JOB:
            seen.clear()  # a job that lives for days must not hold every share it ever had
        below_share = not share.meets_share_target
        if share.meets_block_target and not (below_share and link.index in self._shares_only) \
                and self.source.mark_block_candidate(unit.key):
            kind = "block"
            self.books.block_candidates += 1
            log.warning("block candidate found: %s", share.hash[::-1].hex())
        elif below_share:
            return  # a block-target nonce after this job's one candidate: not a share
        elif share.value > template.local_target or not self._under_rate_cap(link):
            self.books.capped += 1  # a share, but over the rate cap: not sent (said once in the log)
            return
        else:
            kind = "share"
        seen.add(identity)
        pool = self.books.pools[link.index]
        try:
            answer = self.client.send_share(link, share.work.origin, share.nonce)
        except PoolError as exc:
            pool.unanswered += 1
            self._warn.warning("not sent", "%s: %s not sent: %s", link.url, kind, exc)
            return
        task = asyncio.create_task(self._count_answer(link, answer, kind, backend, share.work, below_share))
        self.answers.add(task)
        task.add_done_callback(self.answers.discard)

    def _under_rate_cap(self, link: Link) -> bool:
        """Note a share on ``link``; False when it is over the share-rate cap (the local
        difficulty then rises for the work built from now on)."""
        session = self._sessions.get(link)
        if session is None:
            return True
        cap = session.rate_cap
        floor = cap.floor
        if cap.found(session.difficulty):
            return True
        if cap.floor != floor:
            self._apply_rate_cap(link, session)
            self._say_capped(link, session, "")
        return False

    def _say_capped(self, link: Link, session: _Session, detail: str) -> None:
        """Say once per connection that its shares are capped; later steps quietly."""
        level = logging.INFO if session.capped_said else logging.WARNING
        session.capped_said = True
        log.log(level, "%s: difficulty %g would mean more than %g shares/s%s; sending shares at difficulty %g "
                "(block candidates are still looked for)", link.url, session.difficulty, self.max_share_rate, detail,
                session.rate_cap.difficulty(session.difficulty))

    def _apply_rate_cap(self, link: Link, session: _Session) -> None:
        """Work built from now on scans for the session's local difficulty."""
        local = session.rate_cap.difficulty(session.difficulty)
        self.source.set_share_target(link, difficulty_to_target(session.difficulty), difficulty_to_target(local))

    async def _count_answer(
        self, link: Link, answer: asyncio.Future[ev.ShareResult], kind: str, backend: str, work: Work,
        below_share: bool = False,
    ) -> None:
        pool = self.books.pools[link.index]
        try:
            result = await self.client.wait_answer(answer)
        except PoolError as exc:
            pool.unanswered += 1
            self._warn.warning("not confirmed", "%s: %s not confirmed: %s", link.url, kind, exc)
            return
        except asyncio.CancelledError:
            pool.unanswered += 1  # the miner stops before the answer came
            raise
        if kind == "block":
            if result.accepted:
                self.books.blocks_accepted += 1
            elif below_share and not result.stale:
                self._refuse_block_candidates(link, result)
            log.warning("%s: block candidate %s", link.url, "accepted" if result.accepted else result.reason)
            return
        # A share is worth the difficulty its work was sent at, not today's.
        difficulty = target_to_difficulty(work.share_target) if work.share_target else 0.0
        pool.record(result, difficulty)
        self.books.backends[backend].record(result, difficulty)
        if not result.accepted and not result.stale:
            self._warn.warning("rejected", "%s: share rejected: %s", link.url, result.reason)

    def _refuse_block_candidates(self, link: Link, result: ev.ShareResult) -> None:
        """The pool rejected a block candidate below its share difficulty: from now on
        send it shares at its difficulty only (some pools ban a worker after a few)."""
        if link.index in self._shares_only:
            return
        self._shares_only.add(link.index)
        self.source.refuse_block_candidates(link)
        log.warning("%s refuses block candidates below its share difficulty (%s); sending it shares at its "
                    "difficulty only", link.url, result.reason)

    # --- pool events -----------------------------------------------------------------------

    def on_pool_event(self, link: Link, event: object) -> None:
        """What the pool said: connection state, the version mask, the difficulty, jobs."""
        pool = self.books.pools[link.index]
        if isinstance(event, Disconnected):
            pool.connected = False
            self.source.drop_session(link)
            self._sessions.pop(link, None)
            return
        session = self._sessions.get(link)
        if session is None:
            protocol = self.client.session(link)
            if protocol is None:
                return  # from a connection already closed
            session = self._sessions[link] = _Session(protocol, ShareRateCap(self.max_share_rate))
        if isinstance(event, Connected):
            pool.connected = True
        elif isinstance(event, (ev.Configured, ev.SetVersionMask)):
            self.source.set_version_mask(link, event.version_mask)
        elif isinstance(event, ev.SetDifficulty):
            pool.difficulty = event.difficulty
            hashrate = self.books.recent_hashrate(time.monotonic())
            capped = session.rate_cap.expect(event.difficulty, hashrate)
            self._apply_rate_cap(link, session)
            if capped:
                self._say_capped(link, session, f" at {hashrate:.3g} H/s")
        elif isinstance(event, ev.NewJob):
            state = session.protocol
            if state.extranonce1 is None:
                log.warning("%s: job %r before subscription; ignored", link.url, event.job.job_id)
                return
            pool.difficulty = state.difficulty
            self.source.add(
                Template(
                    event.job,
                    link,
                    state.extranonce1,
                    state.extranonce2_size,
                    difficulty_to_target(state.difficulty),
                    state.version_mask,
                    scan_target=difficulty_to_target(session.rate_cap.difficulty(state.difficulty)),
                    block_candidates=link.index not in self._shares_only,
                )
            )
