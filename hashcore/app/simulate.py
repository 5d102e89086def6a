"""``hashcore simulate``: replay a power-budget trace on a virtual clock.

The fleet is a bench model (``model``, or a fresh bench) or a device model
(``device_model``, its efficiency curve scaled to ``miner_watts``), run with the duty or
the DVFS actuator, a forecast, a site battery and a carbon account; ``run`` writes the
folder ``hashcore report DIR`` renders, ``plot`` the day's picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hashcore.app.devices import device_curve
from hashcore.app.inputs import load_trace
from hashcore.app.plan import ThrottleOptions, account_settings, backend_names, battery_config, fleet_for, policy_for
from hashcore.errors import ConfigError
from hashcore.report.plots import day_png
from hashcore.report.run import SERIES_COLUMNS, write_run_files
from hashcore.throttle.battery import Battery
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.dispatch import DispatchConfig
from hashcore.throttle.forecast import SolarSite, make_forecast
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.signals import Interpolation
from hashcore.throttle.simulation import SimulationReport, simulate


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulateOptions(ThrottleOptions):
    """What ``hashcore simulate`` replays, on what fleet, and what it writes.

    Attributes:
        trace: the budget trace's file.
        tick / speedup: the controller tick (simulated seconds); N times real time (None:
            as fast as it runs).
        plot / run: the day's PNG; the run folder (None: not written).
        backend / threads: the backends to model and their threads.
        miner_watts / miner_j_per_th / paused_watts: the fleet sized to a site.
        plant_error / noise / lag: how the simulated fleet departs from its model.
        device_model: model the fleet as this device's curve instead of benchmarking.
        forecast: none, persistence, clearsky or perfect.
        site_*: the PV site of the clearsky forecast.
    """

    trace: str
    tick: float = 2.0
    speedup: float | None = None
    plot: str | None = None
    run: str | None = None
    backend: str = "auto"
    threads: int | None = None
    miner_watts: float | None = None
    miner_j_per_th: float | None = None
    paused_watts: float | None = None
    plant_error: float = 1.0
    noise: float = 0.0
    lag: float = 0.25
    device_model: str | None = None
    forecast: str = "none"
    site_lat: float | None = None
    site_lon: float | None = None
    site_pv_kw: float | None = None
    site_load_kw: float | None = None
    site_load_profile: str = "residential"


def solar_site(options: SimulateOptions, utc_offset_s: float) -> SolarSite | None:
    """The PV site of a clearsky forecast, from the ``site_*`` options (None: none given)."""
    given = [options.site_lat, options.site_lon, options.site_pv_kw, options.site_load_kw]
    if all(v is None for v in given):
        return None
    if options.site_lat is None or options.site_lon is None or options.site_pv_kw is None \
            or options.site_load_kw is None:
        raise ConfigError("a PV site needs all of --site-lat, --site-lon, --site-pv-kw and --site-load-kw")
    return SolarSite(options.site_lat, options.site_lon, options.site_pv_kw, options.site_load_kw,
                     options.site_load_profile, utc_offset_s)


def _simulated_fleet(options: SimulateOptions) -> FleetModel:
    if options.device_model is None:
        return fleet_for(options, backend_names(options.backend), options.threads)
    if options.model:
        raise ConfigError("--device-model and --model both say what the fleet is: give one")
    curve = device_curve(options.device_model)
    kind = "asic" if options.device_model.startswith("asic") else options.device_model
    return FleetModel((BackendModel.from_curve(options.device_model, curve, kind=kind, threads=1),))


def _interpolation(text: str | None) -> Interpolation | None:
    if text not in (None, "step", "linear"):
        raise ConfigError(f"interpolation must be step or linear, not {text!r}")
    return "step" if text == "step" else "linear" if text == "linear" else None


def run_simulate(options: SimulateOptions) -> SimulationReport:
    """Replay ``options.trace`` on a virtual clock; write the plot and the run when asked."""
    trace = load_trace(options.trace, _interpolation(options.interpolation))
    fleet = _simulated_fleet(options)
    fleet = fleet.scaled(options.miner_watts, options.miner_j_per_th, options.paused_watts)
    policy = policy_for(options, trace)
    truth = fleet.scaled(fleet.full_watts * options.plant_error) if options.plant_error != 1.0 else fleet
    plant = SimulatedMiner(truth, lag_s=options.lag, noise=options.noise)
    clock = VirtualClock(trace.start)
    forecast = make_forecast(options.forecast, trace, clock, site=solar_site(options, trace.utc_offset_s),
                             start=trace.start, end=trace.end)
    config = battery_config(options)
    battery = Battery(config) if config is not None else None
    # Ramp ahead by twice the fleet's response time: a first-order lag is 86% done by then.
    dispatch = DispatchConfig(lead_s=2 * options.lag)
    report = simulate(trace, fleet, policy, start=trace.start, end=trace.end, tick_s=options.tick, plant=plant,
                      speedup=options.speedup, utc_offset_s=trace.utc_offset_s, actuator=options.actuator,
                      forecast=forecast, battery=battery, dispatch=dispatch,
                      account=account_settings(options, trace), clock=clock)
    report.notes = trace.notes
    report.device_model = options.device_model
    if options.plot:
        write_day_plot(report, options.plot)
        report.plot = options.plot
    if options.run:
        write_simulation_run(report, options.run)
        report.run_dir = options.run
    return report


def write_day_plot(report: SimulationReport, path: str) -> None:
    """The simulated day's picture (:func:`hashcore.report.plots.day_png`) as a PNG file."""
    try:
        Path(path).write_bytes(day_png(report))
    except OSError as exc:
        raise ConfigError(f"cannot write the plot {path}: {exc.strerror or exc}") from exc


def write_simulation_run(report: SimulationReport, directory: str | Path) -> Path:
    """A simulation's run folder (:mod:`hashcore.report.run`)."""
    s = report.series
    columns = {name: getattr(s, name) for name in SERIES_COLUMNS}
    meta = {"kind": "simulation", **report.to_json(), "notes": report.notes, "utc_offset_s": report.utc_offset_s}
    meta["run_dir"] = str(directory)
    return write_run_files(directory, meta, columns, report.account)
