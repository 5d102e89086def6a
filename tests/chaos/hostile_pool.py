"""A Stratum V1 pool on loopback that misbehaves as a test scripts it.

It speaks real Stratum over a real TCP socket, sends real-shaped jobs, and checks every
submitted share on its own with hashlib (independently of the miner's code), so a test
can assert both the misbehaviour's effect and the invariants: nothing unverified was
sent, and the miner's counts equal the pool's.

Each misbehaviour is a field of :class:`Script`; the defaults make a well-behaved pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hashcore.stratum.blocktemplate import EXTRANONCE2_SIZE, MAINNET_NBITS, JobMaker
from hashcore.stratum.fields import notify_params
from hashcore.work import Job, difficulty_to_target, rolled_version

MASK = 0x1FFFE000
#: How long a job takes to reach the miner on loopback and a share sent before it to come
#: back, with room for a busy event loop; a share of an old job sent after the miner had
#: the new one (a result scanned for up to a quarter second) mostly arrives later.
IN_FLIGHT_S = 0.05


@dataclass
class Script:
    """What the pool does. Times are seconds.

    Attributes:
        difficulty: the share difficulty set after subscribe.
        nbits: the block target of its jobs (``0x207fffff``: regtest, nearly every hash).
        silent: accept the TCP connection and never say a word.
        drop_on_configure: close the connection when the first message is
            ``mining.configure`` (pools from before BIP 310).
        job_before_authorize: send the difficulty and a job right after the subscribe
            answer, and answer authorize ``authorize_delay`` later (ckpool's order).
        authorize_delay: seconds before answering ``mining.authorize``.
        drop_after_authorize: close the connection this long after authorizing (None: never).
        answer_submits: answer shares at all.
        answer_delay: seconds before answering a share.
        storm_hz: ``mining.notify`` with clean_jobs false this many times a second.
        keep_jobs: jobs per connection a share may still be submitted for.
        refuse_below_share: reject block candidates below the share difficulty with
            ckpool's "below pool mindiff", and after ``ban_after`` of them reject every
            share of the connection ("banned").
        lines_after_authorize: raw lines written once the worker is authorized.
        lines_after_shares: (after N accepted shares on a connection, raw line) pairs.
        redirect_self: answer subscribe with ``client.reconnect`` to itself (a loop).
        stop_reading: after authorize, send ``ping_flood`` requests and read no more.
        job_interval: send a new job this often (clean_jobs ``job_clean``).
        reuse_job_id: every job gets the same id (a new job under an old name).
        narrow_mask_after: send ``mining.set_version_mask`` ``narrow_mask`` this long
            after authorize, without a new job (BIP 310: in force at once).
        silent_after: say nothing more this long after authorize (a hung pool).
        string_ids: echo request ids as strings.
    """

    difficulty: float = 1e-4
    nbits: int = MAINNET_NBITS
    silent: bool = False
    drop_on_configure: bool = False
    job_before_authorize: bool = False
    authorize_delay: float = 0.0
    drop_after_authorize: float | None = None
    answer_submits: bool = True
    answer_delay: float = 0.0
    storm_hz: float = 0.0
    keep_jobs: int = 64
    refuse_below_share: bool = False
    ban_after: int = 3
    lines_after_authorize: list[bytes] = field(default_factory=list)
    lines_after_shares: list[tuple[int, bytes]] = field(default_factory=list)
    redirect_self: bool = False
    stop_reading: bool = False
    ping_flood: int = 0
    job_interval: float = 0.0
    job_clean: bool = False
    reuse_job_id: bool = False
    narrow_mask_after: float | None = None
    narrow_mask: int = 0x00006000
    silent_after: float | None = None
    string_ids: bool = False


@dataclass
class PoolCounts:
    connections: int = 0
    authorized: int = 0
    first_messages: list[str] = field(default_factory=list)
    submits: int = 0
    #: Shares accepted (at the share difficulty), and block candidates accepted below it.
    accepted: int = 0
    accepted_blocks: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    #: Submits whose hash met neither the share nor the block target: never allowed.
    unverified: int = 0
    #: Such submits that reached a pool reusing job ids within IN_FLIGHT_S of it sending
    #: another job under the same id: the miner could not have known yet.
    unverified_in_flight: int = 0
    block_candidates: int = 0
    below_share_candidates: int = 0
    #: Seconds from a connection's authorize answer to each submit on it (negative: before).
    submit_times: list[float] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    extranonce1: bytes
    difficulty: float
    jobs: dict[str, tuple[Job, float]] = field(default_factory=dict)
    authorized_at: float | None = None
    accepted: int = 0
    low_rejects: int = 0
    seen: set[tuple[Any, ...]] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    mask: int = MASK
    silent: bool = False
    last_job_at: float = float("-inf")


class HostilePool:
    """``async with HostilePool(Script(...)) as pool: ... pool.url, pool.counts``."""

    def __init__(self, script: Script | None = None, port: int = 0) -> None:
        self.script = script or Script()
        self.counts = PoolCounts()
        self._port = port
        self._server: asyncio.Server | None = None
        self._jobs = JobMaker(self.script.nbits)
        self._extranonce = itertools.count(1)
        self._conns: set[_Conn] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"stratum+tcp://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> HostilePool:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def kick_all(self) -> None:
        """Drop every connection (the pool restarts, say)."""
        for conn in list(self._conns):
            conn.writer.close()

    # --- one connection -----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counts.connections += 1
        conn = _Conn(writer, next(self._extranonce).to_bytes(4, "big"), self.script.difficulty)
        self._conns.add(conn)
        try:
            if self.script.silent:
                await reader.read()
                return
            first = True
            while line := await reader.readline():
                message = json.loads(line)
                if first:
                    self.counts.first_messages.append(str(message.get("method")))
                if first and self.script.drop_on_configure and message.get("method") == "mining.configure":
                    return
                first = False
                await self._handle(conn, message)
                if self.script.stop_reading and conn.authorized_at is not None:
                    await asyncio.sleep(3600)  # never read again
        except (ConnectionError, OSError, ValueError, asyncio.CancelledError):
            pass
        finally:
            for pending in conn.tasks:
                pending.cancel()
            self._conns.discard(conn)
            self._handlers.discard(task)
            writer.close()

    def _send(self, conn: _Conn, message: dict[str, Any]) -> None:
        if not conn.writer.is_closing() and not conn.silent:
            conn.writer.write(json.dumps(message).encode() + b"\n")

    def _reply(self, conn: _Conn, request_id: Any, result: Any, error: Any = None) -> None:
        if self.script.string_ids:
            request_id = str(request_id)
        self._send(conn, {"id": request_id, "result": result, "error": error})

    def _job(self, conn: _Conn, clean: bool) -> None:
        job = self._jobs.next_job(clean)
        if self.script.reuse_job_id:
            job = dataclasses.replace(job, job_id="a")
        if clean:
            conn.jobs.clear()
        conn.jobs[job.job_id] = (job, conn.difficulty)
        conn.last_job_at = asyncio.get_running_loop().time()
        while len(conn.jobs) > self.script.keep_jobs:
            conn.jobs.pop(next(iter(conn.jobs)))
        self._send(conn, {"id": None, "method": "mining.notify", "params": notify_params(job)})

    def _start_mining(self, conn: _Conn) -> None:
        self._send(conn, {"id": None, "method": "mining.set_difficulty", "params": [conn.difficulty]})
        self._job(conn, clean=True)

    async def _handle(self, conn: _Conn, message: dict[str, Any]) -> None:
        method, request_id, params = message.get("method"), message.get("id"), message.get("params") or []
        script = self.script
        if method == "mining.configure":
            self._reply(conn, request_id, {"version-rolling": True, "version-rolling.mask": f"{MASK:08x}"})
        elif method == "mining.subscribe":
            if script.redirect_self:
                self._send(conn, {"id": None, "method": "client.reconnect", "params": ["127.0.0.1", self.port, 0]})
                return
            self._reply(conn, request_id, [[["mining.notify", "s1"]], conn.extranonce1.hex(), EXTRANONCE2_SIZE])
            if script.job_before_authorize:
                self._start_mining(conn)
        elif method == "mining.authorize":
            if script.authorize_delay:
                await asyncio.sleep(script.authorize_delay)
            self._reply(conn, request_id, True)
            conn.authorized_at = asyncio.get_running_loop().time()
            self.counts.authorized += 1
            if not script.job_before_authorize:
                self._start_mining(conn)
            for line in script.lines_after_authorize:
                conn.writer.write(line)
            if script.drop_after_authorize is not None:
                conn.tasks.append(asyncio.create_task(self._drop_later(conn, script.drop_after_authorize)))
            if script.storm_hz:
                conn.tasks.append(asyncio.create_task(self._storm(conn)))
            if script.job_interval:
                conn.tasks.append(asyncio.create_task(self._jobs_every(conn)))
            if script.narrow_mask_after is not None:
                conn.tasks.append(asyncio.create_task(self._narrow_mask_later(conn)))
            if script.silent_after is not None:
                conn.tasks.append(asyncio.create_task(self._fall_silent_later(conn)))
            for ping in range(script.ping_flood):
                self._send(conn, {"id": 1_000_000 + ping, "method": "mining.ping", "params": []})
        elif method == "mining.submit":
            self._submit(conn, request_id, params)
        else:
            self._reply(conn, request_id, True)
        await conn.writer.drain()

    async def _drop_later(self, conn: _Conn, delay: float) -> None:
        await asyncio.sleep(delay)
        conn.writer.close()

    async def _jobs_every(self, conn: _Conn) -> None:
        while not conn.writer.is_closing():
            await asyncio.sleep(self.script.job_interval)
            self._job(conn, clean=self.script.job_clean)

    async def _narrow_mask_later(self, conn: _Conn) -> None:
        assert self.script.narrow_mask_after is not None
        await asyncio.sleep(self.script.narrow_mask_after)
        conn.mask = self.script.narrow_mask
        self._send(conn, {"id": None, "method": "mining.set_version_mask", "params": [f"{conn.mask:08x}"]})

    async def _fall_silent_later(self, conn: _Conn) -> None:
        assert self.script.silent_after is not None
        await asyncio.sleep(self.script.silent_after)
        conn.silent = True

    async def _storm(self, conn: _Conn) -> None:
        while not conn.writer.is_closing():
            await asyncio.sleep(1 / self.script.storm_hz)
            self._job(conn, clean=False)

    def _submit(self, conn: _Conn, request_id: Any, params: list[Any]) -> None:
        counts = self.counts
        counts.submits += 1
        now = asyncio.get_running_loop().time()
        counts.submit_times.append(now - conn.authorized_at if conn.authorized_at is not None else float("-inf"))
        ok, error, share = self._check(conn, params)
        if ok and not share:
            counts.accepted_blocks += 1
        elif ok:
            conn.accepted += 1
            counts.accepted += 1
            for after, line in self.script.lines_after_shares:
                if conn.accepted == after:
                    conn.writer.write(line)
        else:
            assert error is not None
            counts.reject(error[1])
        if not self.script.answer_submits:
            return
        if self.script.answer_delay:
            conn.tasks.append(asyncio.create_task(self._answer_later(conn, request_id, ok, error)))
        else:
            self._reply(conn, request_id, ok, None if ok else list(error or ()))

    async def _answer_later(self, conn: _Conn, request_id: Any, ok: bool, error: tuple[int, str] | None) -> None:
        await asyncio.sleep(self.script.answer_delay)
        self._reply(conn, request_id, ok, None if ok else list(error or ()))

    def _check(self, conn: _Conn, params: list[Any]) -> tuple[bool, tuple[int, str] | None, bool]:
        """Validate a share exactly, with hashlib: (accepted, (code, reason), meets the
        share difficulty)."""
        if conn.authorized_at is None:
            return False, (24, "unauthorized worker"), False
        _user, job_id, extranonce2, ntime, nonce, *rest = params
        entry = conn.jobs.get(job_id)
        if entry is None:
            return False, (21, "job not found"), False
        job, difficulty = entry
        identity = (job_id, extranonce2, ntime, nonce, tuple(rest))
        if identity in conn.seen:
            return False, (22, "duplicate share"), False
        conn.seen.add(identity)
        if rest and int(rest[0], 16) & ~conn.mask:
            return False, (20, "version bits outside the mask"), False
        version = rolled_version(job.version, conn.mask, int(rest[0], 16)) if rest else job.version
        merkle = job.merkle_root(conn.extranonce1, bytes.fromhex(extranonce2))
        header = job.header76(merkle, ntime=int(ntime, 16), version=version) + int(nonce, 16).to_bytes(4, "little")
        value = int.from_bytes(hashlib.sha256(hashlib.sha256(header).digest()).digest(), "little")
        meets_share = value <= difficulty_to_target(difficulty)
        meets_block = value <= job.block_target
        if not (meets_share or meets_block):
            in_flight = asyncio.get_running_loop().time() - conn.last_job_at < IN_FLIGHT_S
            if self.script.reuse_job_id and in_flight:
                self.counts.unverified_in_flight += 1
            else:
                self.counts.unverified += 1
            return False, (23, "low difficulty share"), False
        if meets_block:
            self.counts.block_candidates += 1
        if conn.low_rejects >= self.script.ban_after:
            return False, (24, "worker banned for 60 s after too many low difficulty shares"), meets_share
        if meets_share:
            return True, None, True
        self.counts.below_share_candidates += 1
        if self.script.refuse_below_share:
            conn.low_rejects += 1
            return False, (23, "below pool mindiff"), False
        return True, None, False


async def stop_quietly(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
