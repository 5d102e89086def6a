"""A site battery: what it takes in, gives out and loses, to the millijoule.

The books are integer millijoules, so energy is conserved exactly: over any run,
``in - losses - out == stored at the end - stored at the start``. ``in`` is the energy
the battery took at its terminals (from surplus the miners could not use), ``out`` what
it delivered to the miners, and the losses are the round trip's: charging stores
``in × sqrt(rte)``, discharging delivers ``taken × sqrt(rte)`` (``rte`` 0.92 by default,
about what today's lithium systems do AC to AC). The state of charge stays within
``[soc_min, soc_max]`` of the capacity, and the terminals within ``power_kw`` each way.

Live, the battery is not ours to drive: the application reads its state of charge (and
optionally the power it may deliver) from a file or URL
(:class:`hashcore.app.sources.LiveBatteryState`), parsed here by
:func:`battery_reading_from_text`, so the throttle knows how much the miners may draw
from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hashcore.errors import ConfigError

_MJ_PER_KWH = 3_600_000_000
#: The largest battery (kWh) and the most it may move (kW): a terawatt-hour, a terawatt,
#: beyond any battery; its books stay in exact integers.
MAX_BATTERY_KWH = 1e9


@dataclass(frozen=True, slots=True)
class BatteryConfig:
    """A battery's size and limits.

    Attributes:
        capacity_kwh: usable capacity at 100% state of charge.
        power_kw: the most it takes or gives at its terminals.
        round_trip: AC-to-AC efficiency of a full cycle (0 < rte <= 1).
        soc_min / soc_max: the state of charge it is held within.
        soc_start: the state of charge a simulation starts at.
    """

    capacity_kwh: float
    power_kw: float
    round_trip: float = 0.92
    soc_min: float = 0.10
    soc_max: float = 0.95
    soc_start: float = 0.50

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity_kwh) and 0 < self.capacity_kwh <= MAX_BATTERY_KWH):
            raise ConfigError(f"--battery-kwh must be above 0 and at most {MAX_BATTERY_KWH:g}, not {self.capacity_kwh}")
        if not (math.isfinite(self.power_kw) and 0 < self.power_kw <= MAX_BATTERY_KWH):
            raise ConfigError(f"--battery-kw must be above 0 and at most {MAX_BATTERY_KWH:g}, not {self.power_kw}")
        if not 0 < self.round_trip <= 1:
            raise ConfigError(f"--battery-efficiency must be in (0, 1], not {self.round_trip}")
        if not 0 <= self.soc_min < self.soc_max <= 1:
            raise ConfigError(f"state-of-charge limits must satisfy 0 <= min < max <= 1, not "
                              f"{self.soc_min}, {self.soc_max}")
        if not self.soc_min <= self.soc_start <= self.soc_max:
            raise ConfigError(f"--battery-soc-start must be within [{self.soc_min}, {self.soc_max}], "
                              f"not {self.soc_start}")

    @property
    def capacity_mj(self) -> int:
        return round(self.capacity_kwh * _MJ_PER_KWH)

    @property
    def one_way(self) -> float:
        """The efficiency of each direction: the square root of the round trip."""
        return math.sqrt(self.round_trip)

    def to_json(self) -> dict[str, Any]:
        return {"capacity_kwh": self.capacity_kwh, "power_kw": self.power_kw, "round_trip": self.round_trip,
                "soc_min": self.soc_min, "soc_max": self.soc_max, "soc_start": self.soc_start}


class Battery:
    """A battery's state and books (integer millijoules; see the module docstring)."""

    def __init__(self, config: BatteryConfig) -> None:
        self.config = config
        capacity = config.capacity_mj
        self.min_mj = math.ceil(capacity * config.soc_min)
        self.max_mj = math.floor(capacity * config.soc_max)
        self.stored_mj = min(self.max_mj, max(self.min_mj, round(capacity * config.soc_start)))
        self.start_mj = self.stored_mj
        self.in_mj = self.out_mj = self.loss_mj = 0
        self._eta = config.one_way
        self._power_w = config.power_kw * 1000.0

    @property
    def soc(self) -> float:
        return self.stored_mj / self.config.capacity_mj

    def room_w(self, dt: float) -> float:
        """The most it can take over ``dt`` seconds (W at its terminals)."""
        return min(self._power_w, (self.max_mj - self.stored_mj) / self._eta / 1000.0 / dt)

    def available_w(self, dt: float) -> float:
        """The most it can deliver over ``dt`` seconds (W at its terminals)."""
        return min(self._power_w, (self.stored_mj - self.min_mj) * self._eta / 1000.0 / dt)

    def deliverable_j(self) -> float:
        """The energy it could still deliver, down to ``soc_min``."""
        return (self.stored_mj - self.min_mj) * self._eta / 1000.0

    def charge(self, watts: float, dt: float) -> float:
        """Offer ``watts`` for ``dt`` seconds; returns the watts it took."""
        if watts <= 0 or dt <= 0:
            return 0.0
        offered = math.floor(min(watts, self._power_w) * dt * 1000.0)
        # Take no more than fits: stored += floor(taken × eta) must stay under the maximum.
        fits = math.floor((self.max_mj - self.stored_mj) / self._eta)
        taken = max(0, min(offered, fits))
        stored = min(math.floor(taken * self._eta), self.max_mj - self.stored_mj)
        self.stored_mj += stored
        self.in_mj += taken
        self.loss_mj += taken - stored
        return taken / 1000.0 / dt

    def discharge(self, watts: float, dt: float) -> float:
        """Ask for ``watts`` over ``dt`` seconds; returns the watts it delivered."""
        if watts <= 0 or dt <= 0:
            return 0.0
        wanted = math.floor(min(watts, self._power_w) * dt * 1000.0)
        taken = min(math.ceil(wanted / self._eta), self.stored_mj - self.min_mj)
        if taken <= 0:
            return 0.0
        delivered = min(wanted, math.floor(taken * self._eta))
        self.stored_mj -= taken
        self.out_mj += delivered
        self.loss_mj += taken - delivered
        return delivered / 1000.0 / dt

    def conservation_mj(self) -> int:
        """``in - losses - out - (stored - stored at start)``: zero, always."""
        return self.in_mj - self.loss_mj - self.out_mj - (self.stored_mj - self.start_mj)

    def summary(self) -> dict[str, Any]:
        return {
            **self.config.to_json(),
            "soc_end": self.soc,
            "stored_start_j": self.start_mj / 1000.0,
            "stored_end_j": self.stored_mj / 1000.0,
            "battery_in_j": self.in_mj / 1000.0,
            "battery_out_j": self.out_mj / 1000.0,
            "battery_loss_j": self.loss_mj / 1000.0,
            "conservation_error_j": self.conservation_mj() / 1000.0,
        }


@dataclass(frozen=True, slots=True)
class BatteryReading:
    """A live battery's state: its state of charge (0-1) and, when it says, the most it
    may deliver to the miners now (W)."""

    soc: float
    available_w: float | None = None


def battery_reading_from_text(text: str, where: str, loads: Callable[[str], Any]) -> BatteryReading:
    """A bare state of charge (0-1, or a percentage above 1), or JSON ``{"soc": ...,
    "available_w": ...}`` (decoded by ``loads``: the application's bounded decoder)."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"{where}: empty battery reading")
    available: float | None = None
    try:
        if stripped.startswith("{"):
            data = loads(stripped)
            soc = _json_number(data["soc"])
            if data.get("available_w") is not None:
                available = _json_number(data["available_w"])
        else:
            soc = float(stripped)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # an integer beyond a float overflows
        raise ConfigError(f"{where}: a battery reading is a state of charge or JSON with 'soc' ({exc})") from None
    if soc > 1.0:
        soc /= 100.0
    if not (math.isfinite(soc) and 0 <= soc <= 1):
        raise ConfigError(f"{where}: state of charge {soc} is outside 0-1 (or 0-100%)")
    if available is not None and not (math.isfinite(available) and available >= 0):
        raise ConfigError(f"{where}: available_w must be zero or more, not {available}")
    return BatteryReading(soc, available)


def _json_number(value: Any) -> float:
    """A JSON figure as a float: a number or numeric text, never true or false (nor an
    integer beyond a float: OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{str(value)[:40]!r} is not a number")
    return float(value)
