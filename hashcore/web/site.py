"""The site controller's page and Prometheus metrics, read-only, on one HTTP server.

Routes
------
``GET /``                    the site page (``static/site.html``)
``GET /static/{name}``       its script and style sheets and the icon; nothing else is served
``GET /api/site``            the site now: ``source.view().to_json()`` (what ``hashcore site --json`` prints)
``GET /api/events``          server-sent events: ``site`` once a second, ``bye`` when stopping
``GET /metrics``             Prometheus text (OpenMetrics when asked; see :mod:`hashcore.web.sitemetrics`)

The server only shows: it takes ``GET`` and ``HEAD`` without a body, any other method is
a 405 and a body a 400, and it has no control route (the operator steers the site through
its configuration). It listens as the dashboard does (:class:`hashcore.listen.HttpListener`):
every request must name it in its ``Host`` header against DNS rebinding (the listen
address, ``localhost``, ``127.0.0.1``, ``[::1]`` or a name allowed with
``--site-allow-host``; any other is a 403, see :class:`hashcore.listen.HostRule`), every
error is JSON and every answer carries the dashboard's security headers
(:mod:`hashcore.web.responses`), a request the HTTP parser cannot read is one short log
line, and stopping waits at most :data:`hashcore.web.server.SHUTDOWN_SECONDS` for a
request in progress.

One sampler task reads ``source.view()`` once a second and hands it to every open event
stream, so a hundred open pages cost the controller one ``view()`` a second; a stream
sends the newest figures when it can write, never a backlog. A scrape of ``/metrics``
takes its own view on the loop and writes it out in a worker thread. When ``view()`` fails the
streams get a ``fault`` event with the reason (``{"error": ...}``) and the page says the
figures stopped (not ``error``: a browser's ``EventSource`` takes that name for its own
connection failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from hashcore.app.site.view import SiteSource, SiteView
from hashcore.errors import ConfigError, HashcoreError
from hashcore.listen import HostRule, HttpListener
from hashcore.metrics import METHODS
from hashcore.web.responses import Refused, error_middleware, json_text, security_headers
from hashcore.web.server import LINGER_SECONDS, MAX_BODY, MAX_STREAMS, PUSH_INTERVAL, RETRY_MS, SHUTDOWN_SECONDS
from hashcore.web.sitemetrics import SiteCollector

log = logging.getLogger("hashcore.web.site")

#: The page and what it loads, with their types; the routes serve these names only.
ASSETS = {
    "site.html": "text/html",
    "site.js": "text/javascript",
    "style.css": "text/css",
    "site.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
#: The longest reason a ``fault`` event carries.
ERROR_CHARS = 300
#: The last event a stream sends.
BYE = b'event: bye\ndata: {"reason":"the site controller is stopping"}\n\n'


class _Feed:
    """The newest event for the open streams, written out once for all of them, and a
    generation count that moves with every publication; closed when the server stops."""

    def __init__(self) -> None:
        self.message = b""
        self.generation = 0
        self.closed = False
        self._changed = asyncio.Event()

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Raises ValueError where ``data`` holds a figure JSON cannot carry (NaN, infinity)."""
        self.message = f"event: {event}\ndata: {json_text(data)}\n\n".encode()
        self.generation += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Everyone waiting holds the old event; the next wait takes a fresh one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def after(self, generation: int) -> int:
        """Wait for a publication newer than ``generation`` (or the close); the newest generation."""
        while self.generation == generation and not self.closed:
            await self._changed.wait()
        return self.generation


def _read_assets() -> dict[str, bytes]:
    folder = resources.files("hashcore.web").joinpath("static")
    try:
        return {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    except OSError as exc:
        raise HashcoreError(f"the site page's files are missing from the package ({exc}); reinstall hashcore") \
            from exc


class _Still:
    """One view, handed out as the site's (a scrape's snapshot, written out in a thread)."""

    def __init__(self, view: SiteView) -> None:
        self._view = view

    def view(self) -> SiteView:
        return self._view


def site_registry(source: SiteSource) -> CollectorRegistry:
    """A registry of the site's metrics and the controller process's (CPU, memory, Python)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (SiteCollector(source), ProcessCollector(registry=None), PlatformCollector(registry=None)):
        registry.register(collector)
    return registry


@web.middleware
async def _read_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """GET and HEAD without a body; the error middleware around it answers the refusals."""
    if request.method not in METHODS:
        raise Refused(405, f"{request.method} is not served here: the site page only shows; use GET",
                      {"Allow": ", ".join(METHODS)})
    if request.body_exists:
        raise Refused(400, "a request to the site page carries no body")
    return await handler(request)


class SiteServer:
    """The site page and metrics, served from the running event loop (the controller's).

    ``server = SiteServer(controller, "127.0.0.1", 8081); await server.start(); print(server.url)``

    Args:
        source: the site to show (its :meth:`~hashcore.app.site.view.SiteSource.view`).
        host / port: where to listen (port 0: any free port; read :attr:`port` after start).
        allowed_hosts: more names (``site.lan``, ``192.168.1.20``) the ``Host`` header may
            carry, besides the listen address and :data:`hashcore.listen.LOCAL_HOSTS`.
    """

    def __init__(self, source: SiteSource, host: str = "127.0.0.1", port: int = 0, *,
                 allowed_hosts: Sequence[str] = ()) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"site page port must be 0-65535, got {port}")
        self.source = source
        self.host = host
        self.hosts = HostRule(host, allowed_hosts, "--site-allow-host")
        self._scraping = asyncio.Lock()
        self._listener = HttpListener("site page", host, port, self.hosts,
                                      peer_log=logging.getLogger("hashcore.web.site.http"),
                                      shutdown_timeout=SHUTDOWN_SECONDS, lingering_time=LINGER_SECONDS)
        self._assets: dict[str, bytes] = {}
        self._feed = _Feed()
        self._streams = 0
        self._sampler: asyncio.Task[None] | None = None
        self._view_failed = False

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        return self._listener.port

    @property
    def url(self) -> str:
        """``http://host:port/`` once started (a wildcard address shows as loopback)."""
        if not self._listener.running:
            raise RuntimeError("the site page is not started")
        host, port = self._listener.address
        ip = ipaddress.ip_address(host)
        if ip.is_unspecified:
            ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
        shown = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
        return f"http://{shown}:{port}/"

    async def start(self) -> None:
        """Listen; raises ConfigError when the address cannot be used."""
        if self._listener.running:
            return
        self._assets = _read_assets()
        first = self.source.view().to_json()  # a source that cannot be read fails here, not on the page
        app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[error_middleware(self._listener.refusal, MAX_BODY), _read_only])
        app.on_response_prepare.append(security_headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/site", self._site)
        app.router.add_get("/api/events", self._events, allow_head=False)  # a stream has no HEAD
        app.router.add_get("/metrics", self._metrics)
        self._feed = _Feed()
        self._feed.publish("site", first)
        await self._listener.start(app)
        self._sampler = asyncio.create_task(self._sample_forever(), name="hashcore-site-sampler")
        log.info("site page on %s (metrics at %smetrics)", self.url, self.url)
        if not ipaddress.ip_address(self._listener.address[0]).is_loopback:
            log.warning("site page listens on %s: anyone who can reach it sees the site's figures; it answers "
                        "only to %s in the Host header (name others with --site-allow-host)",
                        self.host, ", ".join(sorted(self.hosts.names)))

    async def stop(self) -> None:
        """Say goodbye to open pages, then close every connection."""
        if not self._listener.running:
            return
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        self._feed.close()
        await self._listener.stop()

    async def __aenter__(self) -> SiteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- the sampler ---------------------------------------------------------------------

    def _sample(self) -> None:
        try:
            self._feed.publish("site", self.source.view().to_json())
        except Exception as exc:  # keep serving; the pages say the figures stopped
            if not self._view_failed:
                log.exception("site page: the site's figures cannot be read")
            self._view_failed = True
            self._feed.publish("fault", {"error": (str(exc) or type(exc).__name__)[:ERROR_CHARS]})
            return
        self._view_failed = False

    async def _sample_forever(self) -> None:
        while True:
            # A pause after each reading: a slow view() delays the next one, never bunches them.
            await asyncio.sleep(PUSH_INTERVAL)
            self._sample()

    # --- routes --------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(body=self._assets["site.html"], content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "site.html":
            raise Refused(404, f"no asset named {name[:80]!r}")
        kind = ASSETS[name]
        return web.Response(body=self._assets[name], content_type=kind,
                            charset="utf-8" if kind.startswith("text/") else None)

    async def _site(self, request: web.Request) -> web.Response:
        return web.json_response(self.source.view().to_json(), dumps=json_text)

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        # The view is taken here, on the controller's loop; writing it out (about 80 ms for
        # a thousand miners) is done in a thread, one scrape at a time, so a tick is never
        # held up behind it.
        registry = site_registry(_Still(self.source.view()))
        async with self._scraping:
            body = await asyncio.to_thread(encoder, registry)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= MAX_STREAMS:
            raise Refused(503, f"too many open site pages (at most {MAX_STREAMS}); close one and reload")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self._streams += 1
        feed = self._feed
        try:
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            seen = feed.generation
            await response.write(feed.message)  # the page fills at once
            while True:
                seen = await feed.after(seen)
                if feed.closed:
                    await response.write(BYE)
                    break
                await response.write(feed.message)
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self._streams -= 1
        return response
