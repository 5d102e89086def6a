"""The throttle's flags that ``hashcore mine --power-budget`` and ``hashcore simulate``
share (policy, power model, site battery, carbon account), and the live view's line."""

from __future__ import annotations

import argparse
from typing import Any

from hashcore.cli.argtypes import fraction, non_negative_float, positive_float
from hashcore.report.account import BUDGET_SOURCES
from hashcore.throttle.actuators import ACTUATORS
from hashcore.throttle.policies import POLICY_NAMES


def add_policy_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--policy", default=None, metavar="|".join(POLICY_NAMES),
                        help="follow the budget (default), cap carbon intensity, cap price; comma-separated to "
                             "combine (carbon-cap and price also follow the budget)")
    parser.add_argument("--carbon-cap", type=positive_float, default=None, metavar="GCO2_PER_KWH",
                        help="carbon-cap: mine only while grid intensity is under this")
    parser.add_argument("--hashprice", type=positive_float, default=None, metavar="PER_PH_DAY",
                        help="price: what a PH/s earns per day, in the trace's currency (default 50)")
    parser.add_argument("--price-ceiling", type=float, default=None, metavar="PER_KWH",
                        help="price: a fixed ceiling per kWh instead of each backend's break-even price")


def add_fleet_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--model", default=None, metavar="JSON",
                        help="power model from 'hashcore bench --json' (or --all --json) instead of benchmarking now")
    parser.add_argument("--bench-seconds", type=positive_float, default=1.0, metavar="SECONDS",
                        help="without --model: benchmark each backend this long to model it (default 1)")


def add_battery_arguments(parser: argparse.ArgumentParser | Any, *, simulated: bool = True) -> None:
    group = parser.add_argument_group("site battery")
    group.add_argument("--battery-kwh", type=positive_float, default=None, metavar="KWH",
                       help="a battery of this usable capacity takes the surplus the miners cannot use")
    group.add_argument("--battery-kw", type=positive_float, default=None, metavar="KW",
                       help="its power either way (default: half its capacity per hour)")
    group.add_argument("--battery-efficiency", type=fraction, default=0.92, metavar="FRACTION",
                       help="round-trip efficiency (default 0.92)")
    group.add_argument("--battery-soc-min", type=fraction, default=0.10, metavar="FRACTION",
                       help="never discharge below this state of charge (default 0.10)")
    group.add_argument("--battery-soc-max", type=fraction, default=0.95, metavar="FRACTION",
                       help="never charge above this state of charge (default 0.95)")
    if simulated:
        group.add_argument("--battery-soc-start", type=fraction, default=0.50, metavar="FRACTION",
                           help="the state of charge at the start (default 0.50)")


def add_account_arguments(parser: argparse.ArgumentParser | Any, *, simulated: bool = True) -> None:
    group = parser.add_argument_group("carbon account (GHG Protocol Scope 2)")
    group.add_argument("--budget-source", choices=BUDGET_SOURCES, default="auto",
                       help="what the budget's watts are: on-site surplus, or grid power (default auto: grid when "
                            "the signal carries a carbon intensity, else surplus)")
    group.add_argument("--grid-intensity", type=non_negative_float, default=None, metavar="GCO2_PER_KWH",
                       help="location-based factor for grid energy when the signal has no intensity")
    group.add_argument("--contract-gco2", type=non_negative_float, default=None, metavar="GCO2_PER_KWH",
                       help="market-based factor of the supply contract (default: the grid average)")
    if simulated:
        group.add_argument("--share-difficulty", type=positive_float, default=65_536.0, metavar="D",
                           help="the pool difficulty for the expected shares (default 65536)")


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore mine ... --power-budget FILE|WATTS|URL [--policy ...]``."""
    group = parser.add_argument_group("power budget (throttling)")
    group.add_argument("--power-budget", default=None, metavar="FILE|WATTS|URL",
                       help="follow a budget: a trace CSV, a constant in watts, or a live file/URL "
                            "(a number or JSON {watts, gco2_per_kwh, price}) read every --budget-poll seconds")
    add_policy_arguments(group)
    group.add_argument("--interpolation", choices=["step", "linear"], default=None,
                       help="between a trace's rows (default: the file's '# interpolation:' line, else linear)")
    group.add_argument("--budget-poll", type=positive_float, default=None, metavar="SECONDS",
                       help="read FILE as a live source this often (URLs: default 10)")
    group.add_argument("--budget-align", choices=["start", "wall"], default="start",
                       help="a trace: replay it from its first row (start) or at its wall-clock times (wall)")
    group.add_argument("--budget-scale", type=positive_float, default=1.0, metavar="FACTOR",
                       help="multiply the trace's watts (a site's trace on this host)")
    group.add_argument("--throttle-tick", type=positive_float, default=1.0, metavar="SECONDS",
                       help="controller tick (default 1)")
    group.add_argument("--idle-watts", type=non_negative_float, default=None, metavar="W",
                       help="the host's idle power (default: 0 for the estimate, else measured paused at start)")
    add_fleet_arguments(group)
    group.add_argument("--actuator", choices=ACTUATORS, default="duty",
                       help="duty: duty-cycle at full speed; dvfs: set the operating point with the most hashes per "
                            "joule that fits (needs --model from 'hashcore bench --sweep --json'; an ASIC chain)")
    group.add_argument("--battery-state", default=None, metavar="FILE|URL",
                       help="a site battery's state of charge (a number 0-1 or %%, or JSON {soc, available_w}), read "
                            "every --budget-poll seconds: the miners lean on it through lulls of the surplus")
    group.add_argument("--account-dir", default=None, metavar="DIR",
                       help="at the end, write the run and its carbon account to DIR (hashcore report DIR)")
    add_battery_arguments(parser, simulated=False)
    add_account_arguments(parser, simulated=False)


def format_status(status: dict[str, Any]) -> str:
    """One line for the live view: budget, measured power, state and settings."""
    measured = status.get("measured_w")
    parts = [
        f"budget {status['budget_w']:.1f} W",
        f"measured {measured:.1f} W" if measured is not None else "measured -",
        str(status["state"]),
    ]
    for name, backend in status["controller"]["backends"].items():
        parts.append(f"{name} duty {backend['duty']:.2f} x{backend['active_threads']}")
    parts.append(f"policy {status['policy']}")
    battery = status.get("battery")
    if battery and battery.get("soc") is not None:
        parts.append(f"battery {battery['soc']:.0%}")
    if status.get("signal_error"):
        parts.append(f"signal: {status['signal_error']}")
    return "  ".join(parts)
