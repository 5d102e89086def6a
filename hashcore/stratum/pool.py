"""The embedded pool: a small Stratum V1 server for the demo and the tests.

It behaves like a real pool where that matters to a miner: real-shaped jobs (a coinbase
with a BIP 34 height and extranonce space, a merkle branch over a few synthetic
transactions, a realistic nbits), a share difficulty that may be fractional, a new job
every few seconds, BIP 310 version rolling, an extranonce1 per connection, session
resumption, and vardiff aiming at a share rate. It never trusts the miner: every share
is rebuilt from the job and checked with hashlib, and rejected with the usual codes:

    20 other (malformed params or JSON, ntime out of range, version bits outside the mask)
    21 stale / job not found     22 duplicate     23 low difficulty
    24 unauthorized worker       25 not subscribed

Hex fields are parsed strictly (exact length, ASCII hex digits only): ``int(x, 16)`` and
``bytes.fromhex`` also take signs, spaces, ``0x``, underscores and non-ASCII digits,
which no miner sends and a hostile peer would use to reach code that trusts the value.

:class:`PoolSession` is one connection's protocol logic with no I/O (bytes in, bytes
out; :meth:`PoolSession.handle_line` handles one line). :class:`EmbeddedPool` owns the
asyncio server, the job timer, the counters, and every connection's deadlines: a
handshake deadline, an idle timeout, a per-line read deadline, a write deadline and a
cap on concurrent connections, so no peer holds a slot for ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hashcore.errors import ConfigError
from hashcore.stratum.jsonrpc import LineBuffer, Overflow, decode, encode
from hashcore.stratum.protocol import notify_params
from hashcore.work import (
    DEFAULT_VERSION_MASK,
    Job,
    difficulty_to_target,
    header_hash,
    merkle_branch_for_coinbase,
    nbits_to_target,
    rolled_version,
)

log = logging.getLogger("hashcore.pool")

#: A mainnet nbits from 2024: no CPU will ever find a block at this target.
MAINNET_NBITS = 0x17034219
#: Regtest's nbits: nearly every hash is a block (used to test block candidates).
REGTEST_NBITS = 0x207FFFFF
EXTRANONCE1_SIZE = 4
EXTRANONCE2_SIZE = 4
#: How far past the current time a rolled ntime may go (Bitcoin's two-hour rule).
MAX_NTIME_FUTURE = 7200
POOL_TAG = b"/hashcore-pool/"
#: Bounds on what one connection may make the pool keep.
MAX_WORKERS_PER_SESSION = 64
MAX_WORKER_NAME = 256
MAX_JOBS_PER_SESSION = 64
#: Bytes read from a socket at a time.
READ_CHUNK = 65536

#: Hex digits only, ASCII only: no sign, space, "0x", underscore or other script's digit.
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


class PoolReject(Exception):
    """A submitted share is refused with a Stratum error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class VardiffPolicy:
    """Vardiff: retarget each session's difficulty to aim at one share per ``target_seconds``.

    Attributes:
        target_seconds: the wanted time between shares.
        retarget_seconds: how often a session's rate is looked at.
        min_difficulty / max_difficulty: bounds of the difficulty it may set.
        max_step: the largest factor one retarget may change the difficulty by.
    """

    target_seconds: float = 5.0
    retarget_seconds: float = 15.0
    min_difficulty: float = 1e-6
    max_difficulty: float = 1e12
    max_step: float = 4.0


@dataclass(slots=True)
class PoolStats:
    """What the pool saw, for logs, the demo and the tests."""

    accepted: int = 0
    blocks: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    #: The last accepted shares: (job_id, header bytes, hash bytes, user).
    shares: deque[tuple[str, bytes, bytes, str]] = field(default_factory=lambda: deque(maxlen=10_000), repr=False)

    #: Connections turned away because the pool was full.
    refused: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class JobMaker:
    """Builds real-shaped block templates and their Stratum jobs."""

    def __init__(self, nbits: int = MAINNET_NBITS, *, version: int = 0x20000000, seed: bytes | None = None) -> None:
        nbits_to_target(nbits)  # refuse a malformed nbits up front
        self.nbits = nbits
        self.version = version
        self.height = 850_000
        self._seed = seed if seed is not None else os.urandom(16)
        self._counter = 0
        self._prev_hash = self._digest(b"genesis")

    def _digest(self, label: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(self._seed + label).digest()).digest()

    def next_job(self, clean: bool, now: int | None = None) -> Job:
        """A new job; ``clean`` starts a new block (new previous hash, next height)."""
        self._counter += 1
        if clean:
            self.height += 1
            # A previous block hash looks like one: its high-order bytes are zero.
            self._prev_hash = self._digest(b"block%d" % self.height)[:24] + bytes(8)
        txids = [self._digest(b"tx%d.%d" % (self._counter, i)) for i in range(3 + self._counter % 5)]
        height_push = _script_number(self.height)
        tag_push = bytes([len(POOL_TAG)]) + POOL_TAG
        script_len = len(height_push) + EXTRANONCE1_SIZE + EXTRANONCE2_SIZE + len(tag_push)
        coinb1 = (
            struct.pack("<I", 1)  # transaction version
            + b"\x01"  # one input: the coinbase
            + bytes(32)
            + b"\xff\xff\xff\xff"
            + bytes([script_len])
            + height_push
        )
        payout_script = b"\x00\x14" + self._digest(b"payout")[:20]  # P2WPKH-shaped output
        coinb2 = (
            tag_push
            + b"\xff\xff\xff\xff"  # sequence
            + b"\x01"
            + struct.pack("<Q", 312_500_000)
            + bytes([len(payout_script)])
            + payout_script
            + struct.pack("<I", 0)  # lock time
        )
        return Job(
            job_id=f"{self._counter:x}",
            prev_hash=self._prev_hash,
            coinb1=coinb1,
            coinb2=coinb2,
            merkle_branch=merkle_branch_for_coinbase(txids),
            version=self.version,
            nbits=self.nbits,
            ntime=int(time.time()) if now is None else now,
            clean_jobs=clean,
        )


def _script_number(n: int) -> bytes:
    """A BIP 34 height push: minimal little-endian number with its push opcode."""
    data = n.to_bytes((n.bit_length() + 8) // 8, "little")
    return bytes([len(data)]) + data


@dataclass(slots=True)
class _SentJob:
    job: Job
    difficulty: float
    extranonce1: bytes


class PoolSession:
    """One miner connection's protocol state on the pool side. No I/O.

    Feed bytes to :meth:`receive_data` (or one line to :meth:`handle_line`) and send what
    they return. Nothing a miner sends raises out of them, except a line over the length
    cap, which raises ``ConnectionError``: the connection is beyond saving.
    """

    def __init__(
        self,
        pool: EmbeddedPool,
        extranonce1: bytes,
        session_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.extranonce1 = extranonce1
        self.session_id = session_id
        self.clock = clock
        self.subscribed = False
        self.authorized: set[str] = set()
        self.version_mask = 0
        self.extranonce_subscribed = False
        self.difficulty = pool.difficulty
        #: Complete non-blank lines received (the I/O layer's idle timer watches it).
        self.lines_received = 0
        self._pending_difficulty: float | None = None
        self._sent: dict[str, _SentJob] = {}
        self._seen: set[tuple[Any, ...]] = set()
        self._lines = LineBuffer()
        self._window_start = clock()
        self._window_shares = 0.0

    @property
    def ready(self) -> bool:
        """Subscribed with at least one authorized worker: the handshake is done."""
        return self.subscribed and bool(self.authorized)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held so far."""
        return self._lines.pending

    # --- bytes in, bytes out ---------------------------------------------------------

    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        for item in self._lines.feed(data):
            if isinstance(item, Overflow):
                raise ConnectionError(f"miner sent a line over {self._lines.max_line} bytes")
            out += self.handle_line(item)
        return bytes(out)

    def handle_line(self, line: bytes) -> bytes:
        """Handle one line (without its newline); returns the bytes to send back."""
        self.lines_received += 1
        try:
            message = decode(line)
        except ValueError as exc:
            log.info("session %s: %s", self.session_id, exc)
            return self._reply(None, error=(20, f"malformed message: {exc}"))
        return self._handle(message)

    def _reply(self, request_id: Any, result: Any = None, error: tuple[int, str] | None = None) -> bytes:
        err = [error[0], error[1], None] if error else None
        return encode({"id": request_id, "result": result, "error": err})

    def _handle(self, message: dict[str, Any]) -> bytes:
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params")
        handlers: dict[str, Callable[[Any, list[Any]], bytes]] = {
            "mining.configure": self._configure,
            "mining.subscribe": self._subscribe,
            "mining.authorize": self._authorize,
            "mining.extranonce.subscribe": self._extranonce_subscribe,
            "mining.suggest_difficulty": self._suggest_difficulty,
            "mining.submit": self._submit,
        }
        handler = handlers.get(method) if isinstance(method, str) else None
        if handler is None:
            if method is None:
                return b""  # a reply to something we sent (client.get_version)
            return self._reply(request_id, error=(20, f"unknown method {_preview(method)}"))
        if params is None:
            params = []
        elif not isinstance(params, list):
            return self._reply(request_id, error=(20, f"{method}: params must be a list"))
        return handler(request_id, params)

    # --- methods ---------------------------------------------------------------------

    def _configure(self, request_id: Any, params: list[Any]) -> bytes:
        extensions = params[0] if params else []
        options = params[1] if len(params) > 1 else {}
        if not isinstance(extensions, list) or not all(isinstance(name, str) for name in extensions):
            return self._reply(request_id, error=(20, "configure needs a list of extension names"))
        if not isinstance(options, dict):
            return self._reply(request_id, error=(20, "configure options must be an object"))
        result: dict[str, Any] = {}
        for name in extensions[:16]:
            if name == "version-rolling" and self.pool.version_mask:
                asked = options.get("version-rolling.mask", "ffffffff")
                if not _is_hex(asked, 1, 8):
                    return self._reply(request_id, error=(20, f"malformed version-rolling.mask {_preview(asked)}"))
                self.version_mask = int(asked, 16) & self.pool.version_mask
                result["version-rolling"] = True
                result["version-rolling.mask"] = f"{self.version_mask:08x}"
            else:
                result[name[:64]] = False
        return self._reply(request_id, result)

    def _subscribe(self, request_id: Any, params: list[Any]) -> bytes:
        resume = params[1] if len(params) > 1 and isinstance(params[1], str) else None
        if resume:
            previous = self.pool.resume_session(resume)
            if previous is not None:
                self.extranonce1, self.session_id = previous, resume
        self.subscribed = True
        subscriptions = [["mining.set_difficulty", self.session_id], ["mining.notify", self.session_id]]
        return self._reply(request_id, [subscriptions, self.extranonce1.hex(), EXTRANONCE2_SIZE])

    def _authorize(self, request_id: Any, params: list[Any]) -> bytes:
        if not self.subscribed:
            return self._reply(request_id, error=(25, "not subscribed"))
        user = params[0] if params else None
        password = params[1] if len(params) > 1 else None
        # Printable only: worker names end up in logs and on the operator's screen.
        if not isinstance(user, str) or not 0 < len(user) <= MAX_WORKER_NAME or not user.isprintable():
            bad_name = f"worker name must be 1-{MAX_WORKER_NAME} printable characters"
            return self._reply(request_id, False, error=(20, bad_name))
        if user not in self.authorized and len(self.authorized) >= MAX_WORKERS_PER_SESSION:
            too_many = f"over {MAX_WORKERS_PER_SESSION} workers on one connection"
            return self._reply(request_id, False, error=(20, too_many))
        if not self.pool.check_credentials(user, password):
            return self._reply(request_id, False, error=(24, "unauthorized worker"))
        first = not self.authorized
        self.authorized.add(user)
        out = self._reply(request_id, True)
        if first and self.pool.current_job is not None:
            out += self.notify(self.pool.current_job, force_clean=True)
        return out

    def _extranonce_subscribe(self, request_id: Any, params: list[Any]) -> bytes:
        self.extranonce_subscribed = True
        return self._reply(request_id, True)

    def _suggest_difficulty(self, request_id: Any, params: list[Any]) -> bytes:
        value = params[0] if params else None
        # float() of a huge int overflows; an infinite difficulty has no target.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e300 \
                or not math.isfinite(value):
            return self._reply(request_id, error=(20, f"bad difficulty {_preview(value)}"))
        policy = self.pool.vardiff
        low, high = (policy.min_difficulty, policy.max_difficulty) if policy else (1e-12, 1e12)
        self.difficulty = min(max(float(value), low), high)
        return self._reply(request_id, True)

    def _submit(self, request_id: Any, params: list[Any]) -> bytes:
        try:
            block = self._check_share(params)
        except PoolReject as reject:
            self.pool.count_reject(reject.code)
            log.info("session %s: share rejected: %s (%d)", self.session_id, reject, reject.code)
            return self._reply(request_id, error=(reject.code, str(reject)))
        out = self._reply(request_id, True)
        if not block:
            self._window_shares += 1
        return out + self.retarget_now()

    def _check_share(self, params: list[Any]) -> bool:
        """Validate one submit; returns whether it solves a block. Raises PoolReject."""
        if not self.subscribed:
            raise PoolReject(25, "not subscribed")
        if len(params) < 5 or not all(isinstance(p, str) for p in params[:6]):
            raise PoolReject(20, "submit needs worker, job_id, extranonce2, ntime, nonce as strings")
        user, job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
        if user not in self.authorized:
            raise PoolReject(24, "unauthorized worker")
        sent = self._sent.get(job_id)
        if sent is None or not self.pool.is_live(job_id):
            raise PoolReject(21, "stale: job not found")
        extranonce2 = bytes.fromhex(_hex_field(en2_hex, "extranonce2", 2 * EXTRANONCE2_SIZE))
        ntime = int(_hex_field(ntime_hex, "ntime", 8), 16)
        nonce = int(_hex_field(nonce_hex, "nonce", 8), 16)
        version_bits = int(_hex_field(params[5], "version bits", 8), 16) if len(params) > 5 else None
        job = sent.job
        if not job.ntime <= ntime <= int(time.time()) + MAX_NTIME_FUTURE:
            raise PoolReject(20, "ntime out of range")
        version = job.version
        if version_bits is not None:
            if version_bits & ~self.version_mask:
                raise PoolReject(20, f"version bits {version_bits:08x} outside mask {self.version_mask:08x}")
            version = rolled_version(job.version, self.version_mask, version_bits)
        key = (job_id, extranonce2, ntime, nonce, version)
        if key in self._seen:
            raise PoolReject(22, "duplicate share")
        merkle = job.merkle_root(sent.extranonce1, extranonce2)
        header = job.header76(merkle, ntime=ntime, version=version) + struct.pack("<I", nonce)
        digest = header_hash(header)
        value = int.from_bytes(digest, "little")
        is_block = value <= nbits_to_target(job.nbits)
        # A share of a job sent before a difficulty change counts at the easier of the two.
        required = min(sent.difficulty, self.difficulty)
        if not is_block and value > difficulty_to_target(required):
            raise PoolReject(23, "low difficulty share")
        self._seen.add(key)
        self.pool.count_accept(job_id, header, digest, user, is_block)
        return is_block

    # --- pool -> miner -----------------------------------------------------------------

    def notify(self, job: Job, *, force_clean: bool = False) -> bytes:
        """set_difficulty (when it changed) and mining.notify for a job."""
        out = bytearray()
        if self._pending_difficulty is not None or not self._sent:
            self.difficulty = self._pending_difficulty or self.difficulty
            self._pending_difficulty = None
            out += encode({"id": None, "method": "mining.set_difficulty", "params": [self.difficulty]})
        params = notify_params(job)
        if force_clean:
            params[8] = True
        if job.clean_jobs or force_clean:
            self._seen.clear()
            self._sent.clear()
        self._sent[job.job_id] = _SentJob(job, self.difficulty, self.extranonce1)
        while len(self._sent) > MAX_JOBS_PER_SESSION:  # the oldest are stale by now anyway
            self._sent.pop(next(iter(self._sent)))
        out += encode({"id": None, "method": "mining.notify", "params": params})
        return bytes(out)

    def set_extranonce(self, extranonce1: bytes) -> bytes:
        """Give the miner a new extranonce1 (only when it subscribed to that)."""
        if not self.extranonce_subscribed:
            return b""
        self.extranonce1 = extranonce1
        return encode(
            {"id": None, "method": "mining.set_extranonce", "params": [extranonce1.hex(), EXTRANONCE2_SIZE]}
        )

    def retarget(self) -> bool:
        """Vardiff: when a window has passed, aim the difficulty at the target share rate.

        Returns whether the difficulty changes; the new value goes out with the next job
        this session is sent (work on jobs sent earlier stays valid at their difficulty).
        """
        policy = self.pool.vardiff
        if policy is None or not self.authorized:
            return False
        elapsed = self.clock() - self._window_start
        # Retarget at the end of a window, or early when shares come in at more than
        # twice the wanted rate (a fast miner starting at a low difficulty).
        flood = 2 * policy.retarget_seconds / policy.target_seconds
        if elapsed < policy.retarget_seconds and self._window_shares < flood:
            return False
        wanted_shares = max(elapsed, 1e-3) / policy.target_seconds
        # No share in a whole window: the rate is far below target, step down fully.
        factor = self._window_shares / wanted_shares if self._window_shares else 0.0
        factor = min(max(factor, 1 / policy.max_step), policy.max_step)
        self._window_start, self._window_shares = self.clock(), 0.0
        if 0.8 <= factor <= 1.25:
            return False
        new = min(max(self.difficulty * factor, policy.min_difficulty), policy.max_difficulty)
        if new == self.difficulty:
            return False
        log.info("session %s: vardiff %.6g -> %.6g", self.session_id, self.difficulty, new)
        self._pending_difficulty = new
        return True

    def retarget_now(self) -> bytes:
        """Retarget, and when the difficulty changed send it at once with a fresh job."""
        if not self.retarget() or self.pool.current_job is None:
            return b""
        return self.notify(self.pool.refresh_job())


def _is_hex(value: Any, min_digits: int, max_digits: int) -> bool:
    return (
        isinstance(value, str)
        and min_digits <= len(value) <= max_digits
        and _HEX_DIGITS.fullmatch(value) is not None
    )


def _hex_field(value: Any, name: str, digits: int) -> str:
    """``value`` when it is exactly ``digits`` ASCII hex digits; else PoolReject 20."""
    if not _is_hex(value, digits, digits):
        raise PoolReject(20, f"malformed {name} {_preview(value)}: needs {digits} hex digits")
    return str(value)


def _preview(value: Any, limit: int = 40) -> str:
    """A peer's value shown in a reply or a log line: repr (escapes control characters), cut short."""
    text = repr(value[: limit + 1] if isinstance(value, str) else value)
    return text if len(text) <= limit + 2 else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """When the pool gives up on a connection (seconds; None turns a deadline off).

    Attributes:
        max_connections: connections served at once; more are told so and closed.
        handshake_timeout: from connecting until subscribed with a worker authorized.
        idle_timeout: with no complete line from the miner (a hashing miner with vardiff
            sends shares every few seconds; a paused one reconnects when dropped).
        line_timeout: from a line's first byte to its newline (a trickling peer).
        write_timeout: for the miner to read what the pool sent (a peer that never reads).
    """

    max_connections: int = 512
    handshake_timeout: float | None = 30.0
    idle_timeout: float | None = 300.0
    line_timeout: float | None = 30.0
    write_timeout: float | None = 30.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be at least 1, got {self.max_connections!r}")
        for name in ("handshake_timeout", "idle_timeout", "line_timeout", "write_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive or None, got {value!r}")


class EmbeddedPool:
    """An asyncio Stratum V1 pool. ``async with EmbeddedPool() as pool: pool.url``.

    ``max_connections``, ``handshake_timeout``, ``idle_timeout``, ``line_timeout`` and
    ``write_timeout`` bound what one peer can hold (see :class:`ConnectionLimits`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        difficulty: float = 1.0,
        job_interval: float = 30.0,
        nbits: int = MAINNET_NBITS,
        version_mask: int = DEFAULT_VERSION_MASK,
        vardiff: VardiffPolicy | None = VardiffPolicy(),
        accounts: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        seed: bytes | None = None,
        max_connections: int = 512,
        handshake_timeout: float | None = 30.0,
        idle_timeout: float | None = 300.0,
        line_timeout: float | None = 30.0,
        write_timeout: float | None = 30.0,
    ) -> None:
        if not difficulty > 0:
            raise ConfigError(f"pool difficulty must be positive, got {difficulty!r}")
        self.host = host
        self.port = port
        self.difficulty = float(difficulty)
        self.job_interval = job_interval
        self.version_mask = version_mask
        self.vardiff = vardiff
        self.accounts = accounts
        self.ssl_context = ssl_context
        self.limits = ConnectionLimits(
            max_connections=max_connections,
            handshake_timeout=handshake_timeout,
            idle_timeout=idle_timeout,
            line_timeout=line_timeout,
            write_timeout=write_timeout,
        )
        self.jobs = JobMaker(nbits, seed=seed)
        self.stats = PoolStats()
        self.current_job: Job | None = None
        self._live: dict[str, Job] = {}
        self._sessions: dict[PoolSession, asyncio.StreamWriter] = {}
        self._connections: set[asyncio.Task[Any]] = set()
        self._full = False  # the pool is refusing connections (logged once per episode)
        self._stopping = False
        self._resumable: dict[str, bytes] = {}
        self._next_extranonce1 = int.from_bytes(os.urandom(2), "big") << 16
        self._server: asyncio.Server | None = None
        self._timer: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "stratum+ssl" if self.ssl_context else "stratum+tcp"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

    async def start(self) -> None:
        self._stopping = False
        self.new_job(clean=True, broadcast=False)
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.ssl_context)
        except OSError as exc:
            raise ConfigError(f"pool cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        if self.job_interval > 0:
            self._timer = asyncio.create_task(self._job_timer())
        log.info("embedded pool listening on %s (difficulty %g)", self.url, self.difficulty)

    async def stop(self) -> None:
        """Stop listening and drop every connection (as a crashed pool would).

        Each connection's task is cancelled and awaited here, so none is left for the
        event loop's shutdown to cancel (which Python 3.11 logs with a traceback).
        """
        self._stopping = True
        tasks: list[asyncio.Task[Any]] = list(self._connections)
        if self._timer is not None:
            tasks.append(self._timer)
            self._timer = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in self._sessions.values():
            writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._sessions.clear()

    async def __aenter__(self) -> EmbeddedPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # --- jobs --------------------------------------------------------------------------

    def new_job(self, clean: bool = True, *, broadcast: bool = True) -> Job:
        """Make the next job; ``clean`` makes every earlier job stale (a new block)."""
        job = self.jobs.next_job(clean)
        if clean:
            self._live.clear()
        self._live[job.job_id] = job
        while len(self._live) > 64:
            self._live.pop(next(iter(self._live)))
        self.current_job = job
        if broadcast:
            for session, writer in list(self._sessions.items()):
                if session.authorized:
                    session.retarget()
                    self._write(writer, session.notify(job))
        return job

    def refresh_job(self) -> Job:
        """A new job on the same block (not clean), without broadcasting it."""
        return self.new_job(clean=False, broadcast=False)

    def is_live(self, job_id: str) -> bool:
        return job_id in self._live

    def set_extranonce(self) -> None:
        """Send every subscribed session a new extranonce1 (to exercise set_extranonce)."""
        for session, writer in list(self._sessions.items()):
            self._write(writer, session.set_extranonce(self._allocate_extranonce1()))

    async def broadcast_raw(self, data: bytes) -> None:
        """Send raw bytes to every connection (tests use it for client.reconnect)."""
        for writer in list(self._sessions.values()):
            try:
                await self._send(writer, data)
            except (ConnectionError, OSError) as exc:
                log.info("broadcast to %s failed: %s", writer.get_extra_info("peername"), exc)

    async def _job_timer(self) -> None:
        while True:
            await asyncio.sleep(self.job_interval)
            self.new_job(clean=True)

    # --- accounting --------------------------------------------------------------------

    def check_credentials(self, user: str, password: Any) -> bool:
        if self.accounts is None:
            return bool(user)
        return self.accounts.get(user) == password

    def count_accept(self, job_id: str, header: bytes, digest: bytes, user: str, block: bool) -> None:
        self.stats.accepted += 1
        if block:
            self.stats.blocks += 1
        self.stats.shares.append((job_id, header, digest, user))

    def count_reject(self, code: int) -> None:
        self.stats.rejected[code] = self.stats.rejected.get(code, 0) + 1

    def resume_session(self, session_id: str) -> bytes | None:
        return self._resumable.get(session_id)

    def _allocate_extranonce1(self) -> bytes:
        self._next_extranonce1 = (self._next_extranonce1 + 1) & 0xFFFFFFFF
        return self._next_extranonce1.to_bytes(EXTRANONCE1_SIZE, "big")

    # --- connections -------------------------------------------------------------------

    def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if data and not writer.is_closing():
            writer.write(data)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write and wait until the peer has taken it, within the write deadline."""
        self._write(writer, data)
        limit = self.limits.write_timeout
        try:
            async with asyncio.timeout(limit):
                await writer.drain()
        except TimeoutError:
            raise ConnectionError(f"replies not read for {limit:g} s") from None

    def _refuse(self, writer: asyncio.StreamWriter) -> None:
        """Turn a connection away with a message saying why."""
        self.stats.refused += 1
        if not self._full and not self._stopping:
            self._full = True
            log.warning("pool full: %d connections; refusing new ones", self.limits.max_connections)
        reason = "pool is stopping" if self._stopping else "pool full, try later"
        self._write(writer, encode({"id": None, "method": "client.show_message", "params": [reason]}))
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._stopping or task is None or len(self._connections) >= self.limits.max_connections:
            self._refuse(writer)
            return
        self._connections.add(task)
        extranonce1 = self._allocate_extranonce1()
        session = PoolSession(self, extranonce1, extranonce1.hex())
        self._sessions[session] = writer
        peer = writer.get_extra_info("peername")
        log.info("miner connected from %s", peer)
        try:
            reason = await self._converse(session, reader, writer)
            log.info("miner %s: %s; connection closed", peer, reason)
        except asyncio.CancelledError:
            # The pool is stopping. Ending normally: Python 3.11's stream server logs a
            # handler task that ends cancelled as an error, with a traceback.
            pass
        except (ConnectionError, OSError) as exc:
            log.info("miner %s dropped: %s", peer, exc)
        except Exception as exc:  # a bug here must cost one connection, not the pool
            log.error("miner %s: connection closed on %s: %s", peer, type(exc).__name__, exc)
            log.debug("traceback of the error above", exc_info=True)
        finally:
            self._connections.discard(task)
            self._sessions.pop(session, None)
            self._resumable[session.session_id] = session.extranonce1
            while len(self._resumable) > 1024:
                self._resumable.pop(next(iter(self._resumable)))
            writer.close()
            if len(self._connections) < self.limits.max_connections:
                self._full = False

    async def _converse(self, session: PoolSession, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> str:
        """Serve one connection until the miner leaves or a deadline passes; returns why it ended."""
        limits = self.limits
        loop = asyncio.get_running_loop()
        connected_at = last_line_at = loop.time()
        line_started_at: float | None = None
        # A miner that finds no share sends nothing; vardiff must still step down.
        retarget_every = self.vardiff.retarget_seconds if self.vardiff else None
        next_retarget = connected_at + retarget_every if retarget_every else None
        while True:
            # The nearest deadline, and what happens when it passes.
            deadlines: list[tuple[float, str]] = []
            if limits.handshake_timeout is not None and not session.ready:
                deadlines.append((connected_at + limits.handshake_timeout,
                                  f"no subscribe and authorize within {limits.handshake_timeout:g} s"))
            if limits.idle_timeout is not None:
                deadlines.append((last_line_at + limits.idle_timeout, f"no message for {limits.idle_timeout:g} s"))
            if limits.line_timeout is not None and line_started_at is not None:
                deadlines.append((line_started_at + limits.line_timeout,
                                  f"a line took over {limits.line_timeout:g} s to arrive"))
            if next_retarget is not None:
                deadlines.append((next_retarget, ""))
            when, reason = min(deadlines) if deadlines else (None, "")
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel that
                # arrives as data does, and stop() would wait out the deadline.
                async with asyncio.timeout_at(when):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                if reason:
                    return reason
                assert retarget_every is not None
                next_retarget = loop.time() + retarget_every
                await self._send(writer, session.retarget_now())
                continue
            if not data:
                return "closed by the miner"
            now = loop.time()
            lines_before = session.lines_received
            reply = session.receive_data(data)
            if session.lines_received != lines_before:
                last_line_at = now
            # The incomplete line now held began in this chunk when a line ended in it.
            if session.pending == 0:
                line_started_at = None
            elif line_started_at is None or session.lines_received != lines_before:
                line_started_at = now
            if retarget_every is not None:
                next_retarget = now + retarget_every
            await self._send(writer, reply)
