"""``hashcore site``: share one power budget across a fleet of miners."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from rich.console import Console

from hashcore.app.site.config import SiteConfig
from hashcore.app.site.controller import SiteController
from hashcore.app.site.run import SiteOptions, run_site
from hashcore.app.site.view import SiteView
from hashcore.cli.argtypes import positive_float
from hashcore.cli.common import print_json
from hashcore.errors import ConfigError
from hashcore.listen import parse_listen


def add_parser(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser(
        "site", help="share one power budget across a fleet of miners (hashcore instances, pyasic firmwares)",
        description="Read the site's budget every tick and give it to the miners listed in the site file, "
                    "cheapest joules per terahash first, through their cgminer API or pyasic.")
    site.add_argument("--config", required=True, metavar="TOML", help="the site file: [site] and [[miners]]")
    site.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                      help="stop after this long (default: run until interrupted)")
    site.add_argument("--listen", default=None, metavar="HOST:PORT|off",
                      help="the site page and /metrics (default: the file's site.listen, else 127.0.0.1:8090)")
    site.add_argument("--run", default=None, metavar="DIR", help="write the run folder here at the end "
                      "(hashcore report DIR)")
    site.add_argument("--json", action="store_true", help="print the run's figures as one JSON object on the last line")


def run(args: argparse.Namespace, console: Console) -> int:
    options = SiteOptions(args.config, args.duration, args.listen, args.run)
    outcome = asyncio.run(run_site(options, lambda view: _line(view, console), _start_page(console)))
    if args.json:
        print_json(outcome.view.to_json())
        return 0
    for line in summary_lines(outcome.view):
        console.print(line, highlight=False)
    if outcome.run_dir:
        console.print(f"run written to {outcome.run_dir} (hashcore report {outcome.run_dir})", highlight=False)
    return 0


def _start_page(console: Console) -> Any:
    async def start(controller: SiteController, config: SiteConfig, running: contextlib.AsyncExitStack) -> None:
        if config.listen is None:
            return
        from hashcore.web.site import SiteServer

        host, port = parse_listen(config.listen, "site.listen")
        server = SiteServer(controller, host, port, allowed_hosts=config.allow_hosts)
        try:
            await server.start()
        except ConfigError as exc:  # the address cannot be used: say where it was set
            raise ConfigError(f"{config.source}: site.listen (or --listen): {exc}") from None
        running.push_async_callback(server.stop)
        console.print(f"site page and /metrics on {server.url}", highlight=False)

    return start


def _line(view: SiteView, console: Console) -> None:
    measured = "-" if view.measured_w is None else f"{view.measured_w:.1f}"
    states: dict[str, int] = {}
    for miner in view.miners:
        states[miner.state] = states.get(miner.state, 0) + 1
    counts = " ".join(f"{n} {s}" for s, n in sorted(states.items()))
    error = f"  budget: {view.signal_error}" if view.signal_error else ""
    console.print(f"budget {view.budget_w:.1f} W  measured {measured} W  {counts}  "
                  f"over {view.energy_over_budget_j:.0f} J{error}", highlight=False)


def summary_lines(view: SiteView) -> list[str]:
    share = view.energy_over_budget_j / view.budget_energy_j if view.budget_energy_j else 0.0
    lines = [f"{view.seconds:.0f} s, {view.ticks} ticks: {view.energy_j:.1f} J of a {view.budget_energy_j:.1f} J "
             f"budget ({view.energy_over_budget_j:.1f} J over, {share:.2%}); curtailed {view.curtailed_j:.1f} J; "
             f"{view.hashes:.4g} hashes"]
    for m in view.miners:
        watts = "-" if m.watts is None else f"{m.watts:.1f} W"
        j = "-" if m.j_per_th is None else f"{m.j_per_th:.4g} J/TH"
        lines.append(f"  {m.address} ({m.kind}): {m.state}, {watts}, {j}, {m.energy_j:.1f} J"
                     + (f"  [{m.error}]" if m.error else ""))
    return lines
