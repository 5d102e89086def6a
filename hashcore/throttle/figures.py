"""The figures of a throttled run, kept tick by tick (the same books live and simulated).

Definitions (every watt is power mining adds above the host's idle floor; B is the
policy's budget, at least 0; P the power drawn over the tick; Pp the paused power,
what a paused fleet still draws; Pf the full-duty power):

- ``energy_j`` = ∫ P.
- ``energy_over_budget_j`` = ∫ max(0, P - max(B, Pp)): what the controller could have
  avoided. ``floor_energy_j`` = ∫ max(0, min(P, Pp) - B): the part no controller can
  avoid, because even a paused fleet draws Pp. Together they are ∫ max(0, P - B).
- ``renewable_available_j`` = ∫ min(B, Pf): the usable surplus.
  ``renewable_absorbed_j`` = ∫ min(P, B) (also ``energy_inside_budget_j``).
  ``absorbed_fraction`` = absorbed / available (1.0: every usable watt was used).
- ``tracking_error_mean_w`` / ``tracking_error_p95_w``: the mean and 95th percentile,
  over the ticks where B > Pp, of |P - min(B, Pf)|: the distance from the budget the
  fleet can reach (a budget above full power is not an error of the controller).
- ``settle_time_s``: after each step (the reachable budget min(max(B, Pp), Pf) moving
  by more than ``step_fraction`` of Pf - Pp between ticks), the time from the step to
  the end of the last tick whose power was outside ±``settle_band`` × (Pf - Pp) of it,
  while the budget holds (until the next step, or until it moves by more than the band:
  following a moving budget is tracking, not settling); the longest over the run (``settle_time_p50_s``: the median).
  ``overshoot_w``: the furthest any tick went past the new budget, in the step's
  direction, while that budget held still.
- ``co2_g`` = ∫ P × intensity (location-based, when the signal has an intensity);
  ``cost`` = ∫ P × price (when it has a price).
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hashcore.report.account import J_PER_KWH


@dataclass(frozen=True, slots=True)
class Figures:
    """The report's numbers (see the module docstring for their definitions)."""

    seconds: float
    energy_j: float
    energy_over_budget_j: float
    floor_energy_j: float
    energy_inside_budget_j: float
    renewable_available_j: float
    renewable_absorbed_j: float
    absorbed_fraction: float | None
    tracking_error_mean_w: float | None
    tracking_error_p95_w: float | None
    settle_time_s: float | None
    settle_time_p50_s: float | None
    steps: int
    overshoot_w: float
    co2_g: float | None
    cost: float | None
    hashes: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FigureBook:
    """Accumulates :class:`Figures` one tick at a time.

    Args:
        paused_w: the fleet's paused power Pp.
        full_w: its full-duty power Pf (a live run updates it as it learns the fleet's
            real power; steps are still told against the first figure, so that learning
            does not read as steps).
        step_fraction / settle_band: what counts as a step, and as settled (fractions of
            the controllable power Pf - Pp).
        max_samples: keep at most this many tracking errors for the 95th percentile (a
            live run that goes on for weeks); the mean is kept over the whole run.
    """

    def __init__(self, paused_w: float, full_w: float, step_fraction: float = 0.1,
                 settle_band: float = 0.05, max_samples: int | None = None) -> None:
        self.paused_w = paused_w
        self.full_w = full_w
        self._step_full = full_w
        self.step_fraction = step_fraction
        self.settle_band = settle_band
        self.seconds = 0.0
        self.energy = self.over = self.floor = self.available = self.absorbed = 0.0
        self.hashes = 0.0
        self.co2: float | None = 0.0
        self.cost: float | None = 0.0
        self.errors = array("d")
        self.max_samples = max_samples
        self._error_sum = 0.0
        self._error_count = 0
        self.settles: list[float] = []
        self.overshoot = 0.0
        self._reach_before: float | None = None
        self._step_at: float | None = None
        self._step_sign = 0.0
        self._last_out: float | None = None

    def add(self, t: float, dt: float, budget_w: float, power_w: float, hashes: float = 0.0,
            gco2_per_kwh: float | None = None, price: float | None = None) -> None:
        """One tick [t, t + dt] with budget B, average power P and the hashes done."""
        paused, full = self.paused_w, self.full_w
        b = budget_w if budget_w > 0.0 else 0.0
        p = power_w
        self.seconds += dt
        self.energy += p * dt
        self.over += max(0.0, p - max(b, paused)) * dt
        self.floor += max(0.0, min(p, paused) - b) * dt
        self.available += min(b, full) * dt
        self.absorbed += min(p, b) * dt
        self.hashes += hashes
        if self.co2 is not None:
            self.co2 = None if gco2_per_kwh is None else self.co2 + p * dt / J_PER_KWH * gco2_per_kwh
        if self.cost is not None:
            self.cost = None if price is None else self.cost + p * dt / J_PER_KWH * price
        if b > paused:
            error = abs(p - min(b, full))
            self._error_sum += error
            self._error_count += 1
            self.errors.append(error)
            if self.max_samples is not None and len(self.errors) > self.max_samples:
                del self.errors[: len(self.errors) // 2]  # the p95 covers the recent past
        self._settling(t, dt, b, p)

    def _settling(self, t: float, dt: float, b: float, p: float) -> None:
        paused = self.paused_w
        span = max(self.full_w - paused, 1e-12)
        held = min(max(b, paused), self._step_full)
        before, self._reach_before = self._reach_before, held
        change = 0.0 if before is None else held - before
        moved = abs(change)
        if moved > self.step_fraction * max(self._step_full - paused, 1e-12):
            self._close_step()
            self._step_at, self._step_sign, self._last_out = t, 1.0 if change > 0 else -1.0, None
        elif moved > self.settle_band * span:
            self._close_step()  # the budget moves on: from here it is tracking, not settling
        if self._step_at is None:
            return
        reach = min(max(b, paused), self.full_w)
        if abs(p - reach) > self.settle_band * span:
            self._last_out = t + dt
        if before is not None and abs(held - before) <= 1e-9 * span:
            # Past a budget that held still; the tick a budget moves in is transit, not overshoot.
            self.overshoot = max(self.overshoot, self._step_sign * (p - reach))

    def _close_step(self) -> None:
        if self._step_at is not None:
            self.settles.append(0.0 if self._last_out is None else self._last_out - self._step_at)
            self._step_at = None

    def figures(self) -> Figures:
        settles = [*self.settles]
        if self._step_at is not None:
            settles.append(0.0 if self._last_out is None else self._last_out - self._step_at)
        errors = np.frombuffer(self.errors, dtype=np.float64) if len(self.errors) else None
        return Figures(
            seconds=self.seconds,
            energy_j=self.energy,
            energy_over_budget_j=self.over,
            floor_energy_j=self.floor,
            energy_inside_budget_j=self.absorbed,
            renewable_available_j=self.available,
            renewable_absorbed_j=self.absorbed,
            absorbed_fraction=self.absorbed / self.available if self.available > 0 else None,
            tracking_error_mean_w=self._error_sum / self._error_count if self._error_count else None,
            tracking_error_p95_w=float(np.percentile(errors, 95)) if errors is not None else None,
            settle_time_s=max(settles) if settles else None,
            settle_time_p50_s=float(np.median(settles)) if settles else None,
            steps=len(settles),
            overshoot_w=max(0.0, self.overshoot),
            co2_g=self.co2,
            cost=self.cost,
            hashes=self.hashes,
        )
