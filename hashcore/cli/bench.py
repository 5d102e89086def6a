"""``hashcore bench``: benchmark a backend (or ``--all``), or sweep its operating points
(``--sweep``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from hashcore.app.bench import benchable_backends, run_benches
from hashcore.app.sweep import SweepOptions, run_sweep
from hashcore.backends import base as registry
from hashcore.cli.argtypes import positive_float
from hashcore.cli.common import (
    add_backend_options,
    add_energy_options,
    backend_options,
    meter_settings,
    options_from,
    print_json,
    show,
    threads,
)
from hashcore.errors import ConfigError
from hashcore.liveview import bench_table
from hashcore.report.plots import bench_png


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore bench --sweep [--sweep-mhz LIST] [--sweep-seconds S] [--sweep-plot PNG]``."""
    group = parser.add_argument_group("operating-point sweep")
    group.add_argument("--sweep", action="store_true",
                       help="measure the backend at each operating point its knobs allow (cpufreq, NVML clocks, "
                            "the ASIC PLL and core voltage); --json lists the points")
    group.add_argument("--sweep-mhz", default=None, metavar="LIST",
                       help="ASIC: the clocks to sweep, comma-separated (default: the chip's V/f table up to stock)")
    group.add_argument("--sweep-seconds", type=float, default=1.0, metavar="SECONDS",
                       help="measurement per point (default 1)")
    group.add_argument("--sweep-plot", default=None, metavar="PNG", help="plot hashrate and J/TH against the clock")


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench_cmd = commands.add_parser("bench", help="benchmark a backend on a fixed work unit")
    which = bench_cmd.add_mutually_exclusive_group()
    which.add_argument("--backend", default="auto")
    which.add_argument("--all", action="store_true", help="every available backend in turn, one table")
    bench_cmd.add_argument("--threads", type=threads, default=None,
                           help="worker threads (default: one thread, then one per core, side by side)")
    bench_cmd.add_argument("--seconds", type=positive_float, default=5.0)
    bench_cmd.add_argument("--json", action="store_true")
    bench_cmd.add_argument("--chart", metavar="PNG", default=None,
                           help="with --all: write a bar chart of hashrate and J/TH (default bench.png)")
    add_backend_options(bench_cmd)
    add_energy_options(bench_cmd)
    add_sweep_arguments(bench_cmd)


def sweep_options(args: argparse.Namespace) -> SweepOptions:
    return options_from(args, SweepOptions)


def run(args: argparse.Namespace, console: Console) -> int:
    if args.sweep:
        if args.all:
            raise ConfigError("--sweep measures one backend: give --backend, not --all")
        return show(run_sweep(sweep_options(args)), args.json, console)
    names = benchable_backends(args.asic_port) if args.all else registry.resolve_names([args.backend])

    def announce(line: str) -> None:
        if not args.json:
            console.print(line, highlight=False)

    done = run_benches(names, args.seconds, args.threads, backend_options(args), meter_settings(args), announce)
    chart = None
    if args.all:
        chart = args.chart or "bench.png"
        Path(chart).write_bytes(bench_png(done.reports))
    if args.json:
        print_json({"backends": done.reports, "chart": chart} if args.all else done.reports[0])
        return 0
    console.print(bench_table(done.rows))
    for line in done.lines:
        console.print(line, highlight=False, markup=False)
    for report in done.reports:
        if not report["energy_exact"]:
            console.print(f"{report['backend']}: {report['energy_note']}", highlight=False)
    if chart:
        console.print(f"chart written to {chart}", highlight=False)
    return 0
