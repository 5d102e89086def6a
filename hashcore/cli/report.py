"""``hashcore report RUN``: render a run folder as one HTML page."""

from __future__ import annotations

import argparse

from rich.console import Console

from hashcore.cli.common import show
from hashcore.report.render import IMAGE_MODES, render_report


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore report RUN [-o HTML] [--images inline|files] [--json]``."""
    parser.add_argument("run", metavar="RUN", help="a run folder (hashcore simulate --run DIR)")
    parser.add_argument("-o", "--output", default=None, metavar="HTML",
                        help="where to write the page (default RUN/report.html)")
    parser.add_argument("--images", choices=IMAGE_MODES, default="inline",
                        help="embed the plots in the page (default) or write them as PNGs beside it")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def add_parser(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="render a run folder (simulate --run, mine --account-dir) as HTML")
    add_report_arguments(report)


def run(args: argparse.Namespace, console: Console) -> int:
    return show(render_report(args.run, args.output, args.images), args.json, console)
