"""Policies: how much of the signal's budget mining may use right now.

Each policy caps the signal's budget (:meth:`Policy.limit`, infinite for no cap);
:func:`policy_budget` gives the budget mining may draw, ``min(watts, limit)``:

- ``follow``: the budget itself; never draw more than the surplus.
- ``carbon-cap``: the budget while grid carbon intensity is under the cap, else nothing.
- ``price``: the budget while the electricity price is under what a hash earns: each
  backend runs only while its break-even price (hashprice and its J/H) is above the
  price, so an efficient ASIC may mine at a price where a CPU may not.

A combination (``carbon-cap,price``) takes the smallest budget of its parts. The gates
switch with a hysteresis band (``hysteresis``, a fraction of the threshold): once shut
by crossing the threshold they reopen only a band below it, so a signal hovering at
the cap does not switch the fleet every tick. A reading that lacks the intensity or
the price shuts the gate: an unknown figure is not under any cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hashcore.errors import ConfigError
from hashcore.throttle.model import FleetModel
from hashcore.throttle.signals import Signal, SignalPoint

POLICY_NAMES = ("follow", "carbon-cap", "price")

#: Seconds in a day, and hashes per second in a PH/s: hashprice is quoted per PH/s per day.
_DAY_S = 86_400.0
_H_PER_PH = 1e15
_J_PER_KWH = 3.6e6


def breakeven_price(hashprice_per_ph_day: float, j_per_hash: float) -> float:
    """The electricity price per kWh at which a hash earns what its energy costs.

    Revenue per hash is hashprice / (1e15 H/s × 86,400 s); a kWh buys 3.6e6 / (J/H) hashes.
    An ASIC at 15 J/TH with hashprice 50 per PH/s/day breaks even at 0.139 per kWh.
    """
    return hashprice_per_ph_day / (_H_PER_PH * _DAY_S) * _J_PER_KWH / j_per_hash


class Policy(Protocol):
    name: str

    def limit(self, point: SignalPoint, fleet: FleetModel) -> float:
        """The most watts mining may draw at this point whatever the budget (inf: no cap).

        Called once per tick, in time order: gates keep their hysteresis state here.
        """
        ...

    def state(self) -> dict[str, Any]:
        """What the policy decided last, for the live view and reports."""
        ...


class _Gate:
    """Open below ``threshold``; once shut, open again only below threshold × (1 - band)."""

    __slots__ = ("band", "is_open", "threshold")

    def __init__(self, threshold: float, band: float) -> None:
        self.threshold = threshold
        self.band = band
        self.is_open = True

    def update(self, value: float | None) -> bool:
        if value is None:
            self.is_open = False
        elif self.is_open:
            self.is_open = value < self.threshold
        else:
            self.is_open = value < self.threshold - abs(self.threshold) * self.band
        return self.is_open


@dataclass(slots=True)
class FollowBudget:
    """Use the surplus, all of it and no more."""

    name: str = "follow"

    def limit(self, point: SignalPoint, fleet: FleetModel) -> float:
        return math.inf

    def state(self) -> dict[str, Any]:
        return {}


@dataclass(slots=True)
class CarbonCap:
    """Mine (within the budget) only while intensity is under ``cap_g`` gCO2/kWh."""

    cap_g: float
    hysteresis: float = 0.02
    name: str = "carbon-cap"
    _gate: _Gate = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cap_g) and self.cap_g > 0):
            raise ConfigError(f"--carbon-cap must be a positive gCO2/kWh, not {self.cap_g}")
        self._gate = _Gate(self.cap_g, self.hysteresis)

    def limit(self, point: SignalPoint, fleet: FleetModel) -> float:
        self._last = point.gco2_per_kwh
        return math.inf if self._gate.update(point.gco2_per_kwh) else 0.0

    def state(self) -> dict[str, Any]:
        return {"carbon_cap_g": self.cap_g, "gco2_per_kwh": self._last, "carbon_gate_open": self._gate.is_open}


@dataclass(slots=True)
class PriceCeiling:
    """Run each backend only while the price is under its break-even price.

    Attributes:
        hashprice: revenue per PH/s per day, in the trace's currency.
        ceiling: a fixed price per kWh to use instead of the break-even price.
    """

    hashprice: float = 50.0
    ceiling: float | None = None
    hysteresis: float = 0.02
    name: str = "price"
    _gates: dict[str, _Gate] = field(init=False, default_factory=dict)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.hashprice) and self.hashprice > 0):
            raise ConfigError(f"--hashprice must be positive, not {self.hashprice}")
        if self.ceiling is not None and not math.isfinite(self.ceiling):
            raise ConfigError(f"--price-ceiling must be a number, not {self.ceiling}")

    def price_limit(self, j_per_hash: float) -> float:
        """The highest price per kWh at which a backend of this J/H mines."""
        return self.ceiling if self.ceiling is not None else breakeven_price(self.hashprice, j_per_hash)

    def limit(self, point: SignalPoint, fleet: FleetModel) -> float:
        self._last = point.price
        allowed = 0.0
        for b in fleet.backends:
            gate = self._gates.get(b.name)
            if gate is None:
                gate = self._gates[b.name] = _Gate(self.price_limit(b.j_per_hash), self.hysteresis)
            if gate.update(point.price):
                allowed += b.full_watts
        return allowed if allowed < fleet.full_watts else math.inf

    def state(self) -> dict[str, Any]:
        return {
            "price": self._last,
            "hashprice_per_ph_day": self.hashprice,
            "price_limits": {n: g.threshold for n, g in self._gates.items()},
            "price_gates_open": {n: g.is_open for n, g in self._gates.items()},
        }


@dataclass(slots=True)
class Combined:
    """Several policies at once: the smallest budget wins."""

    parts: Sequence[Policy]
    name: str = ""

    def __post_init__(self) -> None:
        self.name = ",".join(p.name for p in self.parts)

    def limit(self, point: SignalPoint, fleet: FleetModel) -> float:
        # Every part sees every point, so each gate's hysteresis keeps its own history.
        return min([p.limit(point, fleet) for p in self.parts])

    def state(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for p in self.parts:
            merged.update(p.state())
        return merged


def policy_budget(policy: Policy, point: SignalPoint, fleet: FleetModel) -> float:
    """The watts mining may draw: the signal's budget under the policy's cap."""
    return min(max(0.0, point.watts), policy.limit(point, fleet))


def make_policy(
    spec: str,
    signal: Signal,
    *,
    carbon_cap: float | None = None,
    hashprice: float = 50.0,
    price_ceiling: float | None = None,
    hysteresis: float = 0.02,
) -> Policy:
    """The policy for ``--policy follow|carbon-cap|price`` (comma-separated to combine),
    checked against what the signal carries."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("--policy needs a name: follow, carbon-cap or price")
    parts: list[Policy] = []
    for name in dict.fromkeys(names):
        if name == "follow":
            parts.append(FollowBudget())
        elif name == "carbon-cap":
            if carbon_cap is None:
                raise ConfigError("--policy carbon-cap needs --carbon-cap GRAMS (gCO2/kWh)")
            if not signal.has_carbon:
                raise ConfigError(f"--policy carbon-cap needs carbon intensity, and {signal.describe()} has none "
                                  "(a trace's gco2_per_kwh column)")
            parts.append(CarbonCap(carbon_cap, hysteresis))
        elif name == "price":
            if not signal.has_price:
                raise ConfigError(f"--policy price needs a price, and {signal.describe()} has none "
                                  "(a trace's price column)")
            parts.append(PriceCeiling(hashprice, price_ceiling, hysteresis))
        else:
            raise ConfigError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)}, comma-separated)")
    return parts[0] if len(parts) == 1 else Combined(parts)
