"""The ``hashcore`` command: the parser that assembles the subcommands, and ``main``.

Each subcommand is a module of this package with ``add_parser`` and ``run``; the
command line is the only part of hashcore that prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from hashcore.cli import bench, devices, mine, pool, report, simulate, site, telemetry, trace
from hashcore.cli.common import Parser, exit_status, names

#: The subcommands in the order ``hashcore --help`` lists them.
SUBCOMMANDS = {"mine": mine, "site": site, "simulate": simulate, "trace": trace, "pool": pool,
               "devices": devices, "bench": bench, "report": report, "telemetry": telemetry}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hashcore", description="A Stratum V1 SHA-256d miner core with interchangeable backends.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in SUBCOMMANDS.values():
        module.add_parser(commands)
    return parser


def _check_flag_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that mean something only beside others: alone they would be ignored in silence."""
    if getattr(args, "asic_emulator_faults", None) is None:
        return
    backends = names(args.backend) if isinstance(getattr(args, "backend", None), str) else []
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
    return exit_status(lambda: SUBCOMMANDS[args.command].run(args, console))
