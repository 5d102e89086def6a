"""The Stratum V1 transport: sockets, TLS, timeouts, reconnects and pool failover.

:class:`StratumClient` keeps one connection to the best reachable pool of a priority
list. It feeds the bytes to a :class:`~hashcore.stratum.protocol.ClientConnection` and
passes its events on to a handler, tagged with a :class:`~hashcore.stratum.options.Link`
that says which pool and which connection they came from (a share found on an old
connection must never be sent on a new one). It decides nothing about the protocol
itself. The bookkeeping it drives has no I/O and lives beside it: one connection's
progress and deadlines in :mod:`~hashcore.stratum.connection`, the pool list and its
retry times in :mod:`~hashcore.stratum.failover`.

* Deadlines on every wait: connect; the handshake (subscribe and authorize answered
  and a first job, within ``handshake_timeout``: a pool that accepts TCP and says
  nothing is left as soon as a dead one); a share's answer (``submit_timeout``: a pool
  that stops answering or reading is left); new jobs (a pool silent for three times its
  longest gap between jobs, but at least 15 s, has hung); and a watchdog (no bytes for
  ``idle_timeout``).
* Reconnect with exponential backoff and jitter, per pool. The backoff resets only
  after a connection proved itself (a share accepted, or up ``stable_after``
  seconds): a pool that authorizes and then drops is not hammered.
* Failover: pools are tried in priority order; while on a backup, the better pools are
  probed every ``failback_interval`` seconds with a whole handshake (subscribe,
  authorize, first job), and the client returns to the first that completes one.
* Pools from before BIP 310 may drop a client whose first message is
  ``mining.configure``; such a pool gets a plain handshake from then on.
* Shares found on a job that came before the answer to ``mining.authorize`` (ckpool
  sends its first job first) are held and sent once the worker is authorized.
* ``client.reconnect`` is followed (to the same host only, unless allowed); a pool
  that keeps redirecting before any share is accepted backs off like a failing one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from typing import Any

from hashcore.errors import ConfigError, PoolError
from hashcore.lograte import RateLimitedLog
from hashcore.stratum import events as ev
from hashcore.stratum.connection import ActiveConnection, HeldShare
from hashcore.stratum.failover import PoolList
from hashcore.stratum.options import ClientOptions, Connected, Disconnected, Handler, Link, PoolStatus
from hashcore.stratum.protocol import ClientConnection, LocalProtocolError, State
from hashcore.stratum.urls import Endpoint, parse_pool_url
from hashcore.work import WorkOrigin

log = logging.getLogger("hashcore.stratum")

#: How often a connection's deadlines are looked at while nothing arrives.
DEADLINE_POLL = 0.25


class _Closed(PoolError):
    """The pool closed the connection."""


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
        self.options = options
        self.handler = handler
        self.pools = PoolList([parse_pool_url(url) for url in urls], self._backoff)
        self._leave: asyncio.Future[_Leave] | None = None
        self._active: ActiveConnection | None = None
        self._session_counter = 0
        self._resume: dict[int, tuple[str, bytes]] = {}  # pool index -> (session id, extranonce1)
        self._redirects: dict[int, Endpoint] = {}
        self._rng = random.Random()
        self._warn = RateLimitedLog(log)

    # --- public ------------------------------------------------------------------------

    @property
    def endpoints(self) -> list[Endpoint]:
        """The pools, by index (their URLs without passwords)."""
        return self.pools.endpoints

    @property
    def status(self) -> list[PoolStatus]:
        """What the client knows about each pool, by index."""
        return self.pools.status

    @property
    def priority(self) -> list[int]:
        """Pool indexes, best first."""
        return self.pools.priority

    @property
    def link(self) -> Link | None:
        """The connection shares may be submitted on now (authorized), or None."""
        active = self._active
        return active.link if active is not None and active.authorized else None

    def session(self, link: Link) -> ClientConnection | None:
        """The protocol of ``link``'s connection while it is open: the session state the
        pool set (``extranonce1``, ``extranonce2_size``, ``version_mask``, ``difficulty``)."""
        active = self._active
        return active.protocol if active is not None and active.link == link else None

    async def run(self) -> None:
        """Connect, serve, fail over and reconnect until cancelled."""
        pools = self.pools
        while True:
            index = pools.next_pool(time.monotonic())
            if index is None:
                self._check_fail_fast()
                await asyncio.sleep(pools.wait(time.monotonic()))
                continue
            status = pools.status[index]
            try:
                await self._serve(index)
            except _Redirect as redirect:
                self._redirects[index] = redirect.endpoint
                delay = pools.redirected(index, redirect.wait, time.monotonic())
                log.info("%s: %s in %.1f s", status.url, redirect, delay)
            except _Leave as leave:
                log.info("%s: leaving: %s", status.url, leave)
                pools.retry_now(leave.index)
            except (OSError, TimeoutError, PoolError, ssl.SSLError) as exc:
                retry_in = pools.failed(index, _describe(exc), time.monotonic())
                if retry_in is None:  # retry at once, without mining.configure
                    log.warning(
                        "%s dropped the connection after mining.configure without answering; using a plain "
                        "handshake (no version rolling) with this pool from now on", status.url)
                    continue
                # Before a first connection the CLI's fail-fast error says it all; after it, warn.
                level = logging.WARNING if status.ever_connected else logging.INFO
                log.log(level, "%s: %s; retrying in %.1f s", status.url, status.last_error, retry_in)
                self._check_fail_fast()

    def _backoff(self, failures: int) -> float:
        """Doubling delays with +-50% jitter, the jitter inside the cap."""
        options = self.options
        delay = options.backoff_base * 2 ** min(failures - 1, 30) * self._rng.uniform(0.5, 1.5)
        return min(options.backoff_max, delay)

    def send_share(self, link: Link, origin: WorkOrigin, nonce: int) -> asyncio.Future[ev.ShareResult]:
        """Write a share on ``link``'s connection now; the future resolves with the answer.

        Writing happens before this returns, so a share checked against the live jobs is
        on the wire before any later pool message (a clean job) can be read. Raises
        PoolError when that connection is gone (the share is then stale: its job belongs
        to a connection that no longer exists).
        """
        active = self._active
        if active is None or active.link != link:
            raise PoolError("the connection this share was found on is gone")
        waiter: asyncio.Future[ev.ShareResult] = asyncio.get_running_loop().create_future()
        if not active.authorized:
            # The job came before the answer to authorize: send the share once it comes.
            if len(active.held) >= self.options.max_held_shares:
                raise PoolError(f"{len(active.held)} shares already wait for the pool to authorize the worker")
            active.held.append(HeldShare(origin, nonce, waiter))
            return waiter
        self._write_share(active, origin, nonce, waiter)
        return waiter

    def _write_share(self, active: ActiveConnection, origin: WorkOrigin, nonce: int,
                     waiter: asyncio.Future[ev.ShareResult]) -> None:
        unsent = active.writer.transport.get_write_buffer_size()
        if unsent > self.options.max_unsent_bytes:
            # The pool does not read what we send: buffering more would grow without end.
            active.writer.transport.abort()
            raise PoolError(f"the pool is not reading ({unsent} bytes unsent); reconnecting")
        try:
            request_id, data = active.protocol.submit(self.user_of(active.link.index), origin, nonce)
        except LocalProtocolError as exc:
            raise PoolError(str(exc)) from exc
        active.waiters[request_id] = waiter
        active.sent_at[request_id] = time.monotonic()

        def forget(_: object) -> None:
            active.waiters.pop(request_id, None)
            active.sent_at.pop(request_id, None)

        waiter.add_done_callback(forget)
        active.writer.write(data)

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
        return self.pools.add(parse_pool_url(url))

    def switch_pool(self, index: int) -> None:
        """Make pool ``index`` the first choice and move to it now."""
        self.pools.prefer(index)
        self._move_to(index, "switched by the operator")

    def enable_pool(self, index: int) -> None:
        self.pools.enable(index)
        active = self._active
        if active is not None and self.pools.rank(index) < self.pools.rank(active.link.index):
            self._move_to(index, "a better pool was enabled")

    def disable_pool(self, index: int) -> None:
        """Stop using pool ``index``; when it is the current one, fail over now."""
        self.pools.disable(index)
        active = self._active
        if active is not None and active.link.index == index:
            self._move_to(self.pools.first_enabled(), "disabled by the operator")

    def _move_to(self, index: int, why: str) -> None:
        leave = self._leave
        if leave is not None and not leave.done() and self._active and self._active.link.index != index:
            leave.set_result(_Leave(index, why))

    def _check_fail_fast(self) -> None:
        if self.options.fail_fast:
            self.pools.check_reached()

    # --- one connection ----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.options.tls_ca)
        if not self.options.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _open(self, endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = self._ssl_context() if endpoint.tls else None
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.port, ssl=context, limit=self.options.max_line)
        except (UnicodeError, ValueError) as exc:
            # A host name the resolver cannot even encode (a redirect's, say): a failed pool.
            raise PoolError(f"cannot look up {endpoint.host[:80]!r}: {exc}") from None
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
        active = ActiveConnection(link, protocol, writer, time.monotonic())
        self._active = active
        self.pools.connected(index)
        log.info("connected to %s", endpoint.address)
        self.handler(link, Connected())
        leave: asyncio.Future[_Leave] = asyncio.get_running_loop().create_future()
        self._leave = leave
        better = self.pools.better_than(index)
        failback = asyncio.create_task(self._watch_better_pools(better, leave)) if better else None
        reason = "closed"
        try:
            active.sent_configure = self.options.version_rolling and not status.plain_handshake
            self._write_handshake(writer, protocol, index, endpoint, active.sent_configure)
            await writer.drain()
            await self._read_loop(reader, active, leave)
        except (_Redirect, _Leave) as exc:
            reason = str(exc)
            raise
        except (OSError, TimeoutError, PoolError, ssl.SSLError) as exc:
            reason = _describe(exc)
            dropped = isinstance(exc, (_Closed, ConnectionError))
            if dropped and protocol.state is State.SUBSCRIBING and active.sent_configure:
                self.pools.configure_dropped(index)
            raise
        finally:
            if failback is not None:
                failback.cancel()
            self._active, self._leave = None, None
            up_for = time.monotonic() - active.authorized_at if active.authorized_at is not None else 0.0
            self.pools.disconnected(index, proved=up_for >= self.options.stable_after or active.accepted > 0)
            lost = PoolError(f"connection lost before the pool answered ({reason})")
            for waiter in [*active.waiters.values(), *(h.waiter for h in active.held)]:
                if not waiter.done():
                    waiter.set_exception(lost)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            self.handler(link, Disconnected(reason))

    def _write_handshake(self, writer: asyncio.StreamWriter, protocol: ClientConnection, index: int,
                         endpoint: Endpoint, configure: bool) -> None:
        if configure:
            writer.write(protocol.configure(self.options.version_mask))
        resume = self._resume.get(index)
        writer.write(protocol.subscribe(resume[0] if resume else None))
        writer.write(protocol.authorize(self.user_of(index), endpoint.password or self.options.password))

    async def _read_loop(self, reader: asyncio.StreamReader, active: ActiveConnection,
                         leave: asyncio.Future[_Leave]) -> None:
        protocol, writer = active.protocol, active.writer
        last_data = time.monotonic()
        while True:
            read = asyncio.ensure_future(reader.read(65536))
            waiting: set[asyncio.Future[Any]] = {read, leave}
            while True:
                deadline, why = active.deadline(self.options, last_data)
                # Deadlines move while we wait (a share sent, an answer come): look again
                # at least every DEADLINE_POLL seconds.
                timeout = min(max(0.0, deadline - time.monotonic()), DEADLINE_POLL)
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when="FIRST_COMPLETED")
                if done:
                    break
                deadline, why = active.deadline(self.options, last_data)
                if deadline <= time.monotonic():
                    break
            if leave in done:
                read.cancel()
                raise leave.result()
            if read not in done:
                read.cancel()
                raise PoolError(why)
            last_data = time.monotonic()
            data = read.result()
            if not data:
                raise _Closed("the pool closed the connection")
            protocol.receive_data(data)
            while (event := protocol.next_event()) is not None:
                self._on_event(active, event)
            reply = protocol.data_to_send()
            if reply:
                writer.write(reply)
            await self._drain(active)

    async def _drain(self, active: ActiveConnection) -> None:
        """Wait for what we wrote to leave, within the answer deadline: a pool that stops
        reading must not stall this loop (and every deadline with it)."""
        unsent = active.writer.transport.get_write_buffer_size()
        if unsent > self.options.max_unsent_bytes:
            raise PoolError(f"the pool is not reading ({unsent} bytes unsent)")
        try:
            async with asyncio.timeout(self.options.submit_timeout):
                await active.writer.drain()
        except TimeoutError:
            raise PoolError(f"the pool has read nothing for {self.options.submit_timeout:g} s") from None

    def _on_event(self, active: ActiveConnection, event: ev.Event) -> None:
        index = active.link.index
        if isinstance(event, ev.ShareResult):
            active.accepted += event.accepted
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
            if not active.authorized:
                active.authorized, active.authorized_at = True, time.monotonic()
                self._send_held(active)
            # Working again: an old error no longer describes this pool (the backoff
            # count stays until the connection proves stable).
            self.status[index].last_error = None
        elif isinstance(event, ev.NewJob):
            active.note_job(time.monotonic())
        elif isinstance(event, ev.ProtocolError):
            self._warn.warning("protocol", "%s: %s", active.link.url, event.message)
            if event.fatal:
                raise PoolError(event.message)
        elif isinstance(event, ev.Reconnect):
            self._follow_reconnect(active, event)
        elif isinstance(event, ev.ShowMessage):
            log.info("%s says: %s", active.link.url, event.text)
        self.handler(active.link, event)

    def _send_held(self, active: ActiveConnection) -> None:
        held, active.held = active.held, []
        for share in held:
            if share.waiter.done():
                continue
            try:
                self._write_share(active, share.origin, share.nonce, share.waiter)
            except PoolError as exc:
                share.waiter.set_exception(exc)

    def _follow_reconnect(self, active: ActiveConnection, event: ev.Reconnect) -> None:
        current = self.endpoints[active.link.index]
        host = event.host or current.host
        if host != current.host and not self.options.allow_redirect:
            log.warning("%s: ignoring client.reconnect to another host %r", current.url, host)
            return
        port = event.port or current.port
        raise _Redirect(current.redirected_to(host, port), event.wait)

    async def _watch_better_pools(self, better: list[int], leave: asyncio.Future[_Leave]) -> None:
        """Probe the pools ranked above the current one; leave for the first that
        completes a whole handshake (a TCP connect alone proves nothing: a hung pool
        accepts connections and never speaks)."""
        while not leave.done():
            await asyncio.sleep(self.options.failback_interval)
            for index in better:
                if not self.status[index].enabled:
                    continue
                failure = await self._probe(index)
                if failure is not None:
                    log.info("%s: still unusable (%s)", self.endpoints[index].url, failure)
                    continue
                if not leave.done():
                    leave.set_result(_Leave(index, f"a better pool ({self.endpoints[index].url}) is back"))
                return

    async def _probe(self, index: int) -> str | None:
        """One whole handshake with pool ``index`` on a throwaway connection: None when
        it subscribed, authorized and sent a job within the handshake deadline, else why not."""
        endpoint, status = self.endpoints[index], self.status[index]
        try:
            async with asyncio.timeout(self.options.connect_timeout + self.options.handshake_timeout):
                reader, writer = await self._open(endpoint)
                try:
                    protocol = ClientConnection(max_line=self.options.max_line)
                    configure = self.options.version_rolling and not status.plain_handshake
                    self._write_handshake(writer, protocol, index, endpoint, configure)
                    await writer.drain()
                    authorized = has_job = False
                    while not (authorized and has_job):
                        data = await reader.read(65536)
                        if not data:
                            return "closed the connection during the handshake"
                        protocol.receive_data(data)
                        while (event := protocol.next_event()) is not None:
                            if isinstance(event, ev.Authorized):
                                if not event.accepted:
                                    return f"worker not authorized: {event.reason}"
                                authorized = True
                            elif isinstance(event, ev.NewJob):
                                has_job = True
                            elif isinstance(event, ev.ProtocolError) and event.fatal:
                                return event.message
                        writer.write(protocol.data_to_send())
                finally:
                    writer.close()
        except TimeoutError:
            return "no complete handshake in time"
        except (OSError, ssl.SSLError) as exc:
            return _describe(exc)
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); use --tls-ca FILE or --tls-insecure"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
