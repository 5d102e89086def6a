"""What the site controller shows: one typed snapshot for the CLI, the site page and the
metrics (:class:`SiteView`), read through :class:`SiteSource`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from hashcore.telemetry import round_figure


def _figure(value: float | None, digits: int = 3) -> float | None:
    return round_figure(value, digits)


@dataclass(frozen=True, slots=True)
class SiteMinerView:
    """One miner now.

    Attributes:
        address / kind: where it is and what speaks there (``hashcore``, ``cgminer``, a
            pyasic firmware name).
        state: ``on``, ``asleep``, ``waking``, ``sleeping``, ``read-only``,
            ``unresponsive`` or ``down`` (:data:`hashcore.throttle.site.STATES`).
        watts: the power counted for it this tick (measured, or the stand-in while it
            does not answer).
        hashrate_hs / j_per_th: measured; None before it reports them.
        energy_j: the energy the site booked for it.
        allotted_w: what the allocator gave it.
        target_w: the power target the miner reports holding (None: none).
        control: how it can be steered: ``target``, ``sleep`` or ``none``.
        rank: its place in the cheapest-first order (None: not steered).
        locked: ``min_on`` / ``min_off`` while it may not switch, else None.
        since_s: seconds since it last switched on or off (None: never switched).
        energy_source: where its power figure comes from (None: not reported).
        error: the last failure to read or steer it (None: none).
        note: what the link said of it (why it cannot be steered).
    """

    address: str
    kind: str
    state: str
    watts: float | None
    hashrate_hs: float | None
    j_per_th: float | None
    energy_j: float
    allotted_w: float
    target_w: float | None
    control: str
    rank: int | None
    locked: str | None
    since_s: float | None
    energy_source: str | None
    error: str | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "state": self.state,
            "watts": _figure(self.watts),
            "hashrate_hs": _figure(self.hashrate_hs, 1),
            "j_per_th": _figure(self.j_per_th),
            "energy_j": _figure(self.energy_j),
            "allotted_w": _figure(self.allotted_w),
            "target_w": _figure(self.target_w),
            "control": self.control,
            "rank": self.rank,
            "locked": self.locked,
            "since_s": _figure(self.since_s, 1),
            "energy_source": self.energy_source,
            "error": self.error,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class SiteView:
    """The site now.

    Attributes:
        seconds / ticks: time and ticks booked since the start.
        tick_s: the tick; last_tick_cost_s: how long the last tick's work took.
        budget_w: the budget in force (after the policy and the battery's dispatch).
        surplus_w: the signal's watts before the policy (None before the first tick).
        usable_w: what the allocator may hand out (budget less headroom and trim).
        measured_w: the site's power over the last tick (None before the second tick).
        budget_energy_j / energy_j / energy_over_budget_j / absorbed_j / curtailed_j /
            hashes: the run's figures (:class:`hashcore.throttle.site.SiteBook`).
        policy: the policy's name; signal: what the budget is read from.
        signal_error: why the budget could not be read (the site then runs on zero).
        battery: the battery's state (None without one).
        co2_location_g / co2_market_g: the carbon account's emissions so far (None without
            an intensity).
        miners: every miner, in the configured order.
    """

    seconds: float
    ticks: int
    tick_s: float
    last_tick_cost_s: float | None
    budget_w: float
    surplus_w: float | None
    usable_w: float
    measured_w: float | None
    budget_energy_j: float
    energy_j: float
    energy_over_budget_j: float
    absorbed_j: float
    curtailed_j: float
    hashes: float
    policy: str
    signal: str
    signal_error: str | None
    battery: dict[str, Any] | None
    co2_location_g: float | None
    co2_market_g: float | None
    miners: tuple[SiteMinerView, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``hashcore site --json`` object (and ``GET /api/site``)."""
        return {
            "seconds": _figure(self.seconds),
            "budget_energy_j": _figure(self.budget_energy_j),
            "energy_j": _figure(self.energy_j),
            "energy_over_budget_j": _figure(self.energy_over_budget_j),
            "curtailed_j": _figure(self.curtailed_j),
            "absorbed_j": _figure(self.absorbed_j),
            "hashes": self.hashes if math.isfinite(self.hashes) else None,
            "ticks": self.ticks,
            "tick_s": self.tick_s,
            "last_tick_cost_s": _figure(self.last_tick_cost_s, 4),
            "budget_w": _figure(self.budget_w),
            "surplus_w": _figure(self.surplus_w),
            "usable_w": _figure(self.usable_w),
            "measured_w": _figure(self.measured_w),
            "policy": self.policy,
            "signal": self.signal,
            "signal_error": self.signal_error,
            "battery": self.battery,
            "co2_location_g": _figure(self.co2_location_g),
            "co2_market_g": _figure(self.co2_market_g),
            "miners": [m.to_json() for m in self.miners],
        }


class SiteSource(Protocol):
    """What presents a site reads: its snapshot now."""

    def view(self) -> SiteView: ...
