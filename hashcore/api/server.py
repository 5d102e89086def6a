"""The API's TCP transport: one request per connection, as cgminer serves it.

Each connection: check the peer against the allow list (a peer it does not list is
closed without a word, as cgminer ignores it), read one request (until end of stream,
a terminator, a complete JSON object, a quiet spell, or the size cap), answer, add the
NUL byte cgminer sends, close. The reply is followed by a half-close and the rest of
what the client sends is read and dropped for a moment, so a client still writing (an
oversized request) reads the error instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable

from hashcore.api.access import AllowList
from hashcore.api.commands import DESCRIPTION, Dispatcher
from hashcore.api.protocol import MAX_REQUEST, Code, RequestError, RequestReader, render_error
from hashcore.control import MinerControl, ThrottleControl
from hashcore.errors import ConfigError
from hashcore.listen import dual_stack_socket, listen_failure

log = logging.getLogger("hashcore.api")

#: Default port of the cgminer API.
DEFAULT_PORT = 4028


class ApiServer:
    """Serves the cgminer RPC API for a miner.

    ``async with ApiServer(miner, "127.0.0.1", 4028, allow="W:127.0.0.1") as api: ...``

    Args:
        miner: the miner to report on and control (:class:`hashcore.engine.Miner`).
        host / port: where to listen (port 0 picks a free one; see :attr:`port`).
        allow: cgminer's ``--api-allow`` list (a string or a parsed :class:`AllowList`);
            None serves loopback clients, read-only.
        on_quit: called (after the reply is sent) when a privileged client sends
            ``quit``; it may return an awaitable. Without it ``quit`` is refused.
        throttle: the power-budget follower for ``powertarget`` and ``Power Limit``; it
            may be set later through :attr:`throttle` (the CLI starts the API before the
            miner, and the throttle after it).
        max_request: the largest request accepted, in bytes.
        request_timeout: seconds a client has to send its request.
        quiet_time: seconds without new bytes after which a partial request is taken
            as complete (a client that sends ``summary`` with no newline and waits).
    """

    def __init__(
        self,
        miner: MinerControl,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allow: str | AllowList | None = None,
        on_quit: Callable[[], object] | None = None,
        throttle: ThrottleControl | None = None,
        *,
        max_request: int = MAX_REQUEST,
        request_timeout: float = 5.0,
        quiet_time: float = 0.25,
    ) -> None:
        self.host = host
        self._port = port
        self.allow = allow if isinstance(allow, AllowList) else AllowList.parse(allow)
        self.on_quit = on_quit
        self.dispatcher = Dispatcher(miner, throttle, can_quit=on_quit is not None)
        self.max_request = max_request
        self.request_timeout = request_timeout
        self.quiet_time = quiet_time
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._quit_tasks: set[asyncio.Future[object]] = set()
        self._stopping = False

    @property
    def throttle(self) -> ThrottleControl | None:
        return self.dispatcher.throttle

    @throttle.setter
    def throttle(self, throttle: ThrottleControl | None) -> None:
        self.dispatcher.throttle = throttle

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        try:
            sock = dual_stack_socket(self.host, self._port)  # [::] takes IPv4 clients too
            if sock is None:
                self._server = await asyncio.start_server(self._serve, self.host, self._port, reuse_address=True)
            else:
                self._server = await asyncio.start_server(self._serve, sock=sock)
        except OSError as exc:
            raise ConfigError(f"the API cannot listen on {self.host}:{self._port}: "
                              f"{listen_failure(exc, self.host)}") from exc
        log.info("API listening on %s:%d (allowed: %s)", self.host, self.port, self.allow.describe())

    async def stop(self) -> None:
        if self._server is not None:
            self._stopping = True  # connections still open are cut, not flushed to a client that does not read
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
            self._stopping = False

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- one connection ----------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        quit_requested = False
        try:
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if peer else ""
            access = self.allow.lookup(address)
            if access is None:
                log.info("API: connection from %s ignored (not in the allow list)", address)
                await self._drain_client(reader, writer)
                return
            frame = await self._read(reader)
            if frame is None:
                return
            if frame.oversized:
                error = RequestError(
                    Code.REQUEST_TOO_LARGE, f"Request too large (over {self.max_request} bytes)", frame.looks_like_json
                )
                reply = render_error(error, DESCRIPTION)
            else:
                outcome = self.dispatcher.handle(frame.request(), access)
                reply, quit_requested = outcome.data, outcome.quit
            writer.write(reply + b"\x00")
            await writer.drain()
            if quit_requested:
                self._quit()
            await self._drain_client(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            pass  # the server is stopping; ending quietly keeps asyncio from logging it
        except Exception:
            log.exception("API: answering a request failed")
        finally:
            if self._stopping:
                writer.transport.abort()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._connections.discard(task)

    async def _read(self, reader: asyncio.StreamReader) -> RequestReader | None:
        """One request's bytes (None when the client sent nothing in time)."""
        frame = RequestReader(self.max_request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        while not frame.done:
            remaining = deadline - loop.time()
            if remaining <= 0:
                if frame.empty:
                    return None
                frame.finish()
                break
            wait = remaining if frame.empty else min(remaining, self.quiet_time)
            try:
                chunk = await asyncio.wait_for(reader.read(4096), wait)
            except TimeoutError:
                if not frame.empty:
                    frame.finish()  # a quiet spell after some bytes: cgminer's single recv
                continue
            if not chunk:
                frame.finish()  # end of stream; an empty request is answered "Invalid command", as cgminer does
                continue
            frame.feed(chunk)
        return frame

    async def _drain_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then drop what the client still sends (briefly, boundedly)."""
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(1.0):
                dropped = 0
                while dropped < 1 << 20:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    dropped += len(chunk)

    def _quit(self) -> None:
        assert self.on_quit is not None
        log.warning("API: quit requested")
        result = self.on_quit()
        if inspect.isawaitable(result):
            future = asyncio.ensure_future(result)
            self._quit_tasks.add(future)
            future.add_done_callback(self._quit_tasks.discard)
