"""The ``hashcore`` command: a thin layer over the public API. The only module that prints."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from hashcore import sweep as sweep_commands
from hashcore.api import ApiServer
from hashcore.argtypes import hex32, port, positive_float, positive_int
from hashcore.backends import base as registry
from hashcore.bench import bench
from hashcore.config import Config, load_config
from hashcore.engine import Miner, MinerStats
from hashcore.errors import ConfigError, HashcoreError
from hashcore.listen import parse_listen
from hashcore.liveview import bench_chart, bench_table, format_energy, format_rate, miner_line, miner_table
from hashcore.metering import MeterSettings
from hashcore.metrics import MetricsServer
from hashcore.report import commands as report_commands
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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one clear line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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


def _add_energy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("energy")
    group.add_argument("--powercap-root", metavar="DIR", default=None,
                       help="RAPL powercap tree (default: $HASHCORE_POWERCAP_ROOT, else /sys/class/powercap)")
    group.add_argument("--tdp-watts-per-core", type=positive_float, default=None, metavar="W",
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
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hashcore", description="A Stratum V1 SHA-256d miner core with interchangeable backends.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    mine = commands.add_parser("mine", help="mine against pools (or the embedded pool)")
    mine.add_argument("--pool", action="append", default=[], metavar="URL",
                      help="stratum+tcp:// or stratum+ssl:// pool; repeat for failover, in priority order")
    mine.add_argument("--config", metavar="FILE", default=None,
                      help="TOML config (see hashcore.example.toml); flags override it")
    mine.add_argument("--user", default=None, help="worker name")
    mine.add_argument("--password", default=None, help="worker password (default: x)")
    mine.add_argument("--backend", default=None, help="backend name(s), comma-separated (default: fastest)")
    mine.add_argument("--threads", type=positive_int, default=None, help="worker threads per backend")
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
    farm.add_argument("--web-listen", default=None, metavar="HOST:PORT",
                      help="the web dashboard, e.g. 127.0.0.1:8080 (off unless given)")
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
    bench_cmd.add_argument("--threads", type=positive_int, default=1)
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
    pool: EmbeddedPool | None = None
    urls = list(args.pool) or config.pool_urls()  # flags replace the file's pool list
    duration = args.duration or settings.get("duration")
    if args.embedded:
        pool = EmbeddedPool(
            difficulty=args.difficulty,
            job_interval=30.0,
            vardiff=VardiffPolicy(target_seconds=2.0, retarget_seconds=6.0),
        )
        await pool.start()
        urls.insert(0, pool.url)
        if duration is None and not args.forever:
            duration = EMBEDDED_DEFAULT_SECONDS
    elif not urls:
        raise ConfigError("give --pool URL (repeat for failover), or --embedded to mine against the embedded pool")
    user = args.user or settings.get("user") or ("hashcore" if args.embedded else None)
    if not user:
        raise ConfigError("--user is needed to mine against a pool (or miner.user in the config)")
    backend_options = {name: dict(options) for name, options in config.backends.items()}
    for name, options in _backend_options(args).items():
        backend_options.setdefault(name, {}).update(options)
    # Before the miner starts: without --model this benchmarks each backend (about a second each).
    plan = await asyncio.to_thread(throttle_commands.plan_budget, args, backends,
                                   args.threads or settings.get("threads"), config.throttle)
    miner = Miner(
        urls,
        user,
        args.password or settings.get("password", "x"),
        backends=backends,
        threads=args.threads or settings.get("threads"),
        backend_options=backend_options,
        tls_verify=not args.tls_insecure and config.tls.get("verify", True),
        tls_ca=args.tls_ca or config.tls.get("ca"),
        suggest_difficulty=args.suggest_difficulty or settings.get("suggest_difficulty"),
        version_rolling=not args.no_version_rolling and settings.get("version_rolling", True),
        fail_fast=True,
        meter_settings=_meter_settings(args, config),
    )
    stop = asyncio.Event()
    services: list[Any] = []
    throttle: throttle_commands.LiveThrottle | None = None
    try:
        await miner.start()
        if plan is not None:
            throttle = throttle_commands.LiveThrottle(miner, plan)
            throttle.start()
        await _start_farm_services(args, config, miner, stop, console, throttle, services)
        stats = await _watch(miner, duration, console, stop, throttle)
    finally:
        for service in reversed(services):
            await service.stop()
        if throttle is not None:
            await throttle.stop()
        await miner.stop()
        if pool is not None:
            await pool.stop()
    if throttle is not None:
        written = throttle_commands.write_live_run(args, throttle)
        if written:
            console.print(f"run and carbon account written to {written} (hashcore report {written})",
                          highlight=False)
    _print_mine_summary(stats, args.json, console, throttle)
    return 0


async def _start_farm_services(
    args: argparse.Namespace, config: Config, miner: Miner, stop: asyncio.Event, console: Console,
    throttle: throttle_commands.LiveThrottle | None, services: list[Any],
) -> None:
    """The cgminer API (on unless 'off'), Prometheus metrics and the dashboard (off unless asked).

    Each is added to ``services`` as soon as it runs, so the caller stops what started
    even when a later one fails."""
    api_listen = args.api_listen or config.api.get("listen") or DEFAULT_API_LISTEN
    if api_listen != "off":
        host, port = parse_listen(api_listen, "--api-listen")
        api = ApiServer(miner, host, port, allow=args.api_allow or config.api.get("allow"), on_quit=stop.set,
                        throttle=throttle)
        try:
            await api.start()
            services.append(api)
            console.print(f"cgminer API on {host}:{api.port}", highlight=False)
        except ConfigError as exc:
            if args.api_listen or config.api.get("listen"):
                raise
            # The default port may be taken by another miner on this host: mine without it.
            log.warning("cgminer API not started: %s", exc)
    metrics_listen = args.metrics_listen or config.metrics.get("listen")
    if metrics_listen and metrics_listen != "off":
        host, port = parse_listen(metrics_listen, "--metrics-listen")
        metrics = MetricsServer(miner, host, port, throttle=throttle)
        await metrics.start()
        services.append(metrics)
        console.print(f"Prometheus metrics on http://{host}:{metrics.port}/metrics", highlight=False)
    web_listen = args.web_listen or config.web.get("listen")
    if web_listen and web_listen != "off":
        services.append(await _start_dashboard(args, config, miner, web_listen, console, throttle))
    elif args.web_allow_control or args.web_bench:
        raise ConfigError("--web-allow-control and --web-bench need --web-listen HOST:PORT")


async def _start_dashboard(
    args: argparse.Namespace, config: Config, miner: Miner, listen: str, console: Console,
    throttle: throttle_commands.LiveThrottle | None,
) -> WebServer:
    from hashcore.web import WebServer  # aiohttp loads only when the dashboard is asked for

    host, port = parse_listen(listen, "--web-listen")
    allow_control = args.web_allow_control or bool(config.web.get("allow_control", False))
    web = WebServer(miner, host, port, allow_control=allow_control, throttle=throttle, bench_reports=args.web_bench)
    await web.start()
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
        print(json.dumps(summary))
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
    infos = registry.probe_all()
    if args.json:
        print(json.dumps([{"name": i.name, "available": i.available, "detail": i.detail, **i.extra} for i in infos]))
        return 0
    for info in infos:
        mark = "[green]available[/]" if info.available else "[red]unavailable[/]"
        console.print(f"{info.name:10} {mark}  {info.detail}")
    return 0


def _bench(args: argparse.Namespace, console: Console) -> int:
    if args.sweep:
        if args.all:
            raise ConfigError("--sweep measures one backend: give --backend, not --all")
        return _show(sweep_commands.run_sweep(args), args.json, console)
    if args.all:
        names = [i.name for i in registry.probe_all() if i.available and _benchable(i.name, args)]
    else:
        names = [registry.fastest_available() if args.backend == "auto" else args.backend]
    reports = []
    for name in names:
        if not args.json:
            console.print(f"benchmarking {name} with {args.threads} thread(s) for {args.seconds:g} s...",
                          highlight=False)
        options = _backend_options(args).get(name, {})
        reports.append(bench(name, args.seconds, args.threads, options=options,
                             meter_settings=_meter_settings(args)).to_json())
    chart = None
    if args.all:
        chart = args.chart or "bench.png"
        bench_chart(reports, chart)
    if args.json:
        print(json.dumps({"backends": reports, "chart": chart} if args.all else reports[0]))
        return 0
    console.print(bench_table(reports))
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
        print(json.dumps(report.as_dict()))
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


def _show(report: Any, as_json: bool, console: Console) -> int:
    """A report with ``to_json()`` and ``summary_lines()``: one JSON line, or its lines."""
    if as_json:
        print(json.dumps(report.to_json()))
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
