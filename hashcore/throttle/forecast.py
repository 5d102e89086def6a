"""Forecasts of the power budget: what the surplus will be over the next hours.

``--forecast none|persistence|clearsky|perfect``:

- ``persistence``: the mean of the last ``window_s`` (five minutes) of readings, held
  flat: the recent past goes on.
- ``clearsky``: pvlib's clear-sky output of the site's PV array (the model chain of
  :mod:`hashcore.throttle.generate`) times the recent cloud index, less the site's load
  profile. The cloud index is what the array gave over the last half hour over what a
  clear sky would have given (read back from the surplus and the load). A reading of
  zero surplus says only that the array gave at most the load: with no other reading
  in the window the index stays where it was (a clear sky at first), capped by it.
- ``perfect``: the trace's own future, as the bound of what any forecast could do.

Only ``perfect`` may read the signal after now. The others get it through
:class:`PastOnly`, which raises :class:`FutureReadError` for any time after the
clock's now, so a forecast that peeks fails loudly instead of looking good.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hashcore.errors import ConfigError, HashcoreError
from hashcore.throttle.clock import Clock
from hashcore.throttle.signals import Signal, SignalPoint, Trace

FORECASTS = ("none", "persistence", "clearsky", "perfect")


class FutureReadError(HashcoreError):
    """A forecast that may only look back asked the signal about a time after now."""


class PastOnly:
    """A signal as a causal forecast sees it: :meth:`at` answers only for ``t <= now``."""

    def __init__(self, signal: Signal, clock: Clock) -> None:
        self.signal = signal
        self.clock = clock

    @property
    def has_carbon(self) -> bool:
        return self.signal.has_carbon

    @property
    def has_price(self) -> bool:
        return self.signal.has_price

    def at(self, t: float) -> SignalPoint:
        now = self.clock.now()
        if t > now + 1e-9:
            raise FutureReadError(f"asked for the signal at {t:.3f}, {t - now:.3f} s after now")
        return self.signal.at(t)

    def refresh(self, t: float) -> None:
        self.signal.refresh(t)

    def describe(self) -> str:
        return f"the past of {self.signal.describe()}"


class Forecast(Protocol):
    name: str

    def predict(self, now: float, times: np.ndarray) -> np.ndarray:
        """The budget (W) expected at ``times`` (each at or after ``now``)."""
        ...


class Persistence:
    """The recent past goes on: the mean of the last ``window_s``, sampled every ``sample_s``."""

    name = "persistence"

    def __init__(self, past: Signal, window_s: float = 300.0, sample_s: float = 30.0) -> None:
        self.past = past
        self.window_s = window_s
        self.sample_s = sample_s
        self._level: tuple[float, float] | None = None  # (when, level)

    def level(self, now: float) -> float:
        cached = self._level
        if cached is not None and 0 <= now - cached[0] < self.sample_s:
            return cached[1]
        samples = int(self.window_s // self.sample_s) + 1
        level = sum(self.past.at(now - k * self.sample_s).watts for k in range(samples)) / samples
        self._level = (now, level)
        return level

    def predict(self, now: float, times: np.ndarray) -> np.ndarray:
        return np.full(len(times), self.level(now))


@dataclass(frozen=True, slots=True)
class SolarSite:
    """What a clear-sky forecast needs to know about the site (from the trace's notes,
    or ``--site-lat/--site-lon/--pv-kw/--load-kw``)."""

    lat: float
    lon: float
    pv_kw: float
    load_kw: float
    load_profile: str = "residential"
    utc_offset_s: float = 0.0


_SITE_NOTE = re.compile(
    r"site (-?[\d.]+), (-?[\d.]+);.*PV ([\d.]+) kW DC; load (\w+) profile, mean ([\d.]+) kW")


def site_from_notes(trace: Trace) -> SolarSite | None:
    """The site a ``hashcore trace solar`` file was made for, from its notes (None: not one)."""
    for note in trace.notes:
        match = _SITE_NOTE.search(note)
        if match:
            lat, lon, pv, profile, load = match.groups()
            return SolarSite(float(lat), float(lon), float(pv), float(load), profile, trace.utc_offset_s)
    return None


class ClearSky:
    """pvlib clear sky × the recent cloud index, less the load (see the module docstring).

    The clear-sky output and the load are models of the sky and the site, computed once
    for ``[start, end]`` every ``step_s``; only the cloud index comes from readings.
    """

    name = "clearsky"

    def __init__(self, past: Signal, site: SolarSite, start: float, end: float, *, window_s: float = 1800.0,
                 step_s: float = 60.0, sample_s: float = 60.0) -> None:
        from hashcore.throttle.generate import clear_sky_ac, load_at

        self.past = past
        self.site = site
        self.window_s = window_s
        self.sample_s = sample_s
        self._t = np.arange(start - window_s - step_s, end + step_s, step_s, dtype=np.float64)
        self._pv = clear_sky_ac(site.lat, site.lon, site.pv_kw, self._t)
        self._load = load_at(self._t, site.utc_offset_s, site.load_kw, site.load_profile)
        self._peak = float(self._pv.max(initial=0.0))
        self._index: tuple[float, float] = (-math.inf, 1.0)  # (when, cloud index)

    def clear_sky(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The clear-sky PV output and the load (W) at ``times``."""
        return np.interp(times, self._t, self._pv), np.interp(times, self._t, self._load)

    def cloud_index(self, now: float) -> float:
        when, index = self._index
        if 0 <= now - when < self.sample_s:
            return index
        times = now - np.arange(0.0, self.window_s + 1e-9, self.sample_s)
        pv, load = self.clear_sky(times)
        exact: list[float] = []
        bounds: list[float] = []
        for t, clear, site_load in zip(times, pv, load, strict=True):
            if clear < 0.05 * self._peak:
                continue  # night and the low sun say nothing about clouds
            surplus = self.past.at(float(t)).watts
            (exact if surplus > 0 else bounds).append((surplus + site_load) / clear)
        if exact:
            index = min(1.2, float(np.mean(exact)))
        elif bounds:
            index = min(index, *bounds)
        self._index = (now, index)
        return index

    def predict(self, now: float, times: np.ndarray) -> np.ndarray:
        pv, load = self.clear_sky(times)
        return np.asarray(np.clip(self.cloud_index(now) * pv - load, 0.0, None), dtype=np.float64)


class Perfect:
    """The trace's own future: the bound no real forecast reaches."""

    name = "perfect"

    def __init__(self, signal: Signal) -> None:
        self.signal = signal

    def predict(self, now: float, times: np.ndarray) -> np.ndarray:
        if isinstance(self.signal, Trace):
            return self.signal.watts_at(times)
        return np.array([self.signal.at(float(t)).watts for t in times])


def make_forecast(name: str, signal: Signal, clock: Clock, *, site: SolarSite | None = None,
                  start: float = 0.0, end: float = 0.0) -> Forecast | None:
    """The forecast ``--forecast NAME`` names (None for ``none``); only ``perfect`` gets
    the signal itself, the others its past through :class:`PastOnly` on ``clock``."""
    if name == "none":
        return None
    if name == "perfect":
        if not isinstance(signal, Trace):
            raise ConfigError("--forecast perfect needs a trace: a live source has no future to read")
        return Perfect(signal)
    past = PastOnly(signal, clock)
    if name == "persistence":
        return Persistence(past)
    if name == "clearsky":
        if site is None and isinstance(signal, Trace):
            site = site_from_notes(signal)
        if site is None:
            raise ConfigError("--forecast clearsky needs the PV site: a trace made by 'hashcore trace solar', "
                              "or --site-lat, --site-lon, --pv-kw and --load-kw")
        return ClearSky(past, site, start, end)
    raise ConfigError(f"unknown forecast {name!r} (choose from {', '.join(FORECASTS)})")
