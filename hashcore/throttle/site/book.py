"""The site's energy figures, booked tick by tick."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class SiteBook:
    """The site's energy, tick by tick.

    Attributes:
        seconds: time booked.
        budget_energy_j: the budget's energy over that time.
        energy_j: what the miners drew (measured, or counted for a miner that did not answer).
        energy_over_budget_j: the part of each tick's energy above that tick's budget.
        absorbed_j: the part inside the budget.
        curtailed_j: what the miners gave up for the budget: their full power less what
            they drew, over the ticks they were held below it.
        hashes: hashes done.
        ticks: ticks booked.
    """

    seconds: float = 0.0
    budget_energy_j: float = 0.0
    energy_j: float = 0.0
    energy_over_budget_j: float = 0.0
    absorbed_j: float = 0.0
    curtailed_j: float = 0.0
    hashes: float = 0.0
    ticks: int = 0

    def add(self, dt: float, budget_w: float, energy_j: float, full_w: float, hashes: float = 0.0) -> None:
        """Book one tick of ``dt`` seconds: the budget in force, the energy drawn, the
        fleet's full power (of the miners that could run) and the hashes done."""
        if not (dt > 0 and math.isfinite(dt)):
            return
        budget_j = max(0.0, budget_w) * dt
        energy_j = max(0.0, energy_j)
        self.seconds += dt
        self.budget_energy_j += budget_j
        self.energy_j += energy_j
        self.energy_over_budget_j += max(0.0, energy_j - budget_j)
        self.absorbed_j += min(energy_j, budget_j)
        self.curtailed_j += max(0.0, max(0.0, full_w) * dt - energy_j)
        self.hashes += max(0.0, hashes)
        self.ticks += 1

    def to_json(self) -> dict[str, float | int]:
        return {
            "seconds": round(self.seconds, 3),
            "budget_energy_j": round(self.budget_energy_j, 3),
            "energy_j": round(self.energy_j, 3),
            "energy_over_budget_j": round(self.energy_over_budget_j, 3),
            "absorbed_j": round(self.absorbed_j, 3),
            "curtailed_j": round(self.curtailed_j, 3),
            "hashes": self.hashes,
            "ticks": self.ticks,
        }
