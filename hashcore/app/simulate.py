"""What ``hashcore simulate``, ``hashcore trace`` and ``hashcore mine --power-budget`` do.

``cli.py`` adds these arguments to its parsers and calls these functions; they return
data (reports, a live throttle) and never print.

``simulate`` runs a fleet of a bench model (``--model`` or a fresh bench) or of a device
model (``--device-model``, its efficiency curve scaled to ``--miner-watts``), with the
duty or the DVFS actuator, a forecast, a site battery and a carbon account; ``--run DIR``
writes what ``hashcore report DIR`` renders.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashcore.argtypes import fraction, non_negative_float, positive_float, positive_int
from hashcore.errors import ConfigError
from hashcore.report.account import BUDGET_SOURCES, AccountSettings
from hashcore.throttle.actuators import ACTUATORS
from hashcore.throttle.battery import Battery, BatteryConfig, LiveBatteryState
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.controller import ControllerConfig
from hashcore.throttle.devices import DEVICE_MODELS, device_curve
from hashcore.throttle.dispatch import DispatchConfig
from hashcore.throttle.forecast import FORECASTS, SolarSite, make_forecast
from hashcore.throttle.live import LivePlan, LiveThrottle
from hashcore.throttle.model import BackendModel, FleetModel, load_fleet, measure_fleet
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import POLICY_NAMES, Policy, make_policy
from hashcore.throttle.signals import ConstantSignal, LiveSource, Signal, Trace
from hashcore.throttle.simulation import SimulationReport, simulate
from hashcore.throttle.traces import load_trace, read_series, write_trace

__all__ = [
    "LivePlan",
    "LiveThrottle",
    "TraceReport",
    "add_budget_arguments",
    "add_simulate_arguments",
    "add_trace_arguments",
    "format_status",
    "plan_budget",
    "run_simulate",
    "run_trace",
    "write_live_run",
]


#: Defaults of the options a config file's [throttle] section may also set.
DEFAULTS: dict[str, Any] = {"policy": "follow", "hashprice": 50.0}


def _add_policy_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--policy", default=None, metavar="|".join(POLICY_NAMES),
                        help="follow the budget (default), cap carbon intensity, cap price; comma-separated to "
                             "combine (carbon-cap and price also follow the budget)")
    parser.add_argument("--carbon-cap", type=positive_float, default=None, metavar="GCO2_PER_KWH",
                        help="carbon-cap: mine only while grid intensity is under this")
    parser.add_argument("--hashprice", type=positive_float, default=None, metavar="PER_PH_DAY",
                        help="price: what a PH/s earns per day, in the trace's currency (default 50)")
    parser.add_argument("--price-ceiling", type=float, default=None, metavar="PER_KWH",
                        help="price: a fixed ceiling per kWh instead of each backend's break-even price")


def _add_fleet_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--model", default=None, metavar="JSON",
                        help="power model from 'hashcore bench --json' (or --all --json) instead of benchmarking now")
    parser.add_argument("--bench-seconds", type=positive_float, default=1.0, metavar="SECONDS",
                        help="without --model: benchmark each backend this long to model it (default 1)")


def _option(args: argparse.Namespace, name: str, settings: Mapping[str, Any] | None = None) -> Any:
    """A flag's value, else the config file's, else the default."""
    value = getattr(args, name, None)
    if value is None and settings:
        value = settings.get(name)
    return DEFAULTS.get(name) if value is None else value


def _policy(args: argparse.Namespace, signal: Signal, settings: Mapping[str, Any] | None = None) -> Policy:
    return make_policy(
        str(_option(args, "policy", settings)),
        signal,
        carbon_cap=_option(args, "carbon_cap", settings),
        hashprice=float(_option(args, "hashprice", settings)),
        price_ceiling=_option(args, "price_ceiling", settings),
    )


def _backend_names(text: str) -> list[str]:
    from hashcore.backends.base import resolve_names

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--backend needs at least one name")
    return resolve_names(names)


def _fleet(args: argparse.Namespace, names: list[str], threads: int | None) -> FleetModel:
    if args.model:
        return load_fleet(args.model)
    from hashcore.metering import MeterSettings

    settings = MeterSettings(getattr(args, "powercap_root", None), getattr(args, "tdp_watts_per_core", None))
    return measure_fleet(names, threads, args.bench_seconds, meter_settings=settings)


# --- simulate ----------------------------------------------------------------------------


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore simulate --trace FILE [--policy ...] [--speedup N] [--json] [--plot PNG]``."""
    parser.add_argument("--trace", required=True, metavar="CSV", help="the budget trace to replay")
    parser.add_argument("--interpolation", choices=["step", "linear"], default=None,
                        help="between trace rows (default: the file's '# interpolation:' line, else linear)")
    _add_policy_arguments(parser)
    parser.add_argument("--tick", type=positive_float, default=2.0, metavar="SECONDS",
                        help="controller tick in simulated seconds (default 2)")
    parser.add_argument("--speedup", type=positive_float, default=None, metavar="N",
                        help="replay at N times real time (default: as fast as it runs)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    parser.add_argument("--plot", default=None, metavar="PNG", help="write budget, power and hashrate over the day")
    fleet = parser.add_argument_group("simulated fleet")
    fleet.add_argument("--backend", default="auto", help="backends to model, comma-separated (default: fastest)")
    fleet.add_argument("--threads", type=positive_int, default=None, help="threads per backend (default: per core)")
    _add_fleet_arguments(fleet)
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
    _add_battery_arguments(parser)
    _add_account_arguments(parser)
    parser.add_argument("--run", default=None, metavar="DIR",
                        help="write the run (figures, series, carbon account) to DIR for 'hashcore report DIR'")


def _add_battery_arguments(parser: argparse.ArgumentParser | Any, *, simulated: bool = True) -> None:
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


def _battery_config(args: argparse.Namespace) -> BatteryConfig | None:
    if getattr(args, "battery_kwh", None) is None:
        if getattr(args, "battery_kw", None) is not None:
            raise ConfigError("--battery-kw needs --battery-kwh")
        return None
    power = args.battery_kw if args.battery_kw is not None else args.battery_kwh / 2
    return BatteryConfig(args.battery_kwh, power, args.battery_efficiency, args.battery_soc_min,
                         args.battery_soc_max, getattr(args, "battery_soc_start", 0.5))


def _add_account_arguments(parser: argparse.ArgumentParser | Any, *, simulated: bool = True) -> None:
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


def _account_settings(args: argparse.Namespace, signal: Signal) -> AccountSettings:
    source = getattr(args, "budget_source", "auto")
    if source == "auto":
        source = "grid" if signal.has_carbon else "surplus"
    return AccountSettings(source, getattr(args, "grid_intensity", None), getattr(args, "contract_gco2", None),
                           getattr(args, "share_difficulty", 65_536.0))


def _site(args: argparse.Namespace, trace: Trace) -> SolarSite | None:
    given = [args.site_lat, args.site_lon, args.site_pv_kw, args.site_load_kw]
    if all(v is None for v in given):
        return None
    if any(v is None for v in given):
        raise ConfigError("a PV site needs all of --site-lat, --site-lon, --site-pv-kw and --site-load-kw")
    return SolarSite(args.site_lat, args.site_lon, args.site_pv_kw, args.site_load_kw, args.site_load_profile,
                     trace.utc_offset_s)


def _simulated_fleet(args: argparse.Namespace) -> FleetModel:
    if args.device_model is None:
        return _fleet(args, _backend_names(args.backend), args.threads)
    if args.model:
        raise ConfigError("--device-model and --model both say what the fleet is: give one")
    curve = device_curve(args.device_model)
    kind = "asic" if args.device_model.startswith("asic") else args.device_model
    return FleetModel((BackendModel.from_curve(args.device_model, curve, kind=kind, threads=1),))


def run_simulate(args: argparse.Namespace) -> SimulationReport:
    """Replay ``args.trace`` on a virtual clock; write ``args.plot`` and ``args.run`` when asked."""
    trace = load_trace(args.trace, args.interpolation)
    fleet = _simulated_fleet(args)
    fleet = fleet.scaled(args.miner_watts, args.miner_j_per_th, args.paused_watts)
    policy = _policy(args, trace)
    truth = fleet.scaled(fleet.full_watts * args.plant_error) if args.plant_error != 1.0 else fleet
    plant = SimulatedMiner(truth, lag_s=args.lag, noise=args.noise)
    clock = VirtualClock(trace.start)
    forecast = make_forecast(args.forecast, trace, clock, site=_site(args, trace), start=trace.start, end=trace.end)
    config = _battery_config(args)
    battery = Battery(config) if config is not None else None
    # Ramp ahead by twice the fleet's response time: a first-order lag is 86% done by then.
    dispatch = DispatchConfig(lead_s=2 * args.lag)
    report = simulate(trace, fleet, policy, start=trace.start, end=trace.end, tick_s=args.tick, plant=plant,
                      speedup=args.speedup, utc_offset_s=trace.utc_offset_s, actuator=args.actuator,
                      forecast=forecast, battery=battery, dispatch=dispatch, account=_account_settings(args, trace),
                      clock=clock)
    report.notes = trace.notes
    report.device_model = args.device_model
    if args.plot:
        from hashcore.throttle.plot import plot_report

        plot_report(report, args.plot)
        report.plot = args.plot
    if args.run:
        from hashcore.report.run import write_run

        write_run(report, args.run)
        report.run_dir = args.run
    return report


# --- trace -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceReport:
    """What ``hashcore trace`` wrote."""

    path: str
    kind: str
    rows: int
    peak_w: float
    energy_kwh: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "rows": self.rows, "peak_w": self.peak_w,
                "energy_kwh": self.energy_kwh, "notes": self.notes}

    def summary_lines(self) -> list[str]:
        return [f"{self.kind} trace written to {self.path}: {self.rows} rows, peak {self.peak_w / 1000:,.2f} kW, "
                f"{self.energy_kwh:,.2f} kWh", *(f"  {n}" for n in self.notes)]


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


def run_trace(args: argparse.Namespace) -> TraceReport:
    """Generate the trace ``args`` describe and write it to ``args.output``."""
    from hashcore.throttle import generate

    day = generate.parse_date(args.date)
    step = args.step or (300 if args.trace_kind == "grid" else 60)
    trace: Trace
    if args.trace_kind == "solar":
        clouds = read_series(args.clouds, ("cloud_cover",)) if args.clouds else None
        load = read_series(args.load, ("kw",)) if args.load else None
        trace = generate.solar_surplus(
            args.lat, args.lon, day, args.pv_kw, args.load_kw, utc_offset_h=args.utc_offset, clouds=clouds,
            load_profile=args.load_profile, load_series=load, step_s=step, interpolation=args.interpolation,
            tilt=args.tilt,
            azimuth=args.azimuth, altitude=args.altitude,
        )
        if args.clouds:
            trace.notes.append(f"clouds from {Path(args.clouds).name}")
    elif args.trace_kind == "wind":
        offset = args.utc_offset if args.utc_offset is not None else 0.0
        if args.wind:
            table = read_series(args.wind, ("wind_speed",))
            speeds = (np.asarray(table.times), np.asarray(table.columns["wind_speed"]))
            source = f"{Path(args.wind).name}"
        elif args.mean_speed is not None:
            speeds = generate.synthetic_wind(day, offset, args.seed, mean_ms=args.mean_speed,
                                             front_ms=args.front_speed, front_h=args.front_hour,
                                             turbulence=args.turbulence, gusts_per_h=args.gusts_per_hour,
                                             step_s=step)
            source = (f"synthetic, seed {args.seed}: mean {args.mean_speed:g} m/s at 10 m, front +{args.front_speed:g}"
                      f" m/s at {args.front_hour:g} h, turbulence {args.turbulence:g}, "
                      f"{args.gusts_per_hour:g} gusts/h (AR(1) 3-min correlation)")
        else:
            raise ConfigError("hashcore trace wind needs --wind CSV or --mean-speed M_PER_S")
        trace = generate.wind_surplus(day, speeds, turbine=args.turbine, count=args.count, load_kw=args.load_kw,
                                      hub_height=args.hub_height, measured_height=args.measured_height,
                                      utc_offset_h=offset, step_s=step, load_profile=args.load_profile,
                                      source=source, interpolation=args.interpolation or "step")
    elif args.trace_kind == "grid":
        trace = generate.grid_day(args.lat, args.lon, day, args.budget_kw, utc_offset_h=args.utc_offset,
                                  seed=args.seed, step_s=step, interpolation=args.interpolation or "linear")
    else:
        raise ConfigError(f"unknown trace kind {args.trace_kind!r}")
    write_trace(args.output, trace)
    step = (trace.end - trace.start) / max(len(trace) - 1, 1)
    energy = sum(trace.watts[:-1]) * step / 3.6e6
    return TraceReport(args.output, args.trace_kind, len(trace), max(trace.watts), energy, trace.notes)


# --- mine --power-budget -----------------------------------------------------------------


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore mine ... --power-budget FILE|WATTS|URL [--policy ...]``."""
    group = parser.add_argument_group("power budget (throttling)")
    group.add_argument("--power-budget", default=None, metavar="FILE|WATTS|URL",
                       help="follow a budget: a trace CSV, a constant in watts, or a live file/URL "
                            "(a number or JSON {watts, gco2_per_kwh, price}) read every --budget-poll seconds")
    _add_policy_arguments(group)
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
    _add_fleet_arguments(group)
    group.add_argument("--actuator", choices=ACTUATORS, default="duty",
                       help="duty: duty-cycle at full speed; dvfs: set the operating point with the most hashes per "
                            "joule that fits (needs --model from 'hashcore bench --sweep --json'; an ASIC chain)")
    group.add_argument("--battery-state", default=None, metavar="FILE|URL",
                       help="a site battery's state of charge (a number 0-1 or %%, or JSON {soc, available_w}), read "
                            "every --budget-poll seconds: the miners lean on it through lulls of the surplus")
    group.add_argument("--account-dir", default=None, metavar="DIR",
                       help="at the end, write the run and its carbon account to DIR (hashcore report DIR)")
    _add_battery_arguments(parser, simulated=False)
    _add_account_arguments(parser, simulated=False)


def budget_signal(args: argparse.Namespace, settings: Mapping[str, Any] | None = None) -> Signal:
    """The signal ``--power-budget`` (or the config's ``power_budget``) names."""
    spec = str(_option(args, "power_budget", settings)).strip()
    policy = str(_option(args, "policy", settings))
    wants_carbon = "carbon-cap" in policy
    wants_price = "price" in policy
    try:
        watts = float(spec)
    except ValueError:
        pass
    else:
        return ConstantSignal(watts * args.budget_scale)
    if spec.startswith(("http://", "https://")) or args.budget_poll is not None:
        if args.budget_scale != 1.0:
            raise ConfigError("--budget-scale applies to traces and constants, not live sources")
        return LiveSource(spec, args.budget_poll or 10.0, has_carbon=wants_carbon, has_price=wants_price)
    interpolation = _option(args, "interpolation", settings)
    if interpolation not in (None, "step", "linear"):
        raise ConfigError(f"interpolation must be step or linear, not {interpolation!r}")
    trace = load_trace(spec, interpolation)
    return trace.scaled(args.budget_scale) if args.budget_scale != 1.0 else trace


def plan_budget(
    args: argparse.Namespace,
    backends: list[str],
    threads: int | None = None,
    settings: Mapping[str, Any] | None = None,
) -> LivePlan | None:
    """The live throttle's plan for ``hashcore mine`` (None without a power budget).

    ``settings`` is the config file's ``[throttle]`` section (power_budget, policy,
    carbon_cap, price_ceiling, hashprice, interpolation); flags override it. Call it
    before the miner starts: without ``--model`` it benchmarks each backend for
    ``--bench-seconds`` (about a second each) to model its power.
    """
    if _option(args, "power_budget", settings) is None:
        return None
    signal = budget_signal(args, settings)
    policy = _policy(args, signal, settings)
    names = _backend_names(",".join(backends))
    fleet = _fleet(args, names, threads)
    missing = [n for n in names if n not in fleet.names]
    if missing:
        raise ConfigError(f"the power model {args.model} has no figures for {', '.join(missing)} "
                          "(bench it: hashcore bench --all --json)")
    fleet = FleetModel(tuple(b for b in fleet.backends if b.name in names))  # a bench --all file has more
    battery = None
    config = _battery_config(args)
    if getattr(args, "battery_state", None):
        if config is None:
            raise ConfigError("--battery-state needs the battery's size: --battery-kwh (and --battery-kw)")
        battery = LiveBatteryState(args.battery_state, config, args.budget_poll or 10.0)
    elif config is not None:
        raise ConfigError("a live battery's state comes from --battery-state FILE|URL")
    actuator = getattr(args, "actuator", "duty")
    if actuator == "dvfs":
        flat = [b.name for b in fleet.backends if b.curve is None]
        if flat:
            raise ConfigError(f"--actuator dvfs needs operating points for {', '.join(flat)}: "
                              "--model FILE from 'hashcore bench --sweep --json'")
    return LivePlan(signal=signal, policy=policy, fleet=fleet, tick_s=args.throttle_tick, align=args.budget_align,
                    idle_watts=args.idle_watts, config=ControllerConfig(), battery=battery,
                    account=_account_settings(args, signal), actuator=actuator)


def write_live_run(args: argparse.Namespace, throttle: LiveThrottle) -> str | None:
    """After ``hashcore mine --account-dir DIR``: write the run and its carbon account
    (None when the flag is not given)."""
    directory = getattr(args, "account_dir", None)
    if not directory:
        return None
    return throttle.write_run(directory)


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
