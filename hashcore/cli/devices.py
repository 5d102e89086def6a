"""``hashcore devices``: every backend, available or not and why, and the measured rates."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from hashcore.backends import base as registry
from hashcore.cli.common import print_json
from hashcore.liveview import format_rate


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("devices", help="list backends, available or not, and why")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--remeasure", action="store_true",
                        help="forget the cached path choices and OpenCL tunes and measure every backend's "
                             "paths again (run it on an idle machine)")  # fmt: skip


def run(args: argparse.Namespace, console: Console) -> int:
    from hashcore.backends import backendrank, pathchoice  # CPU probing: only this command needs it

    if args.remeasure:
        from hashcore.backends.opencl.settings import discard_tunes

        pathchoice.discard()
        discard_tunes()
    infos = registry.probe_all()
    rates = registry.measured_rates()
    auto = backendrank.fastest(rates) if rates else registry.fastest_available()
    if args.json:
        print_json([{"name": i.name, "available": i.available, "detail": i.detail, **i.extra,
                     "rate": rates[i.name].to_json() if i.name in rates else None,
                     "auto_backend": i.name == auto} for i in infos])  # fmt: skip
        return 0
    for info in infos:
        mark = "[green]available[/]" if info.available else "[red]unavailable[/]"
        console.print(f"{info.name:10} {mark}  {escape(info.detail)}")
    console.print(f"CPU: {pathchoice.cpu_label()}", highlight=False, markup=False)
    for name in backendrank.ranked(rates):
        rate = rates[name]
        per_core = f"{format_rate(rate.per_core_hs)} per core, " if rate.per_core_hs else ""
        pick = "  <- --backend auto" if name == auto else ""
        console.print(f"  {name:8} {rate.path:9} {per_core}{format_rate(rate.all_cores_hs)} on all "
                      f"({rate.how}){pick}", highlight=False, markup=False)  # fmt: skip
    ranking = ("ranked by rate over the hashlib yardstick timed beside each measurement"
               if backendrank.by_yardstick(rates) else "ranked by rate")  # fmt: skip
    console.print(f"{ranking}; within {backendrank.TIE:.0%} of the fastest, auto takes the first of "
                  f"{', '.join(rates)}; measured once per machine and build (--remeasure measures again); "
                  f"cache: {pathchoice.cache_file()}", highlight=False, markup=False)  # fmt: skip
    return 0
