"""The ``hashcore`` command: a thin layer over the public API. The only module that prints."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from hashcore import sweep as sweep_commands
from hashcore.api import ApiServer
from hashcore.api.control import MAX_POOLS
from hashcore.argtypes import hex32, port, positive_float, positive_int, watts_per_core
from hashcore.backends import base as registry
from hashcore.backends.asic import flags as asic_flags
from hashcore.bench import bench
from hashcore.config import MAX_THREADS, Config, load_config
from hashcore.engine import Miner, MinerStats
from hashcore.errors import ConfigError, HashcoreError
from hashcore.listen import listen_failure, parse_listen
from hashcore.liveview import bench_chart, bench_table, format_energy, format_rate, miner_line, miner_table
from hashcore.metering import MeterSettings
from hashcore.metrics import MetricsServer
from hashcore.report import commands as report_commands
from hashcore.sharerate import DEFAULT_MAX_SHARE_RATE
from hashcore.stratum.client import parse_pool_url
from hashcore.stratum.pool import MAINNET_NBITS, EmbeddedPool, VardiffPolicy
from hashcore.telemetry import telemetry_report
from hashcore.throttle import commands as throttle_commands

if TYPE_CHECKING:
    from hashcore.web import WebServer

log = logging.getLogger("hashcore.cli")

#: How long `hashcore mine --embedded` runs unless told otherwise (--forever runs on).
EMBEDDED_DEFAULT_SECONDS = 60.0
#: Where the cgminer API listens while mining unless told otherwise (cgminer's port).
DEFAULT_API_LISTEN = "127.0.0.1:4028"
#: The worker password when --password is not given: an environment variable keeps it out of `ps`.
PASSWORD_ENV = "HASHCORE_PASSWORD"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one clear line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _threads(text: str) -> int:
    """Worker threads: at least 1, at most MAX_THREADS (each one opens a scanner)."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text!r} is over {MAX_THREADS} (4 per core on this machine)")
    return value


def _pool_url(text: str) -> str:
    """A pool URL checked as the flag is read: a malformed one is a usage mistake (exit 2).

    Only ArgumentTypeError carries our message: for any other error argparse would
    print the whole value, password included."""
    try:
        parse_pool_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _names(text: str) -> list[str]:
    """A comma-separated list of names (a repeated flag adds to it)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend options")
    group.add_argument("--c-path", choices=["auto", "avx512", "avx2", "shani", "scalar"], default=None,
                       help="C backend code path (default: the fastest this CPU has)")
    group.add_argument("--numba-path", choices=["auto", "shani", "lanes"], default=None,
                       help="Numba code path (default: shani where the CPU has SHA-NI, else lanes)")
    group.add_argument("--opencl-device", metavar="PLATFORM:DEVICE", default=None,
                       help="OpenCL device(s): auto (every GPU, else the CPU through PoCL), all, or "
                            "PLATFORM:DEVICE indices, comma-separated (hashcore devices lists them)")
    group.add_argument("--opencl-path", choices=["auto", "x86sha", "portable"], default=None,
                       help="OpenCL kernels (default: x86sha on PoCL with SHA-NI, else portable)")
    group.add_argument("--asic-port", default=None, help="ASIC serial port, or 'emulator'")
    group.add_argument("--asic-chip", choices=["bm1366", "bm1397"], default=None, help="ASIC chip model")
    group.add_argument("--asic-emulator-faults", type=asic_flags.emulator_faults, default=None, metavar="FAULTS",
                       help="with --asic-port emulator: damage its nonce replies, e.g. garbage=0.5,drop=0.2 "
                            "(garbage, drop, crc: probabilities 0..1; late: seconds 0..1; "
                            "registers=1: register replies too)")


def _add_energy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("energy")
    group.add_argument("--powercap-root", metavar="DIR", default=None,
                       help="RAPL powercap tree (default: $HASHCORE_POWERCAP_ROOT, else /sys/class/powercap)")
    group.add_argument("--tdp-watts-per-core", type=watts_per_core, default=None, metavar="W",
                       help="watts per busy core for the estimate when no counter can be read")


def _meter_settings(args: argparse.Namespace, config: Config | None = None) -> MeterSettings:
    telemetry = config.telemetry if config else {}
    return MeterSettings(
        args.powercap_root or telemetry.get("powercap_root"),
        args.tdp_watts_per_core or telemetry.get("tdp_watts_per_core"),
    )


def _backend_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    if args.c_path:
        options.setdefault("c", {})["path"] = args.c_path
    if args.numba_path:
        options.setdefault("numba", {})["path"] = args.numba_path
    if args.opencl_device:
        options.setdefault("opencl", {})["device"] = args.opencl_device
    if args.opencl_path:
        options.setdefault("opencl", {})["path"] = args.opencl_path
    if args.asic_port:
        options.setdefault("asic", {})["port"] = args.asic_port
    if args.asic_chip:
        options.setdefault("asic", {})["chip"] = args.asic_chip
    if args.asic_emulator_faults:
        options.setdefault("asic", {})["emulator_faults"] = args.asic_emulator_faults
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hashcore", description="A Stratum V1 SHA-256d miner core with interchangeable backends.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    mine = commands.add_parser("mine", help="mine against pools (or the embedded pool)")
    mine.add_argument("--pool", action="append", type=_pool_url, default=[], metavar="URL",
                      help="stratum+tcp:// or stratum+ssl:// pool; repeat for failover, in priority order")
    mine.add_argument("--config", metavar="FILE", default=None,
                      help="TOML config (see hashcore.example.toml); flags override it")
    mine.add_argument("--user", default=None, help="worker name")
    mine.add_argument("--password", default=None,
                      help=f"worker password (default: ${PASSWORD_ENV}, else the config's, else x); "
                           f"other users can read flags in 'ps': prefer ${PASSWORD_ENV} or the config file")
    mine.add_argument("--backend", default=None, help="backend name(s), comma-separated (default: fastest)")
    mine.add_argument("--threads", type=_threads, default=None,
                      help=f"worker threads per backend (at most {MAX_THREADS} here)")
    mine.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                      help=f"stop after this long (--embedded: {EMBEDDED_DEFAULT_SECONDS:.0f} s unless --forever)")
    mine.add_argument("--forever", action="store_true", help="with --embedded: run until interrupted")
    mine.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    mine.add_argument("--embedded", action="store_true", help="start the embedded pool and mine against it")
    mine.add_argument("--difficulty", type=positive_float, default=0.001,
                      help="--embedded: the starting share difficulty (vardiff adjusts it)")
    mine.add_argument("--tls-insecure", action="store_true", help="do not verify pool TLS certificates")
    mine.add_argument("--tls-ca", default=None, metavar="FILE", help="CA bundle for pool certificates")
    mine.add_argument("--suggest-difficulty", type=positive_float, default=None)
    mine.add_argument("--max-share-rate", type=positive_float, default=None, metavar="PER_SECOND",
                      help=f"shares a second sent to a pool at most (default {DEFAULT_MAX_SHARE_RATE:g}); a pool "
                           "difficulty that would mean more is met with a higher local difficulty")
    mine.add_argument("--no-version-rolling", action="store_true", help="do not ask for BIP 310 version rolling")
    _add_backend_options(mine)
    _add_energy_options(mine)
    farm = mine.add_argument_group("farm tools")
    farm.add_argument("--api-listen", default=None, metavar="HOST:PORT",
                      help=f"cgminer API (default {DEFAULT_API_LISTEN}; 'off' disables it)")
    farm.add_argument("--api-allow", default=None, metavar="LIST",
                      help="cgminer --api-allow syntax, e.g. W:127.0.0.1,R:10.0.0.0/8 (default: read-only loopback)")
    farm.add_argument("--metrics-listen", default=None, metavar="HOST:PORT",
                      help="Prometheus metrics over HTTP (off unless given)")
    farm.add_argument("--metrics-allow-host", action="append", type=_names, default=[], metavar="NAME",
                      help="another name the metrics answer to in the Host header (besides their listen "
                           "address and localhost), e.g. the one Prometheus scrapes; repeat or comma-separate")
    farm.add_argument("--web-listen", default=None, metavar="HOST:PORT",
                      help="the web dashboard, e.g. 127.0.0.1:8080 (off unless given)")
    farm.add_argument("--web-allow-host", action="append", type=_names, default=[], metavar="NAME",
                      help="another name the dashboard answers to in the Host header (besides its listen "
                           "address and localhost); repeat or comma-separate")
    farm.add_argument("--web-allow-control", action="store_true",
                      help="let the dashboard pause, resume, set the power target and switch pools, "
                           "with the token printed at start")
    farm.add_argument("--web-bench", default=None, metavar="FILE",
                      help="a 'hashcore bench --json' file for the dashboard's bench table (re-read on each view)")
    throttle_commands.add_budget_arguments(mine)

    simulate = commands.add_parser("simulate", help="replay a power-budget trace on a virtual clock")
    throttle_commands.add_simulate_arguments(simulate)
    _add_energy_options(simulate)

    trace = commands.add_parser("trace", help="generate a budget trace: pvlib solar, windpowerlib wind, a grid day")
    throttle_commands.add_trace_arguments(trace)

    pool = commands.add_parser("pool", help="run the embedded Stratum pool")
    pool.add_argument("--host", default="127.0.0.1")
    pool.add_argument("--port", type=port, default=3333)
    pool.add_argument("--difficulty", type=positive_float, default=1.0, help="starting share difficulty")
    pool.add_argument("--job-interval", type=positive_float, default=30.0, metavar="SECONDS")
    pool.add_argument("--nbits", type=hex32, default=MAINNET_NBITS, help="block target (hex; 207fffff = regtest)")
    pool.add_argument("--share-seconds", type=positive_float, default=5.0, help="vardiff: wanted seconds per share")
    pool.add_argument("--no-vardiff", action="store_true", help="keep the difficulty fixed")
    pool.add_argument("--tls-cert", default=None, metavar="FILE", help="serve stratum+ssl with this certificate")
    pool.add_argument("--tls-key", default=None, metavar="FILE")

    commands.add_parser("devices", help="list backends, available or not, and why").add_argument(
        "--json", action="store_true"
    )

    bench_cmd = commands.add_parser("bench", help="benchmark a backend on a fixed work unit")
    which = bench_cmd.add_mutually_exclusive_group()
    which.add_argument("--backend", default="auto")
    which.add_argument("--all", action="store_true", help="every available backend in turn, one table")
    bench_cmd.add_argument("--threads", type=_threads, default=None,
                           help="worker threads (default: one thread, then one per core, side by side)")
    bench_cmd.add_argument("--seconds", type=positive_float, default=5.0)
    bench_cmd.add_argument("--json", action="store_true")
    bench_cmd.add_argument("--chart", metavar="PNG", default=None,
                           help="with --all: write a bar chart of hashrate and J/TH (default bench.png)")
    _add_backend_options(bench_cmd)
    _add_energy_options(bench_cmd)
    sweep_commands.add_sweep_arguments(bench_cmd)

    report = commands.add_parser("report", help="render a run folder (simulate --run, mine --account-dir) as HTML")
    report_commands.add_report_arguments(report)

    telemetry = commands.add_parser("telemetry", help="energy sources found here, and live power for a few seconds")
    telemetry.add_argument("--seconds", type=positive_float, default=3.0)
    telemetry.add_argument("--json", action="store_true")
    _add_energy_options(telemetry)
    return parser


# --- mine --------------------------------------------------------------------------------


async def _mine(args: argparse.Namespace, console: Console) -> int:
    config = load_config(args.config) if args.config else Config()
    settings = config.miner
    backend_text = args.backend or ",".join(settings.get("backends", ["auto"]))
    backends = [name.strip() for name in backend_text.split(",") if name.strip()]
    if not backends:
        raise ConfigError("--backend needs at least one name")
    urls = list(args.pool) or config.pool_urls()  # flags replace the file's pool list
    if len(urls) + int(args.embedded) > MAX_POOLS:
        raise ConfigError(f"{len(urls) + int(args.embedded)} pools given; at most {MAX_POOLS}")
    duration = args.duration or settings.get("duration")
    if not args.embedded and not urls:
        raise ConfigError("give --pool URL (repeat for failover), or --embedded to mine against the embedded pool")
    user = args.user or settings.get("user") or ("hashcore" if args.embedded else None)
    if not user:
        raise ConfigError("--user is needed to mine against a pool (or miner.user in the config)")
    password = args.password or os.environ.get(PASSWORD_ENV) or settings.get("password", "x")
    backend_options = {name: dict(options) for name, options in config.backends.items()}
    for name, options in _backend_options(args).items():
        backend_options.setdefault(name, {}).update(options)
    throttle: throttle_commands.LiveThrottle | None = None
    # Whatever has started is stopped on the way out, in reverse order, whatever fails.
    async with contextlib.AsyncExitStack() as running:
        if args.embedded:
            pool = EmbeddedPool(
                difficulty=args.difficulty,
                job_interval=30.0,
                vardiff=VardiffPolicy(target_seconds=2.0, retarget_seconds=6.0),
            )
            await pool.start()
            running.push_async_callback(pool.stop)
            urls.insert(0, pool.url)
            if duration is None and not args.forever:
                duration = EMBEDDED_DEFAULT_SECONDS
        miner = Miner(
            urls,
            user,
            password,
            backends=backends,
            threads=args.threads or settings.get("threads"),
            backend_options=backend_options,
            tls_verify=not args.tls_insecure and config.tls.get("verify", True),
            tls_ca=args.tls_ca or config.tls.get("ca"),
            suggest_difficulty=args.suggest_difficulty or settings.get("suggest_difficulty"),
            max_share_rate=args.max_share_rate or settings.get("max_share_rate", DEFAULT_MAX_SHARE_RATE),
            version_rolling=not args.no_version_rolling and settings.get("version_rolling", True),
            fail_fast=True,
            meter_settings=_meter_settings(args, config),
        )
        running.push_async_callback(miner.stop)  # safe before start and after a failed one
        stop = asyncio.Event()
        # The listening services start before the miner opens a backend or dials a pool,
        # so a taken port ends the run at once, with nothing else to unwind.
        services = await _start_farm_services(args, config, miner, stop, console, running)
        # Without --model this benchmarks each backend (about a second each).
        plan = await asyncio.to_thread(throttle_commands.plan_budget, args, backends,
                                       args.threads or settings.get("threads"), config.throttle)
        await miner.start()
        if plan is not None:
            throttle = throttle_commands.LiveThrottle(miner, plan)
            throttle.start()
            running.push_async_callback(throttle.stop)  # before miner.stop, as the throttle needs
            for service in services:
                service.throttle = throttle  # they show and steer it from now on
        await _watch(miner, duration, console, stop, throttle)
    stats = miner.stats()  # after the stop: shares still unanswered then are counted
    if throttle is not None:
        written = throttle_commands.write_live_run(args, throttle)
        if written:
            console.print(f"run and carbon account written to {written} (hashcore report {written})",
                          highlight=False)
    _print_mine_summary(stats, args.json, console, throttle)
    return 0


def _setting(args: argparse.Namespace, config: Config, flag: str, section: str, key: str) -> tuple[Any, str]:
    """A farm setting from its flag, else the config file, with where it came from (for errors)."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
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


async def _start_farm_services(
    args: argparse.Namespace, config: Config, miner: Miner, stop: asyncio.Event, console: Console,
    running: contextlib.AsyncExitStack,
) -> list[Any]:
    """The cgminer API (on unless 'off'), Prometheus metrics and the dashboard (off unless asked).

    Each one's stop goes on ``running`` as soon as it listens, so a later failure stops
    what started. A port that cannot be used is a ConfigError naming the flag (or the
    config key) and the address. Returns the services, for the throttle to be handed to."""
    services: list[Any] = []
    running.push_async_callback(_stop_services, services)  # those started by then
    api_listen, api_where = _setting(args, config, "--api-listen", "api", "listen")
    if api_listen != "off":
        host, port = parse_listen(api_listen or DEFAULT_API_LISTEN, api_where)
        api = ApiServer(miner, host, port, allow=args.api_allow or config.api.get("allow"), on_quit=stop.set)
        try:
            await api.start()
            services.append(api)
            console.print(f"cgminer API on {host}:{api.port}", highlight=False)
        except ConfigError as exc:
            if api_listen:
                raise _cannot_listen(api_where, api_listen, exc) from exc
            # The default port may be taken by another miner on this host: mine without it.
            log.warning("cgminer API not started: %s", exc)
    metrics_listen, metrics_where = _setting(args, config, "--metrics-listen", "metrics", "listen")
    if metrics_listen and metrics_listen != "off":
        host, port = parse_listen(metrics_listen, metrics_where)
        metrics = MetricsServer(miner, host, port,
                                allowed_hosts=[n for names in args.metrics_allow_host for n in names])
        try:
            await metrics.start()
        except ConfigError as exc:
            raise _cannot_listen(metrics_where, metrics_listen, exc) from exc
        services.append(metrics)
        console.print(f"Prometheus metrics on http://{host}:{metrics.port}/metrics", highlight=False)
    elif args.metrics_allow_host:
        raise ConfigError("--metrics-allow-host needs --metrics-listen HOST:PORT")
    web_listen, web_where = _setting(args, config, "--web-listen", "web", "listen")
    if web_listen and web_listen != "off":
        services.append(await _start_dashboard(args, config, miner, web_listen, web_where, console))
    elif args.web_allow_control or args.web_bench or args.web_allow_host:
        raise ConfigError("--web-allow-control, --web-allow-host and --web-bench need --web-listen HOST:PORT")
    return services


async def _start_dashboard(
    args: argparse.Namespace, config: Config, miner: Miner, listen: str, where: str, console: Console,
) -> WebServer:
    from hashcore.web import WebServer  # aiohttp loads only when the dashboard is asked for

    host, port = parse_listen(listen, where)
    allow_control = args.web_allow_control or bool(config.web.get("allow_control", False))
    # Flags add to the config file's names: each is one more way operators reach the page.
    allowed_hosts = [*config.web.get("allow_hosts", []), *(n for names in args.web_allow_host for n in names)]
    web = WebServer(miner, host, port, allow_control=allow_control, bench_reports=args.web_bench,
                    allowed_hosts=allowed_hosts)
    try:
        await web.start()
    except ConfigError as exc:
        raise _cannot_listen(where, listen, exc) from exc
    console.print(f"dashboard on {web.url}", highlight=False)
    if web.token:
        console.print(f"dashboard control token: {web.token}  (or open {web.url}#token={web.token})",
                      highlight=False)
    return web


async def _watch(miner: Miner, duration: float | None, console: Console, interrupted: asyncio.Event,
                 throttle: throttle_commands.LiveThrottle | None = None) -> MinerStats:
    """Run the miner, showing the live view, until done, interrupted or told to quit."""
    run = asyncio.create_task(miner.run(duration))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    stop_wait = asyncio.create_task(interrupted.wait())

    def view(stats: MinerStats) -> Any:
        if throttle is None:
            return miner_table(stats)
        return Group(miner_table(stats), Text(throttle_commands.format_status(throttle.status())))

    live = Live(view(miner.stats()), console=console, refresh_per_second=2, transient=False) \
        if console.is_terminal else None
    try:
        if live is not None:
            live.start()
        ticks = 0
        while not run.done() and not interrupted.is_set():
            await asyncio.wait({run, stop_wait}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            ticks += 1
            stats = miner.stats()
            if live is not None:
                live.update(view(stats))
            elif ticks % 5 == 0:
                console.print(miner_line(stats), highlight=False)
                if throttle is not None:
                    console.print(throttle_commands.format_status(throttle.status()), highlight=False)
    finally:
        if live is not None:
            live.stop()
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


def _print_mine_summary(stats: MinerStats, as_json: bool, console: Console,
                        throttle: throttle_commands.LiveThrottle | None = None) -> None:
    if as_json:
        summary = stats.to_json()
        if throttle is not None:
            summary["throttle"] = throttle.status()
        _print_json(summary)
        return
    console.print(miner_table(stats))
    console.print(
        f"mined {stats.hashes:,} hashes in {stats.seconds:.1f} s ({format_rate(stats.hashrate_hs)}); "
        f"accepted {stats.accepted}, rejected {stats.rejected}, stale {stats.stale}; "
        f"{format_energy(stats.energy)}",
        highlight=False,
    )
    if throttle is not None:
        console.print(throttle_commands.format_status(throttle.status()), highlight=False)


# --- pool, devices, bench ----------------------------------------------------------------


async def _pool(args: argparse.Namespace, console: Console) -> int:
    context = None
    if args.tls_cert:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load --tls-cert/--tls-key: {exc}") from exc
    pool = EmbeddedPool(
        args.host,
        args.port,
        difficulty=args.difficulty,
        job_interval=args.job_interval,
        nbits=args.nbits,
        vardiff=None if args.no_vardiff else VardiffPolicy(target_seconds=args.share_seconds),
        ssl_context=context,
    )
    await pool.start()
    console.print(f"embedded pool on {pool.url} (difficulty {args.difficulty:g}); Ctrl-C stops it", highlight=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 10.0)
            stats = pool.stats
            console.print(
                f"accepted {stats.accepted}  rejected {stats.rejected_total} {dict(stats.rejected)}  "
                f"blocks {stats.blocks}",
                highlight=False,
            )
    finally:
        await pool.stop()
    return 0


def _devices(args: argparse.Namespace, console: Console) -> int:
    from hashcore.backends import pathchoice

    infos = registry.probe_all()
    rates = registry.measured_rates()
    auto = pathchoice.fastest(rates) if rates else registry.fastest_available()
    if args.json:
        _print_json([{"name": i.name, "available": i.available, "detail": i.detail, **i.extra,
                      "rate": rates[i.name].to_json() if i.name in rates else None,
                      "auto_backend": i.name == auto} for i in infos])  # fmt: skip
        return 0
    for info in infos:
        mark = "[green]available[/]" if info.available else "[red]unavailable[/]"
        console.print(f"{info.name:10} {mark}  {info.detail}")
    console.print(f"CPU: {pathchoice.cpu_label()}", highlight=False)
    for name, rate in sorted(rates.items(), key=lambda item: -item[1].all_cores_hs):
        per_core = f"{format_rate(rate.per_core_hs)} per core, " if rate.per_core_hs else ""
        pick = "  <- --backend auto" if name == auto else ""
        console.print(f"  {name:8} {rate.path:9} {per_core}{format_rate(rate.all_cores_hs)} on all "
                      f"({rate.how}){pick}", highlight=False, markup=False)  # fmt: skip
    console.print(f"measured once per machine and build; cache: {pathchoice.cache_file()}", highlight=False)
    return 0


def _bench(args: argparse.Namespace, console: Console) -> int:
    from hashcore.bench import bench_cores

    if args.sweep:
        if args.all:
            raise ConfigError("--sweep measures one backend: give --backend, not --all")
        return _show(sweep_commands.run_sweep(args), args.json, console)
    if args.all:
        names = [i.name for i in registry.probe_all() if i.available and _benchable(i.name, args)]
    else:
        names = registry.resolve_names([args.backend])
    reports, rows, lines = [], [], []
    for name in names:
        options = _backend_options(args).get(name, {})
        if args.threads is not None:
            if not args.json:
                console.print(f"benchmarking {name} with {args.threads} thread(s) for {args.seconds:g} s...",
                              highlight=False)  # fmt: skip
            report = bench(name, args.seconds, args.threads, options=options,
                           meter_settings=_meter_settings(args)).to_json()  # fmt: skip
            reports.append(report)
            rows.append(report)
            continue
        if not args.json:
            console.print(f"benchmarking {name} for {args.seconds:g} s on one thread, then {args.seconds:g} s "
                          "on one thread per core...", highlight=False)  # fmt: skip
        cores = bench_cores(name, args.seconds, options=options, meter_settings=_meter_settings(args))
        reports.append(cores.to_json())
        rows += [cores.one_thread.to_json()] + ([cores.all_cores.to_json()] if cores.all_cores else [])
        lines.append(cores.summary())
    chart = None
    if args.all:
        chart = args.chart or "bench.png"
        bench_chart(reports, chart)
    if args.json:
        _print_json({"backends": reports, "chart": chart} if args.all else reports[0])
        return 0
    console.print(bench_table(rows))
    for line in lines:
        console.print(line, highlight=False, markup=False)
    for report in reports:
        if not report["energy_exact"]:
            console.print(f"{report['backend']}: {report['energy_note']}", highlight=False)
    if chart:
        console.print(f"chart written to {chart}", highlight=False)
    return 0


def _benchable(name: str, args: argparse.Namespace) -> bool:
    """--all skips the ASIC backend unless a port is given: it needs a device (or --asic-port emulator)."""
    return name != "asic" or bool(args.asic_port)


def _telemetry(args: argparse.Namespace, console: Console) -> int:
    report = telemetry_report(args.seconds, powercap_root=args.powercap_root,
                              tdp_watts_per_core=args.tdp_watts_per_core)
    if args.json:
        _print_json(report.as_dict())
        return 0
    for source in report.sources:
        found = "[green]found[/]" if source.found else "[red]not found[/]"
        kind = "exact" if source.exact else "estimate"
        console.print(f"{source.name:9} {found:20} {kind:8} {source.reason}")
        for part in source.parts:
            console.print(f"{'':11}- {part}", highlight=False)
    for series in report.live:
        label = series.source if series.exact else f"{series.source} (estimate, not measured)"
        readings = "  ".join(f"{p.watts:.1f} W" for p in series.points)
        console.print(f"{series.label}: {label}: {readings}", highlight=False)
        console.print(f"  {series.note}", highlight=False)
    return 0


# --- simulate, trace ---------------------------------------------------------------------


def _strict(value: Any) -> Any:
    """``value`` with every number that is not finite (inf, nan) as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def _print_json(data: Any) -> None:
    """The one way the CLI prints JSON: one line of strict JSON (non-finite numbers as null)."""
    print(json.dumps(_strict(data), allow_nan=False))


def _show(report: Any, as_json: bool, console: Console) -> int:
    """A report with ``to_json()`` and ``summary_lines()``: one JSON line, or its lines."""
    if as_json:
        _print_json(report.to_json())
        return 0
    for line in report.summary_lines():
        console.print(line, highlight=False)
    return 0


def _simulate(args: argparse.Namespace, console: Console) -> int:
    if args.model is None and args.device_model is None:
        console.print(f"modelling the fleet: hashcore bench, {args.bench_seconds:g} s per backend...", highlight=False)
    return _show(throttle_commands.run_simulate(args), args.json, console)


def _report(args: argparse.Namespace, console: Console) -> int:
    return _show(report_commands.run_report(args), args.json, console)


def _trace(args: argparse.Namespace, console: Console) -> int:
    return _show(throttle_commands.run_trace(args), args.json, console)


def _check_flag_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that mean something only beside others: alone they would be ignored in silence."""
    if getattr(args, "asic_emulator_faults", None) is None:
        return
    backends = _names(args.backend) if isinstance(getattr(args, "backend", None), str) else []
    if args.asic_port != "emulator" or not ("asic" in backends or getattr(args, "all", False)):
        parser.error("--asic-emulator-faults needs --backend asic --asic-port emulator")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_flag_pairs(parser, args)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    # With --json, stdout carries only the JSON line: the live view goes to stderr.
    console = Console(stderr=bool(getattr(args, "json", False)))
    try:
        if args.command == "mine":
            return asyncio.run(_mine(args, console))
        if args.command == "pool":
            return asyncio.run(_pool(args, console))
        if args.command == "devices":
            return _devices(args, console)
        if args.command == "bench":
            return _bench(args, console)
        if args.command == "telemetry":
            return _telemetry(args, console)
        if args.command == "simulate":
            return _simulate(args, console)
        if args.command == "trace":
            return _trace(args, console)
        if args.command == "report":
            return _report(args, console)
    except HashcoreError as exc:
        print(f"hashcore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
