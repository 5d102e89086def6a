"""``hashcore trace``: generate a budget trace (pvlib solar, windpowerlib wind, a grid
day) and write it as CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashcore.app.inputs import read_series, write_trace
from hashcore.errors import ConfigError
from hashcore.throttle import generate, grid, wind
from hashcore.throttle.signals import Trace


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


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceOptions:
    """The trace to generate: ``trace_kind`` (solar, wind, grid), the day, where to write
    it, and the kind's own figures (see ``hashcore trace KIND --help``)."""

    trace_kind: str
    date: str
    output: str
    utc_offset: float | None = None
    step: int | None = None
    interpolation: str | None = None
    lat: float = 0.0
    lon: float = 0.0
    pv_kw: float = 0.0
    load_kw: float = 0.0
    load_profile: str = "residential"
    load: str | None = None
    clouds: str | None = None
    tilt: float | None = None
    azimuth: float | None = None
    altitude: float | None = None
    wind: str | None = None
    mean_speed: float | None = None
    seed: int = 1
    front_speed: float = 3.5
    front_hour: float = 14.0
    turbulence: float = 0.18
    gusts_per_hour: float = 4.0
    turbine: str = "E-53/800"
    count: int = 1
    hub_height: float | None = None
    measured_height: float = 10.0
    budget_kw: float = 0.0


def run_trace(options: TraceOptions) -> TraceReport:
    """Generate the trace ``options`` describe and write it to ``options.output``."""
    day = generate.parse_date(options.date)
    step = options.step or (300 if options.trace_kind == "grid" else 60)
    interpolation: Any = options.interpolation
    trace: Trace
    if options.trace_kind == "solar":
        clouds = read_series(options.clouds, ("cloud_cover",)) if options.clouds else None
        load = read_series(options.load, ("kw",)) if options.load else None
        trace = generate.solar_surplus(
            options.lat, options.lon, day, options.pv_kw, options.load_kw, utc_offset_h=options.utc_offset,
            clouds=clouds, load_profile=options.load_profile, load_series=load, step_s=step,
            interpolation=interpolation, tilt=options.tilt, azimuth=options.azimuth, altitude=options.altitude,
        )
        if options.clouds:
            trace.notes.append(f"clouds from {Path(options.clouds).name}")
    elif options.trace_kind == "wind":
        offset = options.utc_offset if options.utc_offset is not None else 0.0
        if options.wind:
            table = read_series(options.wind, ("wind_speed",))
            speeds = (np.asarray(table.times), np.asarray(table.columns["wind_speed"]))
            source = f"{Path(options.wind).name}"
        elif options.mean_speed is not None:
            speeds = wind.synthetic_wind(day, offset, options.seed, mean_ms=options.mean_speed,
                                             front_ms=options.front_speed, front_h=options.front_hour,
                                             turbulence=options.turbulence, gusts_per_h=options.gusts_per_hour,
                                             step_s=step)
            source = (f"synthetic, seed {options.seed}: mean {options.mean_speed:g} m/s at 10 m, front "
                      f"+{options.front_speed:g} m/s at {options.front_hour:g} h, turbulence "
                      f"{options.turbulence:g}, {options.gusts_per_hour:g} gusts/h (AR(1) 3-min correlation)")
        else:
            raise ConfigError("hashcore trace wind needs --wind CSV or --mean-speed M_PER_S")
        trace = wind.wind_surplus(day, speeds, turbine=options.turbine, count=options.count,
                                      load_kw=options.load_kw, hub_height=options.hub_height,
                                      measured_height=options.measured_height, utc_offset_h=offset, step_s=step,
                                      load_profile=options.load_profile, source=source,
                                      interpolation=interpolation or "step")
    elif options.trace_kind == "grid":
        trace = grid.grid_day(options.lat, options.lon, day, options.budget_kw, utc_offset_h=options.utc_offset,
                                  seed=options.seed, step_s=step, interpolation=interpolation or "linear")
    else:
        raise ConfigError(f"unknown trace kind {options.trace_kind!r}")
    write_trace(options.output, trace)
    spacing = (trace.end - trace.start) / max(len(trace) - 1, 1)
    energy = sum(trace.watts[:-1]) * spacing / 3.6e6
    return TraceReport(options.output, options.trace_kind, len(trace), max(trace.watts), energy, trace.notes)
