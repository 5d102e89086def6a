"""Wind budget traces: a seeded gusty wind-speed series, and the surplus of windpowerlib
turbines over a site's load (``hashcore trace wind``)."""

from __future__ import annotations

import math
import random
import warnings
from datetime import date as Date

import numpy as np

from hashcore.errors import ConfigError
from hashcore.throttle.generate import Day, library_versions, load_watts, quiet_libraries
from hashcore.throttle.signals import Interpolation, Trace


def synthetic_wind(day_date: Date, utc_offset_h: float, seed: int, *, mean_ms: float = 7.0,
                   front_ms: float = 5.0, front_h: float = 14.0, turbulence: float = 0.18,
                   gusts_per_h: float = 4.0, step_s: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A seeded gusty wind-speed series at 10 m (epoch seconds, m/s).

    The mean is ``mean_ms`` plus a front passing at ``front_h`` (a Gaussian bump of
    ``front_ms``, four hours wide); turbulence is an AR(1) process with a three-minute
    correlation time and a standard deviation of ``turbulence`` × the mean (IEC 61400-1
    class A is 0.16 at 15 m/s); gusts arrive as a Poisson process, each lifting the speed
    by 30-60% for one to three minutes.
    """
    if mean_ms <= 0:
        raise ConfigError(f"--mean-speed must be positive, not {mean_ms}")
    day = Day(day_date, utc_offset_h, step_s)
    rng = random.Random(seed)
    hours = day.hours()
    mean = mean_ms + front_ms * np.exp(-(((hours - front_h) / 2.0) ** 2))
    rho = math.exp(-step_s / 180.0)
    speed = np.empty(len(hours))
    x, gust_left, gust = 0.0, 0.0, 1.0
    for i in range(len(hours)):
        x = rho * x + math.sqrt(1 - rho * rho) * rng.gauss(0.0, 1.0)
        if gust_left <= 0 and rng.random() < gusts_per_h * step_s / 3600:
            gust_left, gust = rng.uniform(60, 180), 1.0 + rng.uniform(0.3, 0.6)
        factor = gust if gust_left > 0 else 1.0
        gust_left -= step_s
        speed[i] = max(0.0, mean[i] * (1.0 + turbulence * x) * factor)
    return day.epochs(), speed


def turbine_power(speeds_ms: np.ndarray, turbine: str, hub_height: float | None = None,
                  measured_height: float = 10.0) -> tuple[np.ndarray, float, float, float]:
    """A turbine's output (W) for wind speeds measured at ``measured_height``:
    (power, hub height, rated power from the curve, nominal power)."""
    import pandas as pd
    from windpowerlib import WindTurbine, power_output, wind_speed

    unknown = f"unknown turbine {turbine!r}: windpowerlib's library has no power curve for it " \
              "(windpowerlib.get_turbine_types() lists them)"
    with quiet_libraries(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an unknown type warns, then has no curve
        try:
            height = _turbine_hub_height(turbine) if hub_height is None else hub_height
            machine = WindTurbine(hub_height=height, turbine_type=turbine)
        except (ValueError, KeyError):
            raise ConfigError(unknown) from None
        if machine.power_curve is None:
            raise ConfigError(unknown)
        hub = wind_speed.hellman(pd.Series(speeds_ms), measured_height, machine.hub_height, hellman_exponent=1 / 7)
        power = power_output.power_curve(hub, machine.power_curve["wind_speed"], machine.power_curve["value"])
    rated = float(machine.power_curve["value"].max())
    return np.asarray(power, dtype=np.float64), float(machine.hub_height), rated, float(machine.nominal_power)


def _turbine_hub_height(turbine: str) -> float:
    """A hub height for a turbine type: the rotor diameter in its name (E-53 -> 73 m) plus 20 m."""
    digits = "".join(ch for ch in turbine.split("/")[0] if ch.isdigit())
    return float(int(digits) + 20) if digits else 80.0


def wind_surplus(
    day_date: Date,
    speeds: tuple[np.ndarray, np.ndarray],
    *,
    turbine: str = "E-53/800",
    count: int = 1,
    load_kw: float = 0.0,
    hub_height: float | None = None,
    measured_height: float = 10.0,
    utc_offset_h: float = 0.0,
    step_s: int = 60,
    load_profile: str = "flat",
    source: str = "",
    interpolation: Interpolation = "step",
) -> Trace:
    """Surplus wind power: ``count`` turbines over a wind-speed series, minus the load.

    Rows are one-step means held until the next (step): a gust arrives as a step.
    """
    if count < 1:
        raise ConfigError(f"--count must be at least 1, not {count}")
    day = Day(day_date, utc_offset_h, step_s)
    times, values = speeds
    at_samples = np.interp(day.epochs(), times, values)
    power, hub, rated, nominal = turbine_power(at_samples, turbine, hub_height, measured_height)
    power = power * count
    load = load_watts(day, load_kw, load_profile)
    surplus = np.clip(power - load, 0.0, None)
    notes = [
        f"wind surplus made with hashcore trace wind ({library_versions()})",
        f"{count} x {turbine} (rated {rated / 1000:g} kW by its power curve, nominal {nominal / 1000:g} kW), "
        f"hub {hub:g} m; wind measured at {measured_height:g} m, Hellman exponent 1/7; "
        f"{day_date.isoformat()} (UTC{day.utc_offset_h:+g})",
        f"wind speeds: {source or 'given series'}; load {load_profile} {load_kw:g} kW",
        f"peak surplus {surplus.max() / 1000:.1f} kW; surplus energy {surplus.sum() * step_s / 3.6e6:.1f} kWh",
    ]
    return Trace(list(day.epochs()), list(surplus), interpolation=interpolation,
                 utc_offset_s=day.utc_offset_h * 3600, notes=notes, name="wind")
