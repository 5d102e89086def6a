"""The listening services of ``hashcore mine`` (the cgminer API, Prometheus metrics, the
dashboard), started for the mining run (:func:`hashcore.app.mine.mine` calls
:func:`services_starter`'s hook once the miner exists, before it dials a pool).

They are presenters, as this package is: the run below knows only that it starts some
services and hands them its throttle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hashcore.api import ApiServer
from hashcore.app.mine import StartServices
from hashcore.cli.common import options_from
from hashcore.config import Config
from hashcore.engine import Miner
from hashcore.errors import ConfigError
from hashcore.listen import listen_failure, parse_listen
from hashcore.metrics import MetricsServer

# The name operators' log filters already know for the miner's run.
log = logging.getLogger("hashcore.cli")

#: Where the cgminer API listens while mining unless told otherwise (cgminer's port).
DEFAULT_API_LISTEN = "127.0.0.1:4028"

Announce = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class FarmOptions:
    """The services' flags (None: not given; the config file may say; ``off`` turns one
    off); the allowed host names as given, one list per flag."""

    api_listen: str | None = None
    api_allow: str | None = None
    metrics_listen: str | None = None
    metrics_allow_host: list[list[str]] = field(default_factory=list)
    web_listen: str | None = None
    web_allow_host: list[list[str]] = field(default_factory=list)
    web_allow_control: bool = False
    web_bench: str | None = None


def services_starter(args: argparse.Namespace, announce: Announce) -> StartServices:
    """The hook that starts the services ``args`` ask for, telling ``announce`` where they listen."""
    options = options_from(args, FarmOptions)

    async def start(miner: Miner, config: Config, stop: asyncio.Event,
                    running: contextlib.AsyncExitStack) -> list[Any]:
        return await start_farm_services(options, config, miner, stop, announce, running)

    return start


def _setting(value: Any, config: Config, flag: str, section: str, key: str) -> tuple[Any, str]:
    """A farm setting from its flag, else the config file, with where it came from (for errors)."""
    if value or key not in getattr(config, section):
        return value, flag
    return getattr(config, section)[key], f"{section}.{key} in {config.source}"


def _cannot_listen(where: str, address: str, exc: ConfigError) -> ConfigError:
    """One line naming the setting, the address and the reason (the port is taken...)."""
    cause = exc.__cause__
    host = address.strip().rpartition(":")[0].strip("[]")
    reason = listen_failure(cause, host) if isinstance(cause, OSError) else str(exc)
    return ConfigError(f"{where} {address}: cannot listen there: {reason}")


async def _stop_services(services: list[Any]) -> None:
    """Stop the listening services side by side: each waits a bounded time for its slowest
    client, and one client's wait must not add to another's."""
    results = await asyncio.gather(*(service.stop() for service in services), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def start_farm_services(
    options: FarmOptions, config: Config, miner: Miner, stop: asyncio.Event, announce: Announce,
    running: contextlib.AsyncExitStack,
) -> list[Any]:
    """The cgminer API (on unless 'off'), Prometheus metrics and the dashboard (off unless asked).

    Each one's stop goes on ``running`` as soon as it listens, so a later failure stops
    what started. A port that cannot be used is a ConfigError naming the flag (or the
    config key) and the address. Returns the services, for the throttle to be handed to."""
    services: list[Any] = []
    running.push_async_callback(_stop_services, services)  # those started by then
    api_listen, api_where = _setting(options.api_listen, config, "--api-listen", "api", "listen")
    if api_listen != "off":
        host, port = parse_listen(api_listen or DEFAULT_API_LISTEN, api_where)
        api = ApiServer(miner, host, port, allow=options.api_allow or config.api.get("allow"), on_quit=stop.set)
        try:
            await api.start()
            services.append(api)
            announce(f"cgminer API on {host}:{api.port}")
        except ConfigError as exc:
            if api_listen:
                raise _cannot_listen(api_where, api_listen, exc) from exc
            # The default port may be taken by another miner on this host: mine without it.
            log.warning("cgminer API not started: %s", exc)
    metrics_listen, metrics_where = _setting(options.metrics_listen, config, "--metrics-listen", "metrics", "listen")
    if metrics_listen and metrics_listen != "off":
        host, port = parse_listen(metrics_listen, metrics_where)
        metrics = MetricsServer(miner, host, port,
                                allowed_hosts=[n for names in options.metrics_allow_host for n in names])
        try:
            await metrics.start()
        except ConfigError as exc:
            raise _cannot_listen(metrics_where, metrics_listen, exc) from exc
        services.append(metrics)
        announce(f"Prometheus metrics on http://{host}:{metrics.port}/metrics")
    elif options.metrics_allow_host:
        raise ConfigError("--metrics-allow-host needs --metrics-listen HOST:PORT")
    web_listen, web_where = _setting(options.web_listen, config, "--web-listen", "web", "listen")
    if web_listen and web_listen != "off":
        services.append(await _start_dashboard(options, config, miner, web_listen, web_where, announce))
    elif options.web_allow_control or options.web_bench or options.web_allow_host:
        raise ConfigError("--web-allow-control, --web-allow-host and --web-bench need --web-listen HOST:PORT")
    return services


async def _start_dashboard(
    options: FarmOptions, config: Config, miner: Miner, listen: str, where: str, announce: Announce,
) -> Any:
    from hashcore.web import WebServer  # aiohttp loads only when the dashboard is asked for

    host, port = parse_listen(listen, where)
    allow_control = options.web_allow_control or bool(config.web.get("allow_control", False))
    # Flags add to the config file's names: each is one more way operators reach the page.
    allowed_hosts = [*config.web.get("allow_hosts", []), *(n for names in options.web_allow_host for n in names)]
    web = WebServer(miner, host, port, allow_control=allow_control, bench_reports=options.web_bench,
                    allowed_hosts=allowed_hosts)
    try:
        await web.start()
    except ConfigError as exc:
        raise _cannot_listen(where, listen, exc) from exc
    announce(f"dashboard on {web.url}")
    if web.token:
        announce(f"dashboard control token: {web.token}  (or open {web.url}#token={web.token})")
    return web
