"""``hashcore mine``: a mining run put together from flags and a config file.

The embedded pool (with ``embedded``), the miner, the live throttle under a power budget,
and the watch loop that runs it all until the duration ends, the operator interrupts or
a service says quit. The listening services (the cgminer API, metrics, the dashboard) are
presenters, a floor above: the caller starts them through a :class:`StartServices` hook,
after the miner exists and before it dials a pool. What the operator sees is the
caller's too: lines go to ``announce`` and each second's figures to a :class:`Watcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hashcore.app.budget import BudgetOptions, plan_budget, write_live_run
from hashcore.app.live import LiveThrottle
from hashcore.app.plan import listed_backends
from hashcore.config import Config, load_config
from hashcore.engine import Miner, MinerStats
from hashcore.errors import ConfigError
from hashcore.metering import MeterSettings
from hashcore.sharerate import DEFAULT_MAX_SHARE_RATE
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import VardiffPolicy

#: How long `hashcore mine --embedded` runs unless told otherwise (--forever runs on).
EMBEDDED_DEFAULT_SECONDS = 60.0
#: The worker password when --password is not given: an environment variable keeps it out of `ps`.
PASSWORD_ENV = "HASHCORE_PASSWORD"

#: Starts the listening services for ``miner`` (with the config file; ``stop`` set ends
#: the run; each service's stop pushed on the exit stack as it starts) and returns them:
#: each gets the ``throttle`` attribute once the live throttle runs.
StartServices = Callable[[Miner, Config, asyncio.Event, contextlib.AsyncExitStack], Awaitable[list[Any]]]


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
        max_pools: the most pools, the embedded one included (what the control surface lists).
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
    max_pools: int
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


async def mine(options: MineOptions, watcher: Watcher, start_services: StartServices) -> MineOutcome:
    """Mine as ``options`` say until done, interrupted or told to quit."""
    config = load_config(options.config) if options.config else Config()
    settings = config.miner
    backend_text = options.backend or ",".join(settings.get("backends", ["auto"]))
    backends = listed_backends(backend_text)
    urls = list(options.pool) or config.pool_urls()  # flags replace the file's pool list
    if len(urls) + int(options.embedded) > options.max_pools:
        raise ConfigError(f"{len(urls) + int(options.embedded)} pools given; at most {options.max_pools}")
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
        services = await start_services(miner, config, stop, running)
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
