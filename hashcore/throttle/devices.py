"""Efficiency curves: a device's hashrate, power and J/TH at each operating point.

A curve comes from ``hashcore bench --sweep --json`` (measured where a knob is writable;
:func:`curve_from_sweep` parses the file's JSON) or from a model of a device kind
(``--device-model``, chosen in :mod:`hashcore.app.devices`):

- ``asic-bm1366``: the chip's V/f table and power model (the backend's, read by the
  application), anchored at the S19 XP's published 21.5 J/TH at the stock 485 MHz / 1200 mV;
- ``cpu`` and ``gpu`` (:func:`pstate_curve`): P-state models, voltage following the alpha-power law
  f ~ (V - Vt)**1.3 / V from the stock point down, power ``static + k f V**2`` (the
  figures are in :data:`_DEVICE_MODELS`; models, not measurements).

For a power budget the throttle runs a fleet on the curve's upper concave envelope
(:meth:`EfficiencyCurve.envelope`): below the most efficient point it duty-cycles that
point (the line from zero to it gives more hashes per watt than any slower point);
above it, machines split between the two neighbouring points, which is the most hashes
any mix of operating points gives for that power.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hashcore.errors import ConfigError

#: The device kinds ``--device-model`` knows (the ASIC curve comes from its chip model: hashcore.app.devices).
DEVICE_MODELS = ("cpu", "asic-bm1366", "gpu")


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One operating point of a device (or a fleet of them).

    Attributes:
        freq_mhz: the clock (MHz).
        voltage_mv: the core voltage (mV), where known.
        hashrate_hs: hashes per second.
        watts: power (W), above the host's idle floor.
    """

    freq_mhz: float
    voltage_mv: float | None
    hashrate_hs: float
    watts: float

    def __post_init__(self) -> None:
        if not (self.hashrate_hs > 0 and self.watts > 0 and math.isfinite(self.watts)):
            raise ConfigError(f"an operating point needs positive hashrate and watts, not {self}")

    @property
    def j_per_hash(self) -> float:
        return self.watts / self.hashrate_hs

    @property
    def j_per_th(self) -> float:
        return self.j_per_hash * 1e12

    def scaled(self, watts_factor: float, hashrate_factor: float) -> OperatingPoint:
        return replace(self, watts=self.watts * watts_factor, hashrate_hs=self.hashrate_hs * hashrate_factor)

    def to_json(self) -> dict[str, Any]:
        return {"freq_mhz": self.freq_mhz, "voltage_mv": self.voltage_mv, "hashrate_hs": self.hashrate_hs,
                "watts": self.watts, "j_per_th": self.j_per_th}


@dataclass(frozen=True, slots=True)
class Mix:
    """A fleet split between two operating points: ``share`` of it at ``high``."""

    low: OperatingPoint
    high: OperatingPoint
    share: float

    @property
    def watts(self) -> float:
        return self.low.watts + self.share * (self.high.watts - self.low.watts)

    @property
    def hashrate_hs(self) -> float:
        return self.low.hashrate_hs + self.share * (self.high.hashrate_hs - self.low.hashrate_hs)

    @property
    def freq_mhz(self) -> float:
        return self.low.freq_mhz + self.share * (self.high.freq_mhz - self.low.freq_mhz)


@dataclass(frozen=True, slots=True)
class EfficiencyCurve:
    """A device's operating points, slowest (least power) first.

    Attributes:
        device: what it describes (``asic-bm1366``, ``cpu``, a backend name...).
        points: the operating points, by rising power.
        source: where the figures come from (``model: ...``, ``sweep: ...``).
    """

    device: str
    points: tuple[OperatingPoint, ...]
    source: str = "model"

    def __post_init__(self) -> None:
        if not self.points:
            raise ConfigError(f"{self.device}: an efficiency curve needs at least one operating point")
        ordered = tuple(sorted(self.points, key=lambda p: p.watts))
        object.__setattr__(self, "points", ordered)

    @property
    def top(self) -> OperatingPoint:
        """The point drawing the most power (the stock point of a model)."""
        return self.points[-1]

    @property
    def best(self) -> OperatingPoint:
        """The point with the most hashes per joule."""
        return min(self.points, key=lambda p: p.j_per_hash)

    def envelope(self, floor_watts: float = 0.0) -> tuple[OperatingPoint, ...]:
        """The points worth running: the upper concave hull of (``floor_watts``, 0 H/s),
        what a paused device draws, and the points, from the most efficient point up (a
        point under the hull is beaten by a mix of its neighbours, or by duty-cycling the
        most efficient one)."""
        hull: list[tuple[float, float, OperatingPoint | None]] = [(floor_watts, 0.0, None)]
        for p in self.points:
            while len(hull) >= 2:
                (x1, y1, _), (x2, y2, _) = hull[-2], hull[-1]
                # Drop the last point while it lies on or under the line to the new one.
                if (y2 - y1) * (p.watts - x1) <= (p.hashrate_hs - y1) * (x2 - x1):
                    hull.pop()
                else:
                    break
            hull.append((p.watts, p.hashrate_hs, p))
        return tuple(q for _, _, q in hull if q is not None)

    def for_power(self, watts: float, floor_watts: float = 0.0) -> tuple[Mix, float]:
        """How to draw ``watts`` with the most hashes: the envelope's mix and the duty
        cycle under it (1 above the most efficient point; the top point above the top).
        ``floor_watts`` is what the device draws paused (duty 0)."""
        hull = self.envelope(floor_watts)
        lowest = hull[0]
        if watts <= lowest.watts:
            return Mix(lowest, lowest, 0.0), max(0.0, watts - floor_watts) / (lowest.watts - floor_watts)
        if watts >= hull[-1].watts:
            return Mix(hull[-1], hull[-1], 0.0), 1.0
        i = bisect_right([p.watts for p in hull], watts) - 1
        low, high = hull[i], hull[i + 1]
        return Mix(low, high, (watts - low.watts) / (high.watts - low.watts)), 1.0

    def hashrate_at(self, watts: float, floor_watts: float = 0.0) -> float:
        """The most hashes per second any mix of points (and duty) gives for ``watts``."""
        mix, duty = self.for_power(watts, floor_watts)
        return mix.hashrate_hs * duty

    def scaled(self, top_watts: float | None = None, top_j_per_th: float | None = None) -> EfficiencyCurve:
        """The same shape for a fleet: the top point at ``top_watts`` (hashrate scaled with
        it: more machines) and at ``top_j_per_th`` (every hashrate scaled by one factor)."""
        watts_factor = 1.0 if top_watts is None else top_watts / self.top.watts
        hash_factor = watts_factor
        if top_j_per_th is not None:
            hash_factor *= self.top.j_per_th / top_j_per_th
        return replace(self, points=tuple(p.scaled(watts_factor, hash_factor) for p in self.points))

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.points]


# --- models ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PStateModel:
    """A device whose voltage follows the alpha-power law below its stock point."""

    stock_mhz: float
    stock_mv: float
    threshold_mv: float
    min_mhz: float
    step_mhz: float
    static_fraction: float
    stock_watts: float
    stock_hashrate_hs: float
    source: str


#: Model figures (not measurements): an 8-core desktop CPU running the C backend (stock
#: 3.6 GHz at 1.25 V, 65 W, 460 MH/s: about 140,000 J/TH; a third of its power in uncore
#: and leakage, which does not scale), and a GPU running OpenCL SHA-256d (stock 1980 MHz
#: at 1.05 V, 300 W, 4 GH/s; a fifth static).
_DEVICE_MODELS: dict[str, _PStateModel] = {
    "cpu": _PStateModel(3600.0, 1250.0, 350.0, 1200.0, 200.0, 0.33, 65.0, 4.6e8,
                        "model: P-states 1.2-3.6 GHz, alpha-power law (Vt 0.35 V), 33% static"),
    "gpu": _PStateModel(1980.0, 1050.0, 400.0, 900.0, 90.0, 0.20, 300.0, 4.0e9,
                        "model: clocks 0.9-1.98 GHz, alpha-power law (Vt 0.40 V), 20% static"),
}


def _alpha_voltage(mhz: float, model: _PStateModel) -> float:
    """The voltage (mV) at which f ~ (V - Vt)**1.3 / V gives ``mhz``, rounded up to 5 mV."""
    def speed(mv: float) -> float:
        return float((mv - model.threshold_mv) ** 1.3 / mv)

    wanted = speed(model.stock_mv) * mhz / model.stock_mhz
    low, high = model.threshold_mv + 1e-6, model.stock_mv * 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if speed(middle) < wanted else (low, middle)
    return math.ceil(round(high, 6) / 5.0) * 5.0


def _pstate_curve(name: str, model: _PStateModel) -> EfficiencyCurve:
    points = []
    mhz = model.min_mhz
    frequencies = []
    while mhz < model.stock_mhz - 1e-9:
        frequencies.append(mhz)
        mhz += model.step_mhz
    frequencies.append(model.stock_mhz)
    for f in frequencies:
        mv = model.stock_mv if f == model.stock_mhz else _alpha_voltage(f, model)
        s = model.static_fraction
        ratio = s + (1 - s) * f * mv * mv / (model.stock_mhz * model.stock_mv * model.stock_mv)
        points.append(OperatingPoint(f, mv, model.stock_hashrate_hs * f / model.stock_mhz, model.stock_watts * ratio))
    return EfficiencyCurve(name, tuple(points), model.source)


def pstate_curve(name: str) -> EfficiencyCurve:
    """The P-state model curve of a device kind without a chip model (``cpu``, ``gpu``)."""
    model = _DEVICE_MODELS.get(name)
    if model is None:
        raise ConfigError(f"unknown device model {name!r} (choose from {', '.join(DEVICE_MODELS)})")
    return _pstate_curve(name, model)


def curve_from_points(device: str, rows: Iterable[dict[str, Any]], source: str = "sweep") -> EfficiencyCurve:
    """A curve from ``hashcore bench --sweep --json`` rows (freq_mhz, voltage_mv,
    hashrate_hs, watts)."""
    points = []
    for row in rows:
        try:
            voltage = row.get("voltage_mv")
            points.append(OperatingPoint(float(row["freq_mhz"]), None if voltage is None else float(voltage),
                                         float(row["hashrate_hs"]), float(row["watts"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{device}: an operating point needs freq_mhz, hashrate_hs and watts ({exc})") from None
    return EfficiencyCurve(device, tuple(points), source)


def curve_from_sweep(data: Any, where: str, default_device: str) -> EfficiencyCurve:
    """The curve in the JSON of ``hashcore bench --sweep --json`` (a list of points, or an
    object with ``points``); ``default_device`` names it when the points do not."""
    rows: Sequence[Any] = data.get("points", []) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{where}: expected the JSON list of 'hashcore bench --sweep --json'")
    device = str(rows[0].get("device", rows[0].get("backend", default_device)))
    return curve_from_points(device, rows, f"sweep: {where}")
