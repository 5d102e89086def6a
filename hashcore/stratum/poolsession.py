"""The embedded pool's side of one miner connection, with no I/O: bytes in, bytes out.

:class:`PoolSession` answers subscribe, authorize, configure (BIP 310 version rolling),
extranonce.subscribe, suggest_difficulty and submit; sends jobs, difficulty and
extranonce changes; and retargets the difficulty (:class:`VardiffPolicy`). It never
trusts the miner: every share is rebuilt from the job and checked with hashlib, and
rejected with the usual codes:

    20 other (malformed params or JSON, ntime out of range, version bits outside the mask)
    21 stale / job not found     22 duplicate     23 low difficulty
    24 unauthorized worker       25 not subscribed

Hex fields are parsed strictly (exact length, ASCII hex digits only): ``int(x, 16)`` and
``bytes.fromhex`` also take signs, spaces, ``0x``, underscores and non-ASCII digits,
which no miner sends and a hostile peer would use to reach code that trusts the value.

What a session needs of the pool that serves it (jobs, credentials, counters) is
:class:`SessionHost`; :class:`~hashcore.stratum.pool.EmbeddedPool` is the one in use.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hashcore.stratum.blocktemplate import EXTRANONCE2_SIZE
from hashcore.stratum.fields import notify_params
from hashcore.stratum.jsonrpc import LineBuffer, Overflow, decode, encode
from hashcore.work import Job, difficulty_to_target, header_hash, nbits_to_target, rolled_version

log = logging.getLogger("hashcore.pool")

#: How far past the current time a rolled ntime may go (Bitcoin's two-hour rule).
MAX_NTIME_FUTURE = 7200
#: Bounds on what one connection may make the pool keep.
MAX_WORKERS_PER_SESSION = 64
MAX_WORKER_NAME = 256
MAX_JOBS_PER_SESSION = 64

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


class SessionHost(Protocol):
    """What a :class:`PoolSession` asks of the pool that serves it."""

    @property
    def difficulty(self) -> float:
        """The difficulty a new session starts at."""

    @property
    def version_mask(self) -> int:
        """The version bits the pool lets miners roll (0: no version rolling)."""

    @property
    def vardiff(self) -> VardiffPolicy | None:
        """How sessions retarget their difficulty (None: they keep it)."""

    @property
    def current_job(self) -> Job | None:
        """The newest job, sent to a worker as soon as it is authorized."""

    def refresh_job(self) -> Job:
        """A new job on the same block, for a session whose difficulty just changed."""

    def is_live(self, job_id: str) -> bool:
        """Whether shares of job ``job_id`` are still taken (not stale)."""

    def check_credentials(self, user: str, password: Any) -> bool:
        """Whether a worker may log in."""

    def resume_session(self, session_id: str) -> bytes | None:
        """The extranonce1 of an earlier session with this id, to resume it."""

    def count_accept(self, job_id: str, header: bytes, digest: bytes, user: str, block: bool) -> None:
        """Count an accepted share."""

    def count_reject(self, code: int) -> None:
        """Count a rejected share by its Stratum error code."""


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
        pool: SessionHost,
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
