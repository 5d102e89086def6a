"""The dashboard's chart history: the last hour by the second, the last day by the minute.

One point is ``(t, hashrate_hs, watts, budget_w)`` with ``t`` in Unix seconds and any
figure ``None`` where it was not known (no throttle: no budget). The hour ring keeps the
points as sampled; the day ring keeps one mean per minute, so a replayed day-long trace
fits in 1,440 points whatever the sampling rate was.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

Point = tuple[float, float | None, float | None, float | None]

#: Points in the hour ring (one a second) and minutes in the day ring.
HOUR_POINTS = 3600
DAY_MINUTES = 1440


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _clean(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unknown figure is None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(slots=True)
class _Minute:
    """The samples of the minute being filled."""

    start: float
    hashrates: list[float] = field(default_factory=list)
    watts: list[float] = field(default_factory=list)
    budgets: list[float] = field(default_factory=list)

    def point(self) -> Point:
        return (self.start, _mean(self.hashrates), _mean(self.watts), _mean(self.budgets))


class History:
    """Two rings fed by one sampler: ``add`` once a second, read ``hour()`` or ``day()``.

    Args:
        hour_points: how many samples the hour ring keeps.
        day_minutes: how many minute means the day ring keeps.
        bucket_s: the width of one day-ring bucket in seconds.
    """

    def __init__(self, hour_points: int = HOUR_POINTS, day_minutes: int = DAY_MINUTES, bucket_s: float = 60.0) -> None:
        self._hour: deque[Point] = deque(maxlen=hour_points)
        self._day: deque[Point] = deque(maxlen=day_minutes)
        self._bucket_s = bucket_s
        self._minute: _Minute | None = None

    def add(self, t: float, hashrate_hs: float | None, watts: float | None, budget_w: float | None) -> Point:
        point = (float(t), _clean(hashrate_hs), _clean(watts), _clean(budget_w))
        if self._hour and point[0] < self._hour[-1][0]:
            # The clock went back (a replayed trace restarted): the old points no longer line up.
            self._hour.clear()
            self._day.clear()
            self._minute = None
        self._hour.append(point)
        start = math.floor(point[0] / self._bucket_s) * self._bucket_s
        if self._minute is None or start != self._minute.start:
            if self._minute is not None:
                self._day.append(self._minute.point())
            self._minute = _Minute(start)
        for values, value in zip(
            (self._minute.hashrates, self._minute.watts, self._minute.budgets), point[1:], strict=True
        ):
            if value is not None:
                values.append(value)
        return point

    def hour(self) -> list[Point]:
        """The samples of the last hour, oldest first."""
        if not self._hour:
            return []
        since = self._hour[-1][0] - 3600.0
        return [p for p in self._hour if p[0] > since]

    def day(self) -> list[Point]:
        """One mean per minute over the last day, oldest first; the current minute last."""
        points = list(self._day)
        if self._minute is not None:
            points.append(self._minute.point())
        if not points:
            return []
        since = points[-1][0] - 86400.0
        return [p for p in points if p[0] > since]
