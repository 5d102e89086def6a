"""The embedded pool: a small Stratum V1 server for the demo and the tests.

It behaves like a real pool where that matters to a miner: real-shaped jobs
(:mod:`~hashcore.stratum.blocktemplate`), a share difficulty that may be fractional, a
new job every few seconds, BIP 310 version rolling, an extranonce1 per connection,
session resumption, and vardiff aiming at a share rate. Each connection's protocol is a
:class:`~hashcore.stratum.poolsession.PoolSession` (no I/O), which checks every share.

:class:`EmbeddedPool` owns the asyncio server, the job timer, the counters, and every
connection's deadlines: a handshake deadline, an idle timeout, a per-line read deadline,
a write deadline and a cap on concurrent connections, so no peer holds a slot for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hashcore.errors import ConfigError
from hashcore.stratum.blocktemplate import EXTRANONCE1_SIZE, MAINNET_NBITS, JobMaker
from hashcore.stratum.jsonrpc import encode
from hashcore.stratum.poolsession import PoolSession, VardiffPolicy
from hashcore.work import DEFAULT_VERSION_MASK, Job

log = logging.getLogger("hashcore.pool")

#: The vardiff a pool runs unless told otherwise (frozen: one instance serves every pool).
DEFAULT_VARDIFF = VardiffPolicy()
#: Bytes read from a socket at a time.
READ_CHUNK = 65536


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
        vardiff: VardiffPolicy | None = DEFAULT_VARDIFF,
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
