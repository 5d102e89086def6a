"""``hashcore telemetry``: the energy sources found here, and live power for a few seconds."""

from __future__ import annotations

import argparse

from rich.console import Console

from hashcore.cli.argtypes import positive_float
from hashcore.cli.common import add_energy_options, print_json
from hashcore.telemetry import telemetry_report


def add_parser(commands: argparse._SubParsersAction) -> None:
    telemetry = commands.add_parser("telemetry", help="energy sources found here, and live power for a few seconds")
    telemetry.add_argument("--seconds", type=positive_float, default=3.0)
    telemetry.add_argument("--json", action="store_true")
    add_energy_options(telemetry)


def run(args: argparse.Namespace, console: Console) -> int:
    report = telemetry_report(args.seconds, powercap_root=args.powercap_root,
                              tdp_watts_per_core=args.tdp_watts_per_core)
    if args.json:
        print_json(report.as_dict())
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
