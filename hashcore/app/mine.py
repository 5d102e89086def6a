"""``hashcore mine``: a mining run put together from flags and a config file.

The embedded pool (with ``embedded``), the miner, the listening services (the cgminer
API, Prometheus metrics, the dashboard), the live throttle under a power budget, and the
watch loop that runs it all until the duration ends, the operator interrupts or the API
says quit. What the operator sees is the caller's: lines go to ``announce`` and each
second's figures to a :class:`Watcher` (the command line's live view).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hashcore.api import ApiServer
from hashcore.api.control import MAX_POOLS
from hashcore.app.budget import BudgetOptions, plan_budget, write_live_run
from hashcore.app.live import LiveThrottle
from hashcore.config import Config, load_config
from hashcore.engine import Miner, MinerStats
from hashcore.errors import ConfigError
from hashcore.listen import listen_failure, parse_listen
from hashcore.metering import MeterSettings
from hashcore.metrics import MetricsServer
from hashcore.sharerate import DEFAULT_MAX_SHARE_RATE
from hashcore.stratum.pool import EmbeddedPool, VardiffPolicy

# The name operators' log filters already know for the miner's run.
log = logging.getLogger("hashcore.cli")

#: How long `hashcore mine --embedded` runs unless told otherwise (--forever runs on).
EMBEDDED_DEFAULT_SECONDS = 60.0
#: Where the cgminer API listens while mining unless told otherwise (cgminer's port).
DEFAULT_API_LISTEN = "127.0.0.1:4028"
#: The worker password when --password is not given: an environment variable keeps it out of `ps`.
PASSWORD_ENV = "HASHCORE_PASSWORD"

Announce = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class MineOptions:
    """What ``hashcore mine`` was asked for (None: not given; the config file may say).

    Attributes:
        pool: pool URLs in priority order (they replace the config's list).
        config: a TOML config file.
        backend: backend names, comma-separated.
        backend_options: per backend, the options its flags set (over the config's).
        embedded / difficulty / forever: mine against the embedded pool at this starting
            difficulty; run until interrupted instead of the default minute.
        api_* / metrics_* / web_*: the listening services (``off`` turns one off); the
            allowed host names as given, one list per flag.
        budget: the power budget to follow (``budget.power_budget`` None: none).
    """

    pool: list[str] = field(default_factory=list)
    config: str | None = None
    user: str | None = None
    password: str | None = None
    backend: str | None = None
    threads: int | None = None
    duration: float | None = None
    forever: bool = False
    embedded: bool = False
    difficulty: float = 0.001
    tls_insecure: bool = False
    tls_ca: str | None = None
    suggest_difficulty: float | None = None
    max_share_rate: float | None = None
    no_version_rolling: bool = False
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    powercap_root: str | None = None
    tdp_watts_per_core: float | None = None
    api_listen: str | None = None
    api_allow: str | None = None
    metrics_listen: str | None = None
    metrics_allow_host: list[list[str]] = field(default_factory=list)
    web_listen: str | None = None
    web_allow_host: list[list[str]] = field(default_factory=list)
    web_allow_control: bool = False
    web_bench: str | None = None
    budget: BudgetOptions = field(default_factory=BudgetOptions)


class Watcher(Protocol):
    """What shows a running miner: its figures once at the start, then every second."""

    def start(self, stats: MinerStats, throttle: LiveThrottle | None) -> None: ...

    def tick(self, stats: MinerStats, throttle: LiveThrottle | None) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MineOutcome:
    """How a run ended: the miner's final figures, its throttle, the run folder written."""

    stats: MinerStats
    throttle: LiveThrottle | None
    run_dir: str | None


def meter_settings(powercap_root: str | None, tdp_watts_per_core: float | None,
                   config: Config | None = None) -> MeterSettings:
    """The meters' settings: the flags, else the config file's ``[telemetry]``."""
    telemetry = config.telemetry if config else {}
    return MeterSettings(powercap_root or telemetry.get("powercap_root"),
                         tdp_watts_per_core or telemetry.get("tdp_watts_per_core"))


async def mine(options: MineOptions, announce: Announce, watcher: Watcher) -> MineOutcome:
    """Mine as ``options`` say until done, interrupted or told to quit."""
    config = load_config(options.config) if options.config else Config()
    settings = config.miner
    backend_text = options.backend or ",".join(settings.get("backends", ["auto"]))
    backends = [name.strip() for name in backend_text.split(",") if name.strip()]
    if not backends:
        raise ConfigError("--backend needs at least one name")
    urls = list(options.pool) or config.pool_urls()  # flags replace the file's pool list
    if len(urls) + int(options.embedded) > MAX_POOLS:
        raise ConfigError(f"{len(urls) + int(options.embedded)} pools given; at most {MAX_POOLS}")
    duration = options.duration or settings.get("duration")
    if not options.embedded and not urls:
        raise ConfigError("give --pool URL (repeat for failover), or --embedded to mine against the embedded pool")
    user = options.user or settings.get("user") or ("hashcore" if options.embedded else None)
    if not user:
        raise ConfigError("--user is needed to mine against a pool (or miner.user in the config)")
    password = options.password or os.environ.get(PASSWORD_ENV) or settings.get("password", "x")
    backend_options = {name: dict(values) for name, values in config.backends.items()}
    for name, values in options.backend_options.items():
        backend_options.setdefault(name, {}).update(values)
    threads = options.threads or settings.get("threads")
    throttle: LiveThrottle | None = None
    # Whatever has started is stopped on the way out, in reverse order, whatever fails.
    async with contextlib.AsyncExitStack() as running:
        if options.embedded:
            pool = EmbeddedPool(
                difficulty=options.difficulty,
                job_interval=30.0,
                vardiff=VardiffPolicy(target_seconds=2.0, retarget_seconds=6.0),
            )
            await pool.start()
            running.push_async_callback(pool.stop)
            urls.insert(0, pool.url)
            if duration is None and not options.forever:
                duration = EMBEDDED_DEFAULT_SECONDS
        miner = Miner(
            urls,
            user,
            password,
            backends=backends,
            threads=threads,
            backend_options=backend_options,
            tls_verify=not options.tls_insecure and config.tls.get("verify", True),
            tls_ca=options.tls_ca or config.tls.get("ca"),
            suggest_difficulty=options.suggest_difficulty or settings.get("suggest_difficulty"),
            max_share_rate=options.max_share_rate or settings.get("max_share_rate", DEFAULT_MAX_SHARE_RATE),
            version_rolling=not options.no_version_rolling and settings.get("version_rolling", True),
            fail_fast=True,
            meter_settings=meter_settings(options.powercap_root, options.tdp_watts_per_core, config),
        )
        running.push_async_callback(miner.stop)  # safe before start and after a failed one
        stop = asyncio.Event()
        # The listening services start before the miner opens a backend or dials a pool,
        # so a taken port ends the run at once, with nothing else to unwind.
        services = await start_farm_services(options, config, miner, stop, announce, running)
        # Without a model this benchmarks each backend (about a second each).
        plan = await asyncio.to_thread(plan_budget, options.budget, backends, threads, config.throttle)
        await miner.start()
        if plan is not None:
            throttle = LiveThrottle(miner, plan)
            throttle.start()
            running.push_async_callback(throttle.stop)  # before miner.stop, as the throttle needs
            for service in services:
                service.throttle = throttle  # they show and steer it from now on
        await watch(miner, duration, stop, watcher, throttle)
    stats = miner.stats()  # after the stop: shares still unanswered then are counted
    written = write_live_run(options.budget, throttle) if throttle is not None else None
    return MineOutcome(stats, throttle, written)


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
    options: MineOptions, config: Config, miner: Miner, stop: asyncio.Event, announce: Announce,
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
    options: MineOptions, config: Config, miner: Miner, listen: str, where: str, announce: Announce,
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


async def watch(miner: Miner, duration: float | None, interrupted: asyncio.Event, watcher: Watcher,
                throttle: LiveThrottle | None = None) -> MinerStats:
    """Run the miner, shown by ``watcher`` each second, until done, interrupted (SIGINT,
    SIGTERM) or told to quit."""
    run = asyncio.create_task(miner.run(duration))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    stop_wait = asyncio.create_task(interrupted.wait())
    try:
        watcher.start(miner.stats(), throttle)
        while not run.done() and not interrupted.is_set():
            await asyncio.wait({run, stop_wait}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            watcher.tick(miner.stats(), throttle)
    finally:
        watcher.stop()
        stop_wait.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    if run.done():
        run.result()  # raises PoolError when no pool could be reached
    else:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    return miner.stats()
