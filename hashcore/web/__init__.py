"""The web dashboard: see and steer a running miner from a browser.

``server = WebServer(miner, "127.0.0.1", 8080, allow_control=True); await server.start()``
serves a page at ``server.url`` with the live figures (hashrate in total and per backend,
shares, each pool, power, energy, J/TH and where the energy figure comes from, duty cycle,
throttle), a chart of hashrate, power and budget over the last hour or day, and the latest
``hashcore bench`` table. With ``allow_control`` it also takes pause, resume, a power target
and a pool switch, each with ``server.token``.

Why aiohttp rather than Starlette with uvicorn: the dashboard must live inside the
miner's own event loop, next to the Stratum client, and read ``miner.stats()`` there.
aiohttp's ``AppRunner``/``TCPSite`` are made for exactly that (start and stop a server in
a running loop, no signal handlers of its own, no second loop or thread), where uvicorn
wants to own the process (its ``Server.serve`` installs SIGINT/SIGTERM handlers the CLI
already owns) and Starlette would add a second package for routing aiohttp already has.
aiohttp also gives the tests a real HTTP and event-stream client over sockets.

Why server-sent events rather than a WebSocket: the page only listens (controls are
ordinary POSTs carrying the token), and the browser's ``EventSource`` reconnects by
itself when the miner comes back.

The page's assets live in ``hashcore/web/static/`` and are served by this package only:
the chart is a small canvas drawing in ``app.js``, no library, no CDN, nothing fetched
from outside (the Content-Security-Policy header forbids it too).
"""

from hashcore.control import ThrottleControl as Throttle
from hashcore.listen import parse_listen
from hashcore.web.history import History
from hashcore.web.server import WebServer

__all__ = ["History", "Throttle", "WebServer", "parse_listen"]
