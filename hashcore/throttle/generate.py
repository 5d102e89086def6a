"""Generated signals from the field's own models: pvlib for the sun, windpowerlib for
the wind. Each returns a :class:`~hashcore.throttle.signals.Trace` whose notes say how
it was made (library versions and every parameter), so a written trace carries its
provenance.

- :func:`solar_surplus`: PV output for a site (pvlib: sun position, Ineichen clear sky
  with Linke turbidity, optional cloud cover through Larson et al.'s linear GHI scaling
  and the DISC decomposition, isotropic transposition onto the array, SAPM cell
  temperature, PVWatts DC, losses and inverter), minus the site's load.
- :func:`hashcore.throttle.wind.wind_surplus`: a turbine's power curve (windpowerlib's
  turbine library) over a wind-speed series brought to hub height with the Hellman power
  law, minus the load (with :func:`~hashcore.throttle.wind.synthetic_wind`, its module).
- :func:`hashcore.throttle.grid.grid_day`: a grid's carbon intensity and price over a
  day, from a demand shape, pvlib solar and windpowerlib wind fleets and merit-order
  dispatch of the rest.
- :func:`synthetic_clouds`: seeded cloud cover where no measured series is at hand (the
  notes say so).

pvlib and windpowerlib are imported inside the functions: they take a second to load
and nothing else in the throttle needs them.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from hashcore.errors import ConfigError
from hashcore.throttle.signals import Interpolation, Trace
from hashcore.throttle.traces import Table

if TYPE_CHECKING:
    import pandas as pd

#: A residential day, in multiples of the mean load, hour by hour (00:00 to 23:00):
#: low at night, a morning peak and a larger evening peak. The shape of published
#: standard load profiles; under a midday PV peak it gives the "duck" net load.
RESIDENTIAL_SHAPE = (
    0.62, 0.55, 0.52, 0.50, 0.51, 0.58, 0.80, 1.05, 1.10, 0.98, 0.92, 0.94,
    1.00, 0.96, 0.90, 0.90, 0.98, 1.16, 1.40, 1.55, 1.50, 1.32, 1.05, 0.78,
)
LOAD_PROFILES = ("residential", "flat")



@dataclass(frozen=True, slots=True)
class Day:
    """A local calendar day sampled every ``step_s`` seconds, midnight to midnight."""

    date: Date
    utc_offset_h: float
    step_s: int = 60

    def __post_init__(self) -> None:
        if not (self.step_s > 0 and 86_400 % self.step_s == 0):
            raise ConfigError(f"the step must divide a day, not {self.step_s} s")
        if not -14 <= self.utc_offset_h <= 14:
            raise ConfigError(f"a UTC offset is within ±14 h, not {self.utc_offset_h}")

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.utc_offset_h))

    def epochs(self) -> np.ndarray:
        """Epoch seconds of every sample, both midnights included."""
        start = datetime(self.date.year, self.date.month, self.date.day, tzinfo=self.tz).timestamp()
        return start + np.arange(0, 86_400 + self.step_s, self.step_s, dtype=np.float64)

    def index(self) -> pd.DatetimeIndex:
        import pandas as pd

        return pd.to_datetime(self.epochs(), unit="s", utc=True).tz_convert(self.tz)

    def hours(self) -> np.ndarray:
        """Local hour of day of each sample (0 to 24)."""
        return np.arange(len(self.epochs())) * self.step_s / 3600.0


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """pvlib and windpowerlib still call pandas APIs that pandas 3 deprecates: their
    warnings say nothing to a user of hashcore."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def parse_date(text: str) -> Date:
    try:
        return Date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date {text!r} is not a date (YYYY-MM-DD)") from None


def offset_for(lon: float, utc_offset_h: float | None) -> float:
    """The given UTC offset, or local mean solar time rounded to the hour."""
    return float(round(lon / 15.0)) if utc_offset_h is None else utc_offset_h


def load_watts(day: Day, load_kw: float, profile: str = "residential", series: Table | None = None) -> np.ndarray:
    """The site's load in watts at each sample: a measured series (``timestamp,kw``,
    interpolated) or a profile scaled to a mean of ``load_kw``."""
    if load_kw < 0:
        raise ConfigError(f"--load-kw must not be negative, not {load_kw}")
    t = day.epochs()
    if series is not None:
        return np.interp(t, series.times, series.columns["kw"]) * 1000.0
    if profile == "flat":
        return np.full(len(t), load_kw * 1000.0)
    if profile != "residential":
        raise ConfigError(f"unknown load profile {profile!r} (choose from {', '.join(LOAD_PROFILES)})")
    hours = day.hours()
    shape = np.interp(hours, np.arange(25), [*RESIDENTIAL_SHAPE, RESIDENTIAL_SHAPE[0]])
    return shape / np.mean(RESIDENTIAL_SHAPE) * load_kw * 1000.0


def library_versions() -> str:
    import pvlib

    try:
        import windpowerlib

        wind = f", windpowerlib {windpowerlib.__version__}"
    except ImportError:
        wind = ""
    return f"pvlib {pvlib.__version__}{wind}"


def pv_ac_watts(
    day: Day,
    lat: float,
    lon: float,
    pv_kw: float,
    *,
    cloud_cover: np.ndarray | None = None,
    altitude: float | None = None,
    tilt: float | None = None,
    azimuth: float | None = None,
    air_temp_c: float = 20.0,
    wind_ms: float = 1.0,
    dc_ac_ratio: float = 1.1,
) -> np.ndarray:
    """AC output (W) of a ``pv_kw`` (DC) array at each sample of ``day``."""

    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ConfigError(f"--lat/--lon out of range: {lat}, {lon}")
    if pv_kw <= 0:
        raise ConfigError(f"--pv-kw must be positive, not {pv_kw}")
    with quiet_libraries():
        return _pv_ac_watts(day, lat, lon, pv_kw, cloud_cover, altitude, tilt, azimuth, air_temp_c, wind_ms,
                            dc_ac_ratio)


def _pv_ac_watts(day: Day, lat: float, lon: float, pv_kw: float, cloud_cover: np.ndarray | None,
                 altitude: float | None, tilt: float | None, azimuth: float | None, air_temp_c: float,
                 wind_ms: float, dc_ac_ratio: float) -> np.ndarray:
    return _pv_ac_at(day.index(), lat, lon, pv_kw, cloud_cover, altitude, tilt, azimuth, air_temp_c, wind_ms,
                     dc_ac_ratio)


def _pv_ac_at(times: pd.DatetimeIndex, lat: float, lon: float, pv_kw: float, cloud_cover: np.ndarray | None,
              altitude: float | None, tilt: float | None, azimuth: float | None, air_temp_c: float,
              wind_ms: float, dc_ac_ratio: float) -> np.ndarray:
    import pvlib

    site = pvlib.location.Location(lat, lon, altitude=altitude)
    position = site.get_solarposition(times)
    clear = site.get_clearsky(times, model="ineichen", solar_position=position)
    if cloud_cover is None:
        ghi, dni, dhi = clear["ghi"], clear["dni"], clear["dhi"]
    else:
        # Larson et al. (2016): GHI falls linearly with cloud cover to 35% of clear sky.
        ghi = clear["ghi"] * (0.35 + 0.65 * (1.0 - np.clip(cloud_cover, 0.0, 1.0)))
        dni = pvlib.irradiance.disc(ghi, position["zenith"], times)["dni"].fillna(0.0)
        dhi = ghi - dni * np.cos(np.radians(position["zenith"]))
    tilt = min(abs(lat), 60.0) if tilt is None else tilt
    azimuth = (180.0 if lat >= 0 else 0.0) if azimuth is None else azimuth
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, position["apparent_zenith"], position["azimuth"], dni, ghi, dhi
    )["poa_global"].fillna(0.0).clip(lower=0.0)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    cell = pvlib.temperature.sapm_cell(poa, air_temp_c, wind_ms, **params)
    dc = pvlib.pvsystem.pvwatts_dc(poa, cell, pv_kw * 1000.0, -0.004)
    dc = dc * (1.0 - pvlib.pvsystem.pvwatts_losses() / 100.0)
    ac = pvlib.inverter.pvwatts(dc, pv_kw * 1000.0 / dc_ac_ratio)
    return np.asarray(ac.fillna(0.0).clip(lower=0.0), dtype=np.float64)


def clear_sky_ac(lat: float, lon: float, pv_kw: float, epochs: np.ndarray, **pv_options: Any) -> np.ndarray:
    """Clear-sky AC output (W) of a ``pv_kw`` array at any epoch seconds: the same model
    chain as :func:`pv_ac_watts`, without clouds (what a clear-sky forecast starts from)."""
    import pandas as pd

    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ConfigError(f"site out of range: {lat}, {lon}")
    if pv_kw <= 0:
        raise ConfigError(f"the PV array must be positive, not {pv_kw} kW")
    index = pd.to_datetime(np.asarray(epochs, dtype=np.float64), unit="s", utc=True)
    with quiet_libraries():
        return _pv_ac_at(index, lat, lon, pv_kw, None, pv_options.get("altitude"), pv_options.get("tilt"),
                         pv_options.get("azimuth"), pv_options.get("air_temp_c", 20.0),
                         pv_options.get("wind_ms", 1.0), pv_options.get("dc_ac_ratio", 1.1))


def load_at(epochs: np.ndarray, utc_offset_s: float, load_kw: float, profile: str = "residential") -> np.ndarray:
    """The site's load (W) at any epoch seconds, from a profile scaled to a mean of ``load_kw``."""
    if profile == "flat":
        return np.full(len(epochs), load_kw * 1000.0)
    if profile != "residential":
        raise ConfigError(f"unknown load profile {profile!r} (choose from {', '.join(LOAD_PROFILES)})")
    hours = ((np.asarray(epochs, dtype=np.float64) + utc_offset_s) % 86_400.0) / 3600.0
    shape = np.interp(hours, np.arange(25), [*RESIDENTIAL_SHAPE, RESIDENTIAL_SHAPE[0]])
    return np.asarray(shape / np.mean(RESIDENTIAL_SHAPE) * load_kw * 1000.0, dtype=np.float64)


def solar_surplus(
    lat: float,
    lon: float,
    day_date: Date,
    pv_kw: float,
    load_kw: float,
    *,
    utc_offset_h: float | None = None,
    clouds: Table | None = None,
    load_profile: str = "residential",
    load_series: Table | None = None,
    step_s: int = 60,
    interpolation: Interpolation | None = None,
    **pv_options: Any,
) -> Trace:
    """Surplus solar power of a site: PV output minus the site's load, never below zero.

    ``clouds`` is a ``timestamp,cloud_cover`` series (0-1, or percent), interpolated.
    Rows are interval samples: linear between them by default, held (step) with clouds,
    whose edges pass a site within a minute.
    """
    day = Day(day_date, offset_for(lon, utc_offset_h), step_s)
    cover = None
    if clouds is not None:
        values = np.asarray(clouds.columns["cloud_cover"], dtype=np.float64)
        if values.max(initial=0.0) > 1.0:
            values = values / 100.0
        cover = np.interp(day.epochs(), clouds.times, values)
    pv = pv_ac_watts(day, lat, lon, pv_kw, cloud_cover=cover, **pv_options)
    load = load_watts(day, load_kw, load_profile, load_series)
    surplus = np.clip(pv - load, 0.0, None)
    notes = [
        f"solar surplus made with hashcore trace solar ({library_versions()})",
        f"site {lat:g}, {lon:g}; {day_date.isoformat()} (UTC{day.utc_offset_h:+g}); PV {pv_kw:g} kW DC; "
        f"load {'measured series' if load_series is not None else f'{load_profile} profile, mean {load_kw:g} kW'}",
        "pvlib: solar position, Ineichen clear sky, "
        + ("cloud cover -> GHI (Larson linear, 35% floor) -> DISC, " if clouds is not None else "")
        + "isotropic POA, SAPM cell temperature, PVWatts DC (-0.4%/K), 14% losses, PVWatts inverter",
        f"peak surplus {surplus.max() / 1000:.2f} kW; surplus energy {surplus.sum() * step_s / 3.6e6:.2f} kWh; "
        f"PV energy {pv.sum() * step_s / 3.6e6:.2f} kWh",
    ]
    interpolation = interpolation or ("step" if clouds is not None else "linear")
    return Trace(list(day.epochs()), list(surplus), interpolation=interpolation,
                 utc_offset_s=day.utc_offset_h * 3600, notes=notes, name="solar")


def synthetic_clouds(day_date: Date, utc_offset_h: float, seed: int, *, step_s: int = 60,
                     morning_overcast_until_h: float = 10.5, cloud_min: float = 5.0,
                     gap_min: float = 7.0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded cloud-cover series (epoch seconds, cover 0-1): overcast until mid-morning,
    then broken cumulus: cloud and gap alternate with exponential dwell times (means
    ``cloud_min`` and ``gap_min`` minutes), covers drawn around 0.85 and 0.1."""
    day = Day(day_date, utc_offset_h, step_s)
    rng = random.Random(seed)
    hours = day.hours()
    cover = np.empty(len(hours))
    cloudy, left = True, 0.0
    for i, h in enumerate(hours):
        if h < morning_overcast_until_h:
            cover[i] = min(1.0, 0.9 + rng.uniform(-0.05, 0.05))
            continue
        if left <= 0:
            cloudy = not cloudy
            left = rng.expovariate(1.0 / (cloud_min if cloudy else gap_min)) * 60
            level = rng.uniform(0.75, 0.95) if cloudy else rng.uniform(0.0, 0.2)
        cover[i] = level
        left -= step_s
    return day.epochs(), cover
