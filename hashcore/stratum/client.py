"""The Stratum V1 transport: sockets, TLS, timeouts, reconnects and pool failover.

:class:`StratumClient` keeps one connection to the best reachable pool of a priority
list. It feeds the bytes to a :class:`~hashcore.stratum.protocol.ClientConnection` and
passes its events on to a handler, tagged with a :class:`Link` that says which pool and
which connection they came from (a share found on an old connection must never be sent
on a new one). It decides nothing about the protocol itself.

* Connect timeout, TCP keepalive, and a watchdog: no bytes from the pool for
  ``idle_timeout`` seconds means the connection is dead; reconnect.
* Reconnect with exponential backoff and jitter, per pool.
* Failover: pools are tried in priority order; while on a backup, the better pools are
  probed every ``failback_interval`` seconds and the client returns to the first one
  that answers.
* ``client.reconnect`` is followed (to the same host only, unless allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from hashcore.errors import ConfigError, PoolError
from hashcore.stratum import events as ev
from hashcore.stratum.jsonrpc import DEFAULT_MAX_LINE
from hashcore.stratum.protocol import ClientConnection, LocalProtocolError
from hashcore.work import DEFAULT_VERSION_MASK, WorkOrigin

log = logging.getLogger("hashcore.stratum")

_SCHEMES = {"stratum+tcp": False, "stratum": False, "tcp": False, "stratum+ssl": True, "stratum+tls": True, "ssl": True}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pool address parsed from a ``stratum+tcp://`` or ``stratum+ssl://`` URL.

    ``url`` never carries credentials (it is shown and logged); a URL's own
    ``user:password@`` go to ``user`` and ``password`` and take precedence over the
    client's defaults for this pool.
    """

    url: str
    host: str
    port: int
    tls: bool
    user: str | None = field(default=None, compare=False)
    password: str | None = field(default=None, compare=False, repr=False)


def parse_pool_url(url: str) -> Endpoint:
    """Parse a pool URL; raises ConfigError naming what is wrong (never the password)."""
    parts = urlsplit(url if "://" in url else f"stratum+tcp://{url}")
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if parts.scheme not in _SCHEMES:
        raise ConfigError(f"pool URL {shown!r}: scheme must be stratum+tcp:// or stratum+ssl://")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"pool URL {shown!r}: bad port") from None
    if not parts.hostname or port is None:
        raise ConfigError(f"pool URL {shown!r}: needs host:port")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return Endpoint(shown, parts.hostname, port, _SCHEMES[parts.scheme], user, password)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How the client connects and behaves.

    Attributes:
        user / password: the worker credentials sent with ``mining.authorize``.
        version_rolling: ask for BIP 310 version rolling with ``mining.configure``.
        version_mask: the mask to ask for.
        extranonce_subscribe: send ``mining.extranonce.subscribe``.
        suggest_difficulty: send ``mining.suggest_difficulty`` with this value.
        connect_timeout: seconds to open the TCP (and TLS) connection.
        idle_timeout: the watchdog: seconds without any byte from the pool.
        submit_timeout: seconds to wait for the pool's answer to a share.
        backoff_base / backoff_max: reconnect delays (doubling, with +-50% jitter).
        failback_interval: seconds between probes of better pools while on a backup.
        tls_verify: verify pool certificates (on unless told otherwise).
        tls_ca: a CA bundle file to verify against, instead of the system's.
        allow_redirect: follow ``client.reconnect`` to another host.
        fail_fast: make :meth:`StratumClient.run` raise PoolError when every pool
            failed once and none was ever reached (the CLI's "unreachable pool").
        max_line: the longest line accepted from a pool.
    """

    user: str
    password: str = "x"
    version_rolling: bool = True
    version_mask: int = DEFAULT_VERSION_MASK
    extranonce_subscribe: bool = True
    suggest_difficulty: float | None = None
    connect_timeout: float = 10.0
    idle_timeout: float = 180.0
    submit_timeout: float = 30.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    failback_interval: float = 30.0
    tls_verify: bool = True
    tls_ca: str | None = None
    allow_redirect: bool = False
    fail_fast: bool = False
    max_line: int = DEFAULT_MAX_LINE


@dataclass(frozen=True, slots=True)
class Link:
    """Which pool (by priority index) and which connection to it an event came from."""

    index: int
    url: str
    session: int


@dataclass(frozen=True, slots=True)
class Connected:
    """The transport connected to a pool (protocol events follow)."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended; every share in flight on it is unanswered."""

    reason: str


Handler = Callable[[Link, "ev.Event | Connected | Disconnected"], None]


@dataclass(slots=True)
class PoolStatus:
    """What the client knows about one pool of the list."""

    url: str
    connected: bool = False
    connects: int = 0
    failures: int = 0
    last_error: str | None = None
    retry_at: float = 0.0
    ever_connected: bool = False
    enabled: bool = True


@dataclass(slots=True)
class _Active:
    link: Link
    protocol: ClientConnection
    writer: asyncio.StreamWriter
    waiters: dict[int, asyncio.Future[ev.ShareResult]] = field(default_factory=dict)
    authorized: bool = False


class _Redirect(Exception):
    def __init__(self, endpoint: Endpoint, wait: float) -> None:
        super().__init__(f"pool asked to reconnect to {endpoint.host}:{endpoint.port}")
        self.endpoint, self.wait = endpoint, wait


class _Leave(Exception):
    """Leave the current pool for another: a better one is back, or the operator said so."""

    def __init__(self, index: int, why: str) -> None:
        super().__init__(why)
        self.index = index


class StratumClient:
    """Keeps one Stratum V1 connection to the best reachable pool of ``urls``."""

    def __init__(self, urls: list[str], options: ClientOptions, handler: Handler) -> None:
        if not urls:
            raise ConfigError("at least one pool URL is needed")
        self.endpoints = [parse_pool_url(url) for url in urls]
        self.options = options
        self.handler = handler
        self.status = [PoolStatus(e.url) for e in self.endpoints]
        #: Pool indexes, best first: failover walks it; switch_pool reorders it.
        self.priority = list(range(len(self.endpoints)))
        self._leave: asyncio.Future[_Leave] | None = None
        self._active: _Active | None = None
        self._session_counter = 0
        self._resume: dict[int, tuple[str, bytes]] = {}  # pool index -> (session id, extranonce1)
        self._redirects: dict[int, Endpoint] = {}
        self._rng = random.Random()

    # --- public ------------------------------------------------------------------------

    @property
    def link(self) -> Link | None:
        """The connection shares may be submitted on now (authorized), or None."""
        active = self._active
        return active.link if active is not None and active.authorized else None

    async def run(self) -> None:
        """Connect, serve, fail over and reconnect until cancelled."""
        while True:
            index = self._next_pool()
            if index is None:
                self._check_fail_fast()
                wait = max(0.05, min(s.retry_at for s in self.status if s.enabled) - time.monotonic())
                await asyncio.sleep(wait)
                continue
            status = self.status[index]
            try:
                await self._serve(index)
                status.failures = 0
            except _Redirect as redirect:
                self._redirects[index] = redirect.endpoint
                status.retry_at = time.monotonic() + redirect.wait
                log.info("%s: %s in %.0f s", status.url, redirect, redirect.wait)
            except _Leave as leave:
                log.info("%s: leaving: %s", status.url, leave)
                self.status[leave.index].retry_at = 0.0
            except (OSError, TimeoutError, PoolError, ssl.SSLError) as exc:
                status.failures += 1
                status.last_error = _describe(exc)
                delay = min(self.options.backoff_max, self.options.backoff_base * 2 ** (status.failures - 1))
                delay *= self._rng.uniform(0.5, 1.5)
                status.retry_at = time.monotonic() + delay
                # Before a first connection the CLI's fail-fast error says it all; after it, warn.
                level = logging.WARNING if status.ever_connected else logging.INFO
                log.log(level, "%s: %s; retrying in %.1f s", status.url, status.last_error, delay)
                self._check_fail_fast()

    def send_share(self, link: Link, origin: WorkOrigin, nonce: int) -> asyncio.Future[ev.ShareResult]:
        """Write a share on ``link``'s connection now; the future resolves with the answer.

        Writing happens before this returns, so a share checked against the live jobs is
        on the wire before any later pool message (a clean job) can be read. Raises
        PoolError when that connection is gone (the share is then stale: its job belongs
        to a connection that no longer exists).
        """
        active = self._active
        if active is None or active.link != link or not active.authorized:
            raise PoolError("the connection this share was found on is gone")
        try:
            request_id, data = active.protocol.submit(self.user_of(active.link.index), origin, nonce)
        except LocalProtocolError as exc:
            raise PoolError(str(exc)) from exc
        waiter: asyncio.Future[ev.ShareResult] = asyncio.get_running_loop().create_future()
        active.waiters[request_id] = waiter
        waiter.add_done_callback(lambda _: active.waiters.pop(request_id, None))
        active.writer.write(data)
        return waiter

    async def submit(self, link: Link, origin: WorkOrigin, nonce: int) -> ev.ShareResult:
        """Send a share and wait for the pool's answer (PoolError: gone or no answer)."""
        return await self.wait_answer(self.send_share(link, origin, nonce))

    async def wait_answer(self, waiter: asyncio.Future[ev.ShareResult]) -> ev.ShareResult:
        try:
            return await asyncio.wait_for(waiter, self.options.submit_timeout)
        except TimeoutError:
            raise PoolError(f"no answer to share within {self.options.submit_timeout:.0f} s") from None

    # --- the pool list (the cgminer API's switchpool / addpool / enablepool / disablepool)

    def user_of(self, index: int) -> str:
        """The worker name used on pool ``index``."""
        return self.endpoints[index].user or self.options.user

    def add_pool(self, url: str) -> int:
        """Append a pool at the lowest priority; returns its index."""
        endpoint = parse_pool_url(url)
        self.endpoints.append(endpoint)
        self.status.append(PoolStatus(endpoint.url))
        self.priority.append(len(self.endpoints) - 1)
        return len(self.endpoints) - 1

    def switch_pool(self, index: int) -> None:
        """Make pool ``index`` the first choice and move to it now."""
        self._check_index(index)
        self.status[index].enabled = True
        self.priority.remove(index)
        self.priority.insert(0, index)
        self._move_to(index, "switched by the operator")

    def enable_pool(self, index: int) -> None:
        self._check_index(index)
        self.status[index].enabled = True
        self.status[index].retry_at = 0.0
        active = self._active
        if active is not None and self._rank(index) < self._rank(active.link.index):
            self._move_to(index, "a better pool was enabled")

    def disable_pool(self, index: int) -> None:
        """Stop using pool ``index``; when it is the current one, fail over now."""
        self._check_index(index)
        if all(not s.enabled or i == index for i, s in enumerate(self.status)):
            raise ConfigError("cannot disable the last enabled pool")
        self.status[index].enabled = False
        active = self._active
        if active is not None and active.link.index == index:
            target = next(i for i in self.priority if self.status[i].enabled)
            self._move_to(target, "disabled by the operator")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.endpoints):
            raise ConfigError(f"no pool {index} (pools are 0..{len(self.endpoints) - 1})")

    def _rank(self, index: int) -> int:
        return self.priority.index(index)

    def _move_to(self, index: int, why: str) -> None:
        leave = self._leave
        if leave is not None and not leave.done() and self._active and self._active.link.index != index:
            leave.set_result(_Leave(index, why))

    def _next_pool(self) -> int | None:
        now = time.monotonic()
        for index in self.priority:
            status = self.status[index]
            if status.enabled and status.retry_at <= now:
                return index
        return None

    def _check_fail_fast(self) -> None:
        if not self.options.fail_fast:
            return
        if all(s.failures and not s.ever_connected for s in self.status if s.enabled):
            reasons = "; ".join(f"{s.url}: {s.last_error}" for s in self.status)
            raise PoolError(f"no pool could be reached ({reasons})")

    # --- one connection ----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.options.tls_ca)
        if not self.options.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _open(self, endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = self._ssl_context() if endpoint.tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port, ssl=context, limit=self.options.max_line),
            self.options.connect_timeout,
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
                if hasattr(socket, name):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        return reader, writer

    async def _serve(self, index: int) -> None:
        endpoint = self._redirects.pop(index, self.endpoints[index])
        status = self.status[index]
        reader, writer = await self._open(endpoint)
        self._session_counter += 1
        link = Link(index, status.url, self._session_counter)
        protocol = ClientConnection(max_line=self.options.max_line)
        active = _Active(link, protocol, writer)
        self._active = active
        status.connected, status.ever_connected = True, True
        status.connects += 1
        log.info("connected to %s", endpoint.url)
        self.handler(link, Connected())
        leave: asyncio.Future[_Leave] = asyncio.get_running_loop().create_future()
        self._leave = leave
        better = [i for i in self.priority[: self._rank(index)] if self.status[i].enabled]
        failback = asyncio.create_task(self._watch_better_pools(better, leave)) if better else None
        reason = "closed"
        try:
            if self.options.version_rolling:
                writer.write(protocol.configure(self.options.version_mask))
            resume = self._resume.get(index)
            writer.write(protocol.subscribe(resume[0] if resume else None))
            writer.write(protocol.authorize(self.user_of(index), endpoint.password or self.options.password))
            await writer.drain()
            await self._read_loop(reader, active, leave)
        except (_Redirect, _Leave) as exc:
            reason = str(exc)
            raise
        except (OSError, TimeoutError, PoolError, ssl.SSLError) as exc:
            reason = _describe(exc)
            raise
        finally:
            if failback is not None:
                failback.cancel()
            self._active, self._leave = None, None
            status.connected = False
            for waiter in active.waiters.values():
                if not waiter.done():
                    waiter.set_exception(PoolError(f"connection lost before the pool answered ({reason})"))
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self.handler(link, Disconnected(reason))

    async def _read_loop(self, reader: asyncio.StreamReader, active: _Active, leave: asyncio.Future[_Leave]) -> None:
        protocol, writer = active.protocol, active.writer
        while True:
            read = asyncio.ensure_future(reader.read(65536))
            waiting: set[asyncio.Future[Any]] = {read, leave}
            done, _ = await asyncio.wait(waiting, timeout=self.options.idle_timeout, return_when="FIRST_COMPLETED")
            if leave in done:
                read.cancel()
                raise leave.result()
            if read not in done:
                read.cancel()
                raise PoolError(f"watchdog: nothing from the pool for {self.options.idle_timeout:.0f} s")
            data = read.result()
            if not data:
                raise PoolError("the pool closed the connection")
            protocol.receive_data(data)
            while (event := protocol.next_event()) is not None:
                self._on_event(active, event)
            reply = protocol.data_to_send()
            if reply:
                writer.write(reply)
            await writer.drain()

    def _on_event(self, active: _Active, event: ev.Event) -> None:
        index = active.link.index
        if isinstance(event, ev.ShareResult):
            waiter = active.waiters.get(event.request_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
            return
        if isinstance(event, ev.Subscribed):
            if event.session_id:
                self._resume[index] = (event.session_id, event.extranonce1)
            if self.options.extranonce_subscribe:
                active.writer.write(active.protocol.extranonce_subscribe())
            if self.options.suggest_difficulty:
                active.writer.write(active.protocol.suggest_difficulty(self.options.suggest_difficulty))
        elif isinstance(event, ev.Authorized):
            if not event.accepted:
                raise PoolError(f"worker {event.user!r} not authorized: {event.reason}")
            active.authorized = True
            # Working again: an old failure no longer describes this pool.
            self.status[index].failures, self.status[index].last_error = 0, None
        elif isinstance(event, ev.ProtocolError):
            log.warning("%s: %s", active.link.url, event.message)
            if event.fatal:
                raise PoolError(event.message)
        elif isinstance(event, ev.Reconnect):
            self._follow_reconnect(active, event)
        elif isinstance(event, ev.ShowMessage):
            log.info("%s says: %s", active.link.url, event.text)
        self.handler(active.link, event)

    def _follow_reconnect(self, active: _Active, event: ev.Reconnect) -> None:
        current = self.endpoints[active.link.index]
        host = event.host or current.host
        if host != current.host and not self.options.allow_redirect:
            log.warning("%s: ignoring client.reconnect to another host %s", current.url, host)
            return
        target = Endpoint(current.url, host, event.port or current.port, current.tls, current.user, current.password)
        raise _Redirect(target, event.wait)

    async def _watch_better_pools(self, better: list[int], leave: asyncio.Future[_Leave]) -> None:
        """Probe the pools ranked above the current one; leave for the first that answers."""
        while not leave.done():
            await asyncio.sleep(self.options.failback_interval)
            for index in better:
                try:
                    _, writer = await self._open(self.endpoints[index])
                except (OSError, TimeoutError, ssl.SSLError):
                    continue
                writer.close()
                if not leave.done():
                    leave.set_result(_Leave(index, f"a better pool ({self.endpoints[index].url}) is back"))
                return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); use --tls-ca FILE or --tls-insecure"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
