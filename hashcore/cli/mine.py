"""``hashcore mine``: mine against pools (or the embedded pool), with the live view."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from hashcore.app.budget import BudgetOptions
from hashcore.app.live import LiveThrottle
from hashcore.app.mine import EMBEDDED_DEFAULT_SECONDS, PASSWORD_ENV, MineOptions, mine
from hashcore.cli.argtypes import positive_float
from hashcore.cli.budget import add_budget_arguments, format_status
from hashcore.cli.common import (
    add_backend_options,
    add_energy_options,
    backend_options,
    names,
    options_from,
    print_json,
    threads,
)
from hashcore.cli.services import DEFAULT_API_LISTEN, services_starter
from hashcore.config import MAX_THREADS
from hashcore.control import MAX_POOLS
from hashcore.engine import MinerStats
from hashcore.errors import ConfigError
from hashcore.liveview import format_energy, format_rate, miner_line, miner_table
from hashcore.sharerate import DEFAULT_MAX_SHARE_RATE
from hashcore.stratum.urls import parse_pool_url


def _pool_url(text: str) -> str:
    """A pool URL checked as the flag is read: a malformed one is a usage mistake (exit 2).

    Only ArgumentTypeError carries our message: for any other error argparse would
    print the whole value, password included."""
    try:
        parse_pool_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(commands: argparse._SubParsersAction) -> None:
    mine_cmd = commands.add_parser("mine", help="mine against pools (or the embedded pool)")
    mine_cmd.add_argument("--pool", action="append", type=_pool_url, default=[], metavar="URL",
                          help="stratum+tcp:// or stratum+ssl:// pool; repeat for failover, in priority order")
    mine_cmd.add_argument("--config", metavar="FILE", default=None,
                          help="TOML config (see hashcore.example.toml); flags override it")
    mine_cmd.add_argument("--user", default=None, help="worker name")
    mine_cmd.add_argument("--password", default=None,
                          help=f"worker password (default: ${PASSWORD_ENV}, else the config's, else x); "
                               f"other users can read flags in 'ps': prefer ${PASSWORD_ENV} or the config file")
    mine_cmd.add_argument("--backend", default=None, help="backend name(s), comma-separated (default: fastest)")
    mine_cmd.add_argument("--threads", type=threads, default=None,
                          help=f"worker threads per backend (at most {MAX_THREADS} here)")
    mine_cmd.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                          help=f"stop after this long (--embedded: {EMBEDDED_DEFAULT_SECONDS:.0f} s unless --forever)")
    mine_cmd.add_argument("--forever", action="store_true", help="with --embedded: run until interrupted")
    mine_cmd.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    mine_cmd.add_argument("--embedded", action="store_true", help="start the embedded pool and mine against it")
    mine_cmd.add_argument("--difficulty", type=positive_float, default=0.001,
                          help="--embedded: the starting share difficulty (vardiff adjusts it)")
    mine_cmd.add_argument("--tls-insecure", action="store_true", help="do not verify pool TLS certificates")
    mine_cmd.add_argument("--tls-ca", default=None, metavar="FILE", help="CA bundle for pool certificates")
    mine_cmd.add_argument("--suggest-difficulty", type=positive_float, default=None)
    mine_cmd.add_argument("--max-share-rate", type=positive_float, default=None, metavar="PER_SECOND",
                          help=f"shares a second sent to a pool at most (default {DEFAULT_MAX_SHARE_RATE:g}); a pool "
                               "difficulty that would mean more is met with a higher local difficulty")
    mine_cmd.add_argument("--no-version-rolling", action="store_true", help="do not ask for BIP 310 version rolling")
    add_backend_options(mine_cmd)
    add_energy_options(mine_cmd)
    farm = mine_cmd.add_argument_group("farm tools")
    farm.add_argument("--api-listen", default=None, metavar="HOST:PORT",
                      help=f"cgminer API (default {DEFAULT_API_LISTEN}; 'off' disables it)")
    farm.add_argument("--api-allow", default=None, metavar="LIST",
                      help="cgminer --api-allow syntax, e.g. W:127.0.0.1,R:10.0.0.0/8 (default: read-only loopback)")
    farm.add_argument("--metrics-listen", default=None, metavar="HOST:PORT",
                      help="Prometheus metrics over HTTP (off unless given)")
    farm.add_argument("--metrics-allow-host", action="append", type=names, default=[], metavar="NAME",
                      help="another name the metrics answer to in the Host header (besides their listen "
                           "address and localhost), e.g. the one Prometheus scrapes; repeat or comma-separate")
    farm.add_argument("--web-listen", default=None, metavar="HOST:PORT",
                      help="the web dashboard, e.g. 127.0.0.1:8080 (off unless given)")
    farm.add_argument("--web-allow-host", action="append", type=names, default=[], metavar="NAME",
                      help="another name the dashboard answers to in the Host header (besides its listen "
                           "address and localhost); repeat or comma-separate")
    farm.add_argument("--web-allow-control", action="store_true",
                      help="let the dashboard pause, resume, set the power target and switch pools, "
                           "with the token printed at start")
    farm.add_argument("--web-bench", default=None, metavar="FILE",
                      help="a 'hashcore bench --json' file for the dashboard's bench table (re-read on each view)")
    add_budget_arguments(mine_cmd)


def budget_options(args: argparse.Namespace) -> BudgetOptions:
    return options_from(args, BudgetOptions)


def mine_options(args: argparse.Namespace) -> MineOptions:
    return options_from(args, MineOptions, backend_options=backend_options(args), budget=budget_options(args),
                        max_pools=MAX_POOLS)


class LiveView:
    """The miner's table, refreshed twice a second on a terminal; elsewhere a line every
    five seconds (and the throttle's line under either)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.ticks = 0

    @staticmethod
    def _view(stats: MinerStats, throttle: LiveThrottle | None) -> Any:
        if throttle is None:
            return miner_table(stats)
        return Group(miner_table(stats), Text(format_status(throttle.status())))

    def start(self, stats: MinerStats, throttle: LiveThrottle | None) -> None:
        if self.console.is_terminal:
            self.live = Live(self._view(stats, throttle), console=self.console, refresh_per_second=2,
                             transient=False)
            self.live.start()

    def tick(self, stats: MinerStats, throttle: LiveThrottle | None) -> None:
        self.ticks += 1
        if self.live is not None:
            self.live.update(self._view(stats, throttle))
        elif self.ticks % 5 == 0:
            self.console.print(miner_line(stats), highlight=False)
            if throttle is not None:
                self.console.print(format_status(throttle.status()), highlight=False)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()


def run(args: argparse.Namespace, console: Console) -> int:
    def announce(line: str) -> None:
        console.print(line, highlight=False)

    outcome = asyncio.run(mine(mine_options(args), LiveView(console), services_starter(args, announce)))
    if outcome.run_dir:
        console.print(f"run and carbon account written to {outcome.run_dir} (hashcore report {outcome.run_dir})",
                      highlight=False)
    _print_summary(outcome.stats, args.json, console, outcome.throttle)
    return 0


def _print_summary(stats: MinerStats, as_json: bool, console: Console, throttle: LiveThrottle | None) -> None:
    if as_json:
        summary = stats.to_json()
        if throttle is not None:
            summary["throttle"] = throttle.status()
        print_json(summary)
        return
    console.print(miner_table(stats))
    console.print(
        f"mined {stats.hashes:,} hashes in {stats.seconds:.1f} s ({format_rate(stats.hashrate_hs)}); "
        f"accepted {stats.accepted}, rejected {stats.rejected}, stale {stats.stale}; "
        f"{format_energy(stats.energy)}",
        highlight=False,
    )
    if throttle is not None:
        console.print(format_status(throttle.status()), highlight=False)
