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
image cannot send. Every error, 404 and 405 included, is a JSON ``{"error": ...}``.

Against DNS rebinding (a page on another site whose name is made to resolve to this
host), every request must name this server in its ``Host`` header: the listen address,
``localhost``, ``127.0.0.1`` or ``[::1]``, with or without a port, or a name the operator
allowed (``--web-allow-host``); any other gets 403, a malformed one (``[::1]evil.com``,
``localhost:abc``) 400, and an absolute-form target (``GET http://NAME/...``) must name
this server too (see :class:`hashcore.listen.HostRule`). A request body is JSON parsed
with a bound on nesting and without duplicate keys, so a body of ``[[[[...`` or
``{"index": 0, "index": 5}`` is a 400, never a crash or a guess; it must arrive within
:data:`BODY_SECONDS`.

A request the HTTP parser cannot read (a TLS hello on this plain port, a bad method, a
header line over 8 KiB) is answered 400 and logged as one short line, rate-limited, never
a traceback. Stopping waits at most :data:`SHUTDOWN_SECONDS` for a request in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from hashcore import boundedjson
from hashcore.control import MinerControl, ThrottleControl, ThrottleView, power_target
from hashcore.errors import ConfigError, HashcoreError
from hashcore.listen import HostRule, PeerErrorLog, dual_stack_socket, listen_failure
from hashcore.web.history import History
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
#: Seconds a control request has to send its body (a few bytes of JSON).
BODY_SECONDS = 5.0
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

#: The page may load and connect to this server only: no CDN, no font, no beacon.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Refused(Exception):
    """A request answered with an error status and a JSON message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


_BYE = object()  # put in a stream's queue: say goodbye and end the stream


def _error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


def _json_text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


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
        self.allow_control = allow_control
        self._token = token
        self.throttle = throttle
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
        self._runner: web.AppRunner | None = None
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
        return self._token

    async def start(self) -> None:
        """Listen; raises ConfigError when the address cannot be used."""
        if self._runner is not None:
            return
        self._assets = _load_assets()
        if self.allow_control and self._token is None:
            self._token = secrets.token_urlsafe(24)
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.on_response_prepare.append(self._headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_get("/api/events", self._events, allow_head=False)  # a stream has no HEAD
        app.router.add_get("/api/history", self._history)
        app.router.add_get("/api/bench", self._bench)
        app.router.add_post("/api/control/pause", self._pause)
        app.router.add_post("/api/control/resume", self._resume)
        app.router.add_post("/api/control/target", self._target)
        app.router.add_post("/api/control/pool", self._pool)
        # Requests the parser cannot read are logged under hashcore.web.http, one short line each.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS,
                               lingering_time=LINGER_SECONDS,
                               logger=PeerErrorLog(logging.getLogger("hashcore.web.http"), "dashboard"))
        await runner.setup()
        try:
            sock = dual_stack_socket(self.host, self.port)
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True) if sock is None \
                else web.SockSite(runner, sock)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"dashboard cannot listen on {self.host}:{self.port}: "
                              f"{listen_failure(exc, self.host)}") from exc
        try:
            first = self._snapshot()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.port = int(bound_port)
        shown = str(bound_host)
        if ipaddress.ip_address(shown).is_unspecified:
            shown = "127.0.0.1" if ":" not in shown else "::1"
        self._url = f"http://[{shown}]:{self.port}/" if ":" in shown else f"http://{shown}:{self.port}/"
        if not _is_loopback(self.host):
            log.warning("dashboard listens on %s: anyone who can reach it sees the miner's figures", self.host)
        if ipaddress.ip_address(str(bound_host)).is_unspecified:
            log.warning("dashboard answers only to %s in the Host header: name the others browsers use with "
                        "--web-allow-host", ", ".join(sorted(self.allowed_hosts)))
        self._publish(first)
        self._sampler = asyncio.create_task(self._sample_forever(), name="hashcore-web-sampler")
        log.info("dashboard on %s (control %s)", self._url, "on" if self.allow_control else "off")

    async def stop(self) -> None:
        """Tell open pages the miner is stopping, then close every connection."""
        if self._runner is None:
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
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- figures -------------------------------------------------------------------------

    def _throttle_status(self) -> tuple[dict[str, Any] | None, str | None]:
        if self.throttle is None:
            return None, None
        try:
            status = self.throttle.status()
            view = ThrottleView.from_status(status if isinstance(status, Mapping) else {}).to_json()
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

    # --- middleware ----------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._check_host(request)
            if request.content_length is not None and request.content_length > MAX_BODY:
                raise _Refused(413, f"request body too large: {request.content_length} bytes, at most {MAX_BODY}")
            return await handler(request)
        except _Refused as exc:
            return _error_response(exc.status, exc.message, exc.headers)
        except web.HTTPRequestEntityTooLarge:
            return _error_response(413, f"request body too large: at most {MAX_BODY} bytes")
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return _error_response(405, f"{request.method} is not allowed on {request.path}; use {allowed}",
                                   {"Allow": allowed})
        except web.HTTPNotFound:
            return _error_response(404, f"nothing at {request.path}")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error_response(exc.status, exc.reason)
        except ConnectionResetError:
            raise
        except HashcoreError as exc:
            return _error_response(400, str(exc))
        except Exception:
            log.exception("dashboard request %s %s failed", request.method, request.path)
            return _error_response(500, "internal error; the miner's log has the details")

    def _check_host(self, request: web.Request) -> None:
        """Refuse a request addressed to another name (a rebound DNS name in a browser), or
        naming this one in a malformed way. No Host at all (HTTP/1.0) is not a browser."""
        refusal = self.hosts.refusal(request.headers.getall("Host", []), request.raw_path)
        if refusal is not None:
            raise _Refused(*refusal)

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store" if request.path.startswith("/api/") else "no-cache")

    # --- page and data -------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._assets["index.html"], content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "index.html":
            raise _Refused(404, f"no asset named {name!r}")
        kind = ASSETS[name]
        return web.Response(body=self._assets[name], content_type=kind,
                            charset="utf-8" if kind.startswith("text/") else None)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot(), dumps=_json_text)

    async def _history(self, request: web.Request) -> web.Response:
        span = request.query.get("span", "hour")
        if span == "hour":
            points = self.history.hour()
        elif span == "day":
            points = self.history.day()
        else:
            raise _Refused(400, f"span must be 'hour' or 'day', not {span[:40]!r}")
        return web.json_response({"span": span, "points": points}, dumps=_json_text)

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
        return web.json_response({"rows": rows, "error": error, "source": source}, dumps=_json_text)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            raise _Refused(503, f"too many open dashboards (at most {MAX_STREAMS}); close one and reload")
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
                    await response.write(f"event: bye\ndata: {_json_text(bye)}\n\n".encode())
                    break
                if item is not None:
                    wait = sent_at + PUSH_INTERVAL - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        if not queue.empty():
                            item = queue.get_nowait()  # newer figures, or the goodbye, came meanwhile
                            continue
                    await response.write(f"event: stats\ndata: {_json_text(item)}\n\n".encode())
                    sent_at = loop.time()
                item = await queue.get()
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self._streams.discard(queue)
        return response

    # --- control -------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        if not self.allow_control:
            raise _Refused(403, "control is off: start the miner with --web-allow-control to allow it")
        supplied = request.headers.get("X-Hashcore-Token")  # undecodable bytes arrive as surrogates
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if supplied is None and scheme.lower() == "bearer":
            supplied = credentials.strip()
        challenge = {"WWW-Authenticate": 'Bearer realm="hashcore"'}
        if not supplied:
            raise _Refused(401, "control needs the token printed when the miner started: send "
                                "'Authorization: Bearer TOKEN' or 'X-Hashcore-Token: TOKEN'", challenge)
        assert self._token is not None
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"),
                                   self._token.encode("utf-8", "surrogatepass")):
            raise _Refused(401, "wrong control token", challenge)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            async with asyncio.timeout(BODY_SECONDS):
                raw = await request.read()
        except TimeoutError:
            raise _Refused(408, f"the request body did not arrive within {BODY_SECONDS:g} s",
                           {"Connection": "close"}) from None
        if not raw.strip():
            return {}
        try:
            data = boundedjson.loads(raw, reject_duplicates=True)
        except ValueError as exc:
            raise _Refused(400, f"request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Refused(400, "request body must be a JSON object")
        return data

    def _done(self, request: web.Request, message: str) -> web.Response:
        """The answer to a control request carried out (and its line in the log)."""
        log.info("dashboard control: %s from %s: %s", request.path.rsplit("/", 1)[-1], request.remote, message)
        return web.json_response({"ok": True, "message": message, "stats": self._snapshot()}, dumps=_json_text)

    async def _pause(self, request: web.Request) -> web.Response:
        self._authorize(request)
        await self._body(request)
        self.miner.pause()
        return self._done(request, "paused: hashing stopped, the pool connection stays")

    async def _resume(self, request: web.Request) -> web.Response:
        self._authorize(request)
        await self._body(request)
        self.miner.resume()
        return self._done(request, "resumed")

    async def _target(self, request: web.Request) -> web.Response:
        self._authorize(request)
        body = await self._body(request)
        if "watts" not in body:
            raise _Refused(400, "send {\"watts\": W} for a power target, or {\"watts\": null} to clear it")
        watts = body["watts"]
        if watts is not None:
            try:
                watts = power_target(watts)  # the API's rule: above 0 W
            except ConfigError as exc:
                raise _Refused(400, f"{exc}, or null to clear it; got {watts!r:.40}") from None
        if self.throttle is None:
            raise _Refused(409, "no throttle is running, so there is no power target to set")
        try:
            self.throttle.set_target(watts)
        except (HashcoreError, ValueError) as exc:
            raise _Refused(400, f"power target refused: {exc}") from None
        return self._done(request, "power target cleared" if watts is None else f"power target {watts:g} W")

    async def _pool(self, request: web.Request) -> web.Response:
        self._authorize(request)
        body = await self._body(request)
        index = body.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise _Refused(400, f"send {{\"index\": N}} with the pool's number from 0; got {index!r:.40}")
        try:
            self.miner.switch_pool(index)
        except ConfigError as exc:
            raise _Refused(400, str(exc)) from None
        return self._done(request, f"switching to pool {index}")
