"""Readings for the site allocator's tests."""

from __future__ import annotations

from hashcore.throttle.site import TARGET, MinerReading


def reading(watts: float, j_per_th: float, *, asleep: bool = False, control: str = TARGET,
            target: float | None = None) -> MinerReading:
    rate = 0.0 if asleep or watts <= 0 else watts / j_per_th * 1e12
    return MinerReading(watts, rate, asleep, control, target)
