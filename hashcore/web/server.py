"""The dashboard's HTTP server: the page, its assets, a JSON API, server-sent events, controls.

Routes
------
``GET /``                    the page (``static/index.html``)
``GET /static/{name}``       its script, style sheet and icon; nothing else is served
``GET /api/stats``           one snapshot now (see :func:`hashcore.web.snapshot.snapshot`)
``GET /api/events``          server-sent events: ``stats`` once a second, ``bye`` when stopping
``GET /api/history?span=``   ``hour`` (one point a second) or ``day`` (one a minute)
``GET /api/bench``           the latest bench table
``POST /api/control/pause``  ``/resume``, ``/target`` (``{"watts": W|null}``), ``/pool`` (``{"index": i}``)

One sampler task calls ``miner.stats()`` once a second on the miner's own loop, records
the chart point and hands the snapshot to every open event stream, so a hundred open pages
cost the miner one ``stats()`` a second. Control requests are refused (403) unless the
server was made with ``allow_control``, and then need the token (401 without it) in
``Authorization: Bearer`` or ``X-Hashcore-Token``: a header, which a cross-site form or
image cannot send (see :mod:`hashcore.web.control`). Every error, 404 and 405 included, is
a JSON ``{"error": ...}`` (see :mod:`hashcore.web.responses`).

Against DNS rebinding (a page on another site whose name is made to resolve to this
host), every request must name this server in its ``Host`` header: the listen address,
``localhost``, ``127.0.0.1`` or ``[::1]``, with or without a port, or a name the operator
allowed (``--web-allow-host``); any other gets 403, a malformed one (``[::1]evil.com``,
``localhost:abc``) 400, and an absolute-form target (``GET http://NAME/...``) must name
this server too (see :class:`hashcore.listen.HostRule`). A request body is JSON parsed
with a bound on nesting and without duplicate keys, so a body of ``[[[[...`` or
``{"index": 0, "index": 5}`` is a 400, never a crash or a guess; it must arrive within
:data:`hashcore.web.control.BODY_SECONDS`.

A request the HTTP parser cannot read (a TLS hello on this plain port, a bad method, a
header line over 8 KiB) is answered 400 and logged as one short line, rate-limited, never
a traceback. Stopping waits at most :data:`SHUTDOWN_SECONDS` for a request in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from hashcore.control import MinerControl, ThrottleControl, ThrottleView
from hashcore.errors import ConfigError, HashcoreError
from hashcore.listen import HostRule, HttpListener
from hashcore.web.control import Controls
from hashcore.web.history import History
from hashcore.web.responses import Refused, error_middleware, json_text, security_headers
from hashcore.web.snapshot import bench_rows, load_bench, snapshot

log = logging.getLogger("hashcore.web")

#: Seconds between two pushes to one page (the issue's "at most once a second").
PUSH_INTERVAL = 1.0
#: Largest request body: a control request is a few bytes of JSON.
MAX_BODY = 4096
#: Open event streams at once; more get 503 (each holds a socket and a task).
MAX_STREAMS = 32
#: How long a page waits before reconnecting its event stream (milliseconds).
RETRY_MS = 2000
#: Seconds stopping waits for a request in progress (twice at most: to finish, then to cancel).
SHUTDOWN_SECONDS = 0.25
#: Seconds an answered request's unread body is still read and dropped, so its client reads the answer.
LINGER_SECONDS = 1.0

#: The assets the page loads, with their types; the route serves these names only.
ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}

_BYE = object()  # put in a stream's queue: say goodbye and end the stream


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load_assets() -> dict[str, bytes]:
    folder = resources.files("hashcore.web").joinpath("static")
    try:
        return {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    except OSError as exc:
        raise HashcoreError(f"the dashboard's files are missing from the package ({exc}); reinstall hashcore") from exc


class WebServer:
    """The dashboard, served from the running event loop (the miner's own).

    ``server = WebServer(miner, "127.0.0.1", 8080); await server.start(); print(server.url)``

    Args:
        miner: the miner to show and steer; the figures are ``miner.stats()``.
        host / port: where to listen (port 0: any free port; read :attr:`url` after start).
        allow_control: accept pause, resume, power target and pool switch requests.
        token: the control token; one is generated at start when control is allowed and
            none is given (read :attr:`token`).
        throttle: a running throttle (see :class:`~hashcore.control.ThrottleControl`), for
            the budget, its state and the power target.
        bench_reports: the bench table: a ``hashcore bench --json`` file (read on each
            request, so a newer bench shows up) or the reports themselves.
        allowed_hosts: more names (``miner.lan``, ``192.168.1.20``) the ``Host`` header may
            carry, besides the listen address and :data:`hashcore.listen.LOCAL_HOSTS`.
    """

    def __init__(
        self,
        miner: MinerControl,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_control: bool = False,
        token: str | None = None,
        throttle: ThrottleControl | None = None,
        bench_reports: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"dashboard port must be 0-65535, got {port}")
        if token is not None and len(token) < 8:
            raise ConfigError("the dashboard's control token must be at least 8 characters")
        self.miner = miner
        self.host = host
        self.port = port
        self.controls = Controls(miner, allowed=allow_control, token=token, throttle=throttle,
                                 snapshot=self._snapshot)
        self.hosts = HostRule(host, allowed_hosts, "--web-allow-host")
        self.allowed_hosts = self.hosts.names
        self._bench_path: Path | None = None
        self._bench_rows: list[dict[str, Any]] = []
        self._bench_error: str | None = None
        if isinstance(bench_reports, (str, os.PathLike)):
            self._bench_path = Path(bench_reports)
        elif bench_reports is not None:
            try:
                self._bench_rows = bench_rows(bench_reports)
            except ValueError as exc:
                raise ConfigError(f"bench reports for the dashboard: {exc}") from exc
        self.history = History()
        self._assets: dict[str, bytes] = {}
        self._listener: HttpListener | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Queue[object]] = set()
        self._latest: dict[str, Any] | None = None
        self._throttle_failed = False
        self._url: str | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port/`` once started (a wildcard address shows as loopback)."""
        if self._url is None:
            raise RuntimeError("the dashboard is not started")
        return self._url

    @property
    def token(self) -> str | None:
        """The control token (None when control is off and none was given)."""
        return self.controls.token

    @property
    def allow_control(self) -> bool:
        """Whether pause, resume, power target and pool switch requests are taken."""
        return self.controls.allowed

    @allow_control.setter
    def allow_control(self, allowed: bool) -> None:
        self.controls.allowed = allowed

    @property
    def throttle(self) -> ThrottleControl | None:
        """The running throttle; it may be set after start (the CLI starts it after the miner)."""
        return self.controls.throttle

    @throttle.setter
    def throttle(self, throttle: ThrottleControl | None) -> None:
        self.controls.throttle = throttle

    async def start(self) -> None:
        """Listen; raises ConfigError when the address cannot be used."""
        if self._listener is not None:
            return
        self._assets = _load_assets()
        self.controls.issue_token()
        # Requests the parser cannot read are logged under hashcore.web.http, one short line each.
        listener = HttpListener("dashboard", self.host, self.port, self.hosts,
                                peer_log=logging.getLogger("hashcore.web.http"),
                                shutdown_timeout=SHUTDOWN_SECONDS, lingering_time=LINGER_SECONDS)
        app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware(listener.refusal, MAX_BODY)])
        app.on_response_prepare.append(security_headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/api/events", self._events, allow_head=False)  # a stream has no HEAD
        app.router.add_get("/api/history", self._history)
        app.router.add_get("/api/bench", self._bench)
        self.controls.add_routes(app.router)
        await listener.start(app)
        try:
            first = self._snapshot()
        except BaseException:
            await listener.stop()
            raise
        self._listener = listener
        bound_host, self.port = listener.address
        shown = bound_host
        if ipaddress.ip_address(shown).is_unspecified:
            shown = "127.0.0.1" if ":" not in shown else "::1"
        self._url = f"http://[{shown}]:{self.port}/" if ":" in shown else f"http://{shown}:{self.port}/"
        if not _is_loopback(self.host):
            log.warning("dashboard listens on %s: anyone who can reach it sees the miner's figures", self.host)
        if ipaddress.ip_address(bound_host).is_unspecified:
            log.warning("dashboard answers only to %s in the Host header: name the others browsers use with "
                        "--web-allow-host", ", ".join(sorted(self.allowed_hosts)))
        self._publish(first)
        self._sampler = asyncio.create_task(self._sample_forever(), name="hashcore-web-sampler")
        log.info("dashboard on %s (control %s)", self._url, "on" if self.allow_control else "off")

    async def stop(self) -> None:
        """Tell open pages the miner is stopping, then close every connection."""
        if self._listener is None:
            return
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        for queue in list(self._streams):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_BYE)
        listener, self._listener = self._listener, None
        await listener.stop()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- figures -------------------------------------------------------------------------

    def _throttle_status(self) -> tuple[ThrottleView | None, str | None]:
        if self.throttle is None:
            return None, None
        try:
            status = self.throttle.status()
            view = ThrottleView.from_status(status if isinstance(status, Mapping) else {})
        except Exception as exc:  # a throttle fault must not blank the miner's figures
            if not self._throttle_failed:
                log.warning("throttle status unavailable: %s", exc)
            self._throttle_failed = True
            return None, f"throttle status unavailable: {exc}"
        self._throttle_failed = False
        return view, None

    def _snapshot(self) -> dict[str, Any]:
        stats = self.miner.stats()
        throttle, throttle_error = self._throttle_status()
        return snapshot(
            stats,
            throttle,
            now=time.time(),
            state="paused" if stats.paused else "mining",
            control=self.allow_control,
            throttle_error=throttle_error,
        )

    def _publish(self, snap: dict[str, Any]) -> None:
        self._latest = snap
        self.history.add(*snap["point"])
        for queue in self._streams:
            if queue.full():
                queue.get_nowait()  # a slow page gets the newest figures, not a backlog
            queue.put_nowait(snap)

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        published = loop.time()
        while True:
            # From the last push, not on a fixed grid: a late tick never makes the next one early.
            await asyncio.sleep(max(0.0, published + PUSH_INTERVAL - loop.time()))
            try:
                snap = self._snapshot()
            except Exception as exc:  # keep serving; the page says the figures stopped
                log.exception("dashboard could not read the miner's figures")
                if self._latest is None:
                    continue
                snap = {**self._latest, "time": time.time(), "state": "error", "error": str(exc)}
            self._publish(snap)
            published = loop.time()

    # --- page and data -------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._assets["index.html"], content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "index.html":
            raise Refused(404, f"no asset named {name!r}")
        kind = ASSETS[name]
        return web.Response(body=self._assets[name], content_type=kind,
                            charset="utf-8" if kind.startswith("text/") else None)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot(), dumps=json_text)

    async def _history(self, request: web.Request) -> web.Response:
        span = request.query.get("span", "hour")
        if span == "hour":
            points = self.history.hour()
        elif span == "day":
            points = self.history.day()
        else:
            raise Refused(400, f"span must be 'hour' or 'day', not {span[:40]!r}")
        return web.json_response({"span": span, "points": points}, dumps=json_text)

    async def _bench(self, request: web.Request) -> web.Response:
        rows, error, source = self._bench_rows, self._bench_error, None
        if self._bench_path is not None:
            source = self._bench_path.name
            try:
                rows, error = await asyncio.to_thread(load_bench, self._bench_path), None
            except FileNotFoundError:
                rows, error = [], f"no bench file yet at {self._bench_path} (run: hashcore bench --all --json)"
            except (OSError, ValueError) as exc:
                rows, error = [], str(exc)
        return web.json_response({"rows": rows, "error": error, "source": source}, dumps=json_text)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            raise Refused(503, f"too many open dashboards (at most {MAX_STREAMS}); close one and reload")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
        self._streams.add(queue)
        loop = asyncio.get_running_loop()
        try:
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            # The page reads /api/stats for its first figures; the stream carries the ticks.
            item: object = None
            sent_at = -math.inf
            while True:
                if item is _BYE:
                    bye = {"reason": "the miner is stopping", "time": time.time()}
                    await response.write(f"event: bye\ndata: {json_text(bye)}\n\n".encode())
                    break
                if item is not None:
                    wait = sent_at + PUSH_INTERVAL - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        if not queue.empty():
                            item = queue.get_nowait()  # newer figures, or the goodbye, came meanwhile
                            continue
                    await response.write(f"event: stats\ndata: {json_text(item)}\n\n".encode())
                    sent_at = loop.time()
                item = await queue.get()
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self._streams.discard(queue)
        return response
