"""``hashcore trace solar|wind|grid ... -o FILE``: generate a budget trace."""

from __future__ import annotations

import argparse

from rich.console import Console

from hashcore.app.trace import TraceOptions, run_trace
from hashcore.cli.argtypes import non_negative_float, positive_float, positive_int
from hashcore.cli.common import options_from, show


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore trace solar|wind|grid ... -o FILE``."""
    kinds = parser.add_subparsers(dest="trace_kind", required=True, metavar="solar|wind|grid")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--date", required=True, help="the day, YYYY-MM-DD")
        sub.add_argument("-o", "--output", required=True, metavar="CSV")
        sub.add_argument("--utc-offset", type=float, default=None, metavar="HOURS",
                         help="local time of the timestamps (default: from the longitude, or UTC)")
        sub.add_argument("--step", type=positive_int, default=None, metavar="SECONDS",
                         help="row spacing (default 60; grid: 300)")
        sub.add_argument("--interpolation", choices=["step", "linear"], default=None,
                         help="written into the trace (default: step for wind and for solar with --clouds, "
                              "else linear)")
        sub.add_argument("--json", action="store_true")

    solar = kinds.add_parser("solar", help="surplus of a PV array over a site's load (pvlib)")
    common(solar)
    solar.add_argument("--lat", type=float, required=True)
    solar.add_argument("--lon", type=float, required=True)
    solar.add_argument("--pv-kw", type=positive_float, required=True, help="array size, kW DC")
    solar.add_argument("--load-kw", type=non_negative_float, required=True, help="the site's mean load, kW")
    solar.add_argument("--load-profile", choices=["residential", "flat"], default="residential")
    solar.add_argument("--load", default=None, metavar="CSV", help="a measured load series: timestamp,kw")
    solar.add_argument("--clouds", default=None, metavar="CSV", help="cloud cover: timestamp,cloud_cover (0-1 or %%)")
    solar.add_argument("--tilt", type=float, default=None, help="array tilt (default: the latitude, up to 60)")
    solar.add_argument("--azimuth", type=float, default=None, help="array azimuth (default: facing the equator)")
    solar.add_argument("--altitude", type=float, default=None, help="site altitude, m")

    wind = kinds.add_parser("wind", help="surplus of wind turbines over a site's load (windpowerlib)")
    common(wind)
    wind.add_argument("--wind", default=None, metavar="CSV",
                      help="wind speeds: timestamp,wind_speed (m/s at --measured-height)")
    wind.add_argument("--mean-speed", type=positive_float, default=None, metavar="M_PER_S",
                      help="without --wind: a seeded gusty series with this mean at 10 m")
    wind.add_argument("--seed", type=int, default=1)
    wind.add_argument("--front-speed", type=non_negative_float, default=3.5, metavar="M_PER_S",
                      help="synthetic series: extra speed of a passing front")
    wind.add_argument("--front-hour", type=float, default=14.0, help="synthetic series: when the front passes")
    wind.add_argument("--turbulence", type=non_negative_float, default=0.18, help="synthetic series: intensity")
    wind.add_argument("--gusts-per-hour", type=non_negative_float, default=4.0)
    wind.add_argument("--turbine", default="E-53/800", help="a windpowerlib turbine type (default E-53/800)")
    wind.add_argument("--count", type=positive_int, default=1, help="number of turbines")
    wind.add_argument("--hub-height", type=positive_float, default=None, metavar="M")
    wind.add_argument("--measured-height", type=positive_float, default=10.0, metavar="M")
    wind.add_argument("--load-kw", type=non_negative_float, default=0.0)
    wind.add_argument("--load-profile", choices=["residential", "flat"], default="flat")

    grid = kinds.add_parser("grid", help="a grid's carbon intensity and price, with a constant budget")
    common(grid)
    grid.add_argument("--lat", type=float, required=True)
    grid.add_argument("--lon", type=float, required=True)
    grid.add_argument("--budget-kw", type=positive_float, required=True, help="the mining budget (grid connection), kW")
    grid.add_argument("--seed", type=int, default=1)


def add_parser(commands: argparse._SubParsersAction) -> None:
    trace = commands.add_parser("trace", help="generate a budget trace: pvlib solar, windpowerlib wind, a grid day")
    add_trace_arguments(trace)


def trace_options(args: argparse.Namespace) -> TraceOptions:
    return options_from(args, TraceOptions)


def run(args: argparse.Namespace, console: Console) -> int:
    return show(run_trace(trace_options(args)), args.json, console)
