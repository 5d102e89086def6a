"""A grid's day (``hashcore trace grid``): carbon intensity and price from a demand shape,
pvlib solar and windpowerlib wind fleets and merit-order dispatch of the rest, with a
constant mining budget."""

from __future__ import annotations

from datetime import date as Date

import numpy as np

from hashcore.errors import ConfigError
from hashcore.throttle.generate import (
    RESIDENTIAL_SHAPE,
    Day,
    library_versions,
    offset_for,
    pv_ac_watts,
    synthetic_clouds,
)
from hashcore.throttle.signals import Interpolation, Trace
from hashcore.throttle.wind import synthetic_wind, turbine_power

#: Life-cycle emission factors, gCO2eq/kWh (IPCC AR5 WG3 Annex III, medians).
EMISSION_FACTORS = {"solar": 41.0, "wind": 11.0, "hydro": 24.0, "nuclear": 12.0, "coal": 820.0, "gas": 490.0}


def grid_day(
    lat: float,
    lon: float,
    day_date: Date,
    budget_kw: float,
    *,
    utc_offset_h: float | None = None,
    seed: int = 1,
    demand_gw: float = 55.0,
    solar_gw: float = 70.0,
    wind_gw: float = 30.0,
    nuclear_gw: float = 4.0,
    hydro_gw: float = 5.0,
    coal_gw: float = 25.0,
    coal_min_gw: float = 6.0,
    step_s: int = 300,
    interpolation: Interpolation = "linear",
) -> Trace:
    """A grid's carbon intensity and price over a day, with a constant mining budget.

    Demand follows a blend of the residential shape and a flat commercial load; solar is
    pvlib's clear-sky PV output for the region scaled to ``solar_gw``, thinned by seeded
    synthetic clouds; wind is windpowerlib's E-126/4200 over a seeded synthetic series
    scaled to ``wind_gw``; nuclear and hydro run flat, coal never below ``coal_min_gw``,
    gas fills the rest, and surplus is exported. Intensity is the generation-weighted mean
    of :data:`EMISSION_FACTORS`; the price is the marginal plant's cost on a simple
    merit order (per kWh, in the currency of the hashprice).
    """
    if budget_kw <= 0:
        raise ConfigError(f"--budget-kw must be positive, not {budget_kw}")
    offset = offset_for(lon, utc_offset_h)
    day = Day(day_date, offset, step_s)
    hours = day.hours()
    residential = np.interp(hours, np.arange(25), [*RESIDENTIAL_SHAPE, RESIDENTIAL_SHAPE[0]])
    residential = residential / np.mean(RESIDENTIAL_SHAPE)
    commercial = np.where((hours > 7) & (hours < 19), 1.15, 0.85)
    demand = demand_gw * (0.6 * residential + 0.4 * commercial)
    cloud_t, cloud = synthetic_clouds(day_date, offset, seed, step_s=step_s, morning_overcast_until_h=8.0,
                                      cloud_min=40.0, gap_min=90.0)
    cover = 0.5 * np.interp(day.epochs(), cloud_t, cloud)  # a region averages its clouds
    solar = pv_ac_watts(day, lat, lon, 1.0, cloud_cover=cover) / 1000.0 * solar_gw
    wind_t, wind = synthetic_wind(day_date, offset, seed + 1, mean_ms=5.5, front_ms=3.0, front_h=20.0,
                                  turbulence=0.03, gusts_per_h=0.0, step_s=step_s)
    unit, _hub, rated, _nominal = turbine_power(np.interp(day.epochs(), wind_t, wind), "E-126/4200")
    wind_power = unit / rated * wind_gw
    firm = nuclear_gw + hydro_gw
    residual = demand - solar - wind_power - firm
    coal = np.clip(residual, coal_min_gw, coal_gw)
    gas = np.clip(residual - coal, 0.0, None)
    exported = np.clip(-(residual - coal), 0.0, None)  # coal at its minimum plus a renewable surplus
    used_solar = solar - exported * solar / np.maximum(solar + wind_power, 1e-9)
    used_wind = wind_power - exported * wind_power / np.maximum(solar + wind_power, 1e-9)
    mix = {"solar": used_solar, "wind": used_wind, "nuclear": np.full_like(demand, nuclear_gw),
           "hydro": np.full_like(demand, hydro_gw), "coal": coal, "gas": gas}
    total = sum(mix.values())
    intensity = sum(mix[k] * EMISSION_FACTORS[k] for k in mix) / total
    # Merit order: renewables bid near zero, coal 0.07-0.10, gas 0.10-0.22 per kWh as
    # each fleet's output rises; the last plant running sets the price.
    price = np.where(gas > 0, 0.10 + 0.12 * gas / max(demand_gw * 0.5, 1e-9),
                     np.where(coal > coal_min_gw, 0.07 + 0.03 * (coal - coal_min_gw) / (coal_gw - coal_min_gw),
                              0.02 - 0.04 * np.clip(exported / 10.0, 0.0, 1.0)))
    notes = [
        f"grid day made with hashcore trace grid ({library_versions()}); a synthetic grid, not measured data",
        f"region {lat:g}, {lon:g}; {day_date.isoformat()} (UTC{offset:+g}); demand mean {demand.mean():.1f} GW; "
        f"solar {solar_gw:g} GW (pvlib, seeded clouds {seed}); wind {wind_gw:g} GW (windpowerlib E-126/4200, "
        f"seeded series {seed + 1}); nuclear {nuclear_gw:g}, hydro {hydro_gw:g}, coal {coal_min_gw:g}-{coal_gw:g} GW, "
        "gas the rest",
        "intensity: generation-weighted IPCC AR5 life-cycle medians (gCO2/kWh: "
        + ", ".join(f"{k} {v:g}" for k, v in EMISSION_FACTORS.items())
        + "); price: marginal plant on a merit order, per kWh",
        f"watts: a constant mining budget of {budget_kw:g} kW (the site's grid connection)",
        f"intensity {intensity.min():.0f}-{intensity.max():.0f} gCO2/kWh; price {price.min():.3f}-{price.max():.3f}",
    ]
    return Trace(list(day.epochs()), [budget_kw * 1000.0] * len(hours), list(intensity), list(price),
                 interpolation=interpolation, utc_offset_s=offset * 3600, notes=notes, name="grid")
