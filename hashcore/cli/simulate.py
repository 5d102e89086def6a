"""``hashcore simulate``: replay a power-budget trace on a virtual clock."""

from __future__ import annotations

import argparse

from rich.console import Console

from hashcore.app.simulate import SimulateOptions, run_simulate
from hashcore.cli.argtypes import non_negative_float, positive_float, positive_int
from hashcore.cli.budget import add_account_arguments, add_battery_arguments, add_fleet_arguments, add_policy_arguments
from hashcore.cli.common import add_energy_options, options_from, show
from hashcore.throttle.actuators import ACTUATORS
from hashcore.throttle.devices import DEVICE_MODELS
from hashcore.throttle.forecast import FORECASTS


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore simulate --trace FILE [--policy ...] [--speedup N] [--json] [--plot PNG]``."""
    parser.add_argument("--trace", required=True, metavar="CSV", help="the budget trace to replay")
    parser.add_argument("--interpolation", choices=["step", "linear"], default=None,
                        help="between trace rows (default: the file's '# interpolation:' line, else linear)")
    add_policy_arguments(parser)
    parser.add_argument("--tick", type=positive_float, default=2.0, metavar="SECONDS",
                        help="controller tick in simulated seconds (default 2)")
    parser.add_argument("--speedup", type=positive_float, default=None, metavar="N",
                        help="replay at N times real time (default: as fast as it runs)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    parser.add_argument("--plot", default=None, metavar="PNG", help="write budget, power and hashrate over the day")
    fleet = parser.add_argument_group("simulated fleet")
    fleet.add_argument("--backend", default="auto", help="backends to model, comma-separated (default: fastest)")
    fleet.add_argument("--threads", type=positive_int, default=None, help="threads per backend (default: per core)")
    add_fleet_arguments(fleet)
    fleet.add_argument("--miner-watts", type=positive_float, default=None, metavar="W",
                       help="scale the fleet to this power at full duty (same J/TH: more machines)")
    fleet.add_argument("--miner-j-per-th", type=positive_float, default=None, metavar="J_PER_TH",
                       help="give the fleet this efficiency (e.g. 17 for a current ASIC)")
    fleet.add_argument("--paused-watts", type=non_negative_float, default=None, metavar="W",
                       help="what the paused fleet still draws (0 for a CPU host; an ASIC's sleep power)")
    fleet.add_argument("--plant-error", type=positive_float, default=1.0, metavar="FACTOR",
                       help="the simulated fleet really draws FACTOR x the model's power (robustness)")
    fleet.add_argument("--noise", type=non_negative_float, default=0.0, metavar="FRACTION",
                       help="relative standard deviation of the simulated meter")
    fleet.add_argument("--lag", type=non_negative_float, default=0.25, metavar="SECONDS",
                       help="time constant of the fleet's response to a new setting (default 0.25)")
    fleet.add_argument("--device-model", choices=DEVICE_MODELS, default=None,
                       help="model the fleet as this device's efficiency curve, scaled to --miner-watts, "
                            "instead of benchmarking (asic-bm1366: the emulated chip's V/f model)")
    fleet.add_argument("--actuator", choices=ACTUATORS, default="duty",
                       help="duty: duty-cycle at full speed; dvfs: the operating point with the most hashes per "
                            "joule that fits, duty cycling only below the most efficient one (default duty)")
    ahead = parser.add_argument_group("forecast")
    ahead.add_argument("--forecast", choices=FORECASTS, default="none",
                       help="ramp ahead of, and make battery room for, the surplus to come: persistence (the recent "
                            "past), clearsky (pvlib x the recent cloud index), perfect (the trace itself, the bound)")
    ahead.add_argument("--site-lat", type=float, default=None,
                       help="clearsky: the PV site (default: the trace's notes)")
    ahead.add_argument("--site-lon", type=float, default=None)
    ahead.add_argument("--site-pv-kw", type=positive_float, default=None, metavar="KW",
                       help="clearsky: the array, kW DC")
    ahead.add_argument("--site-load-kw", type=non_negative_float, default=None, metavar="KW",
                       help="clearsky: the site's mean load")
    ahead.add_argument("--site-load-profile", choices=["residential", "flat"], default="residential")
    add_battery_arguments(parser)
    add_account_arguments(parser)
    parser.add_argument("--run", default=None, metavar="DIR",
                        help="write the run (figures, series, carbon account) to DIR for 'hashcore report DIR'")


def add_parser(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser("simulate", help="replay a power-budget trace on a virtual clock")
    add_simulate_arguments(simulate)
    add_energy_options(simulate)


def simulate_options(args: argparse.Namespace) -> SimulateOptions:
    return options_from(args, SimulateOptions)


def run(args: argparse.Namespace, console: Console) -> int:
    if args.model is None and args.device_model is None:
        console.print(f"modelling the fleet: hashcore bench, {args.bench_seconds:g} s per backend...", highlight=False)
    return show(run_simulate(simulate_options(args)), args.json, console)
