"""Dispatch: the budget the controller follows each tick, from the surplus, a forecast
and a battery.

Without a forecast or a battery the budget is the policy's: ``min(surplus, cap)``.
With them, each tick:

- **Ramp ahead.** The controller lowers the budget to the lowest surplus the forecast
  expects within ``lead_s`` (twice the fleet's response time), so the fleet is already
  down when a drop comes instead of draining past it; with a battery to cover the
  transit it also rises that far ahead of an expected rise.
- **Carry.** While the surplus was there within the last ``carry_s`` (a passing cloud),
  or the forecast expects it back within ``carry_s``, the battery may hold the fleet at
  the recent level of the surplus (its mean over ``hold_s``). At night, that is beyond
  ``carry_s`` on either side, the battery serves the miners only where the policy has a
  grid gate (carbon cap, price) and it is open: the stored surplus could otherwise have
  served the site, so it counts as grid power for the policy. It then spreads what it
  holds over the time until the forecast's next surplus.
- **Make room.** Every ``replan_s`` the forecast's surplus over ``horizon_s`` (a day)
  says how much excess (surplus the fleet at full power cannot use, up to the battery's
  power) is coming; what will not fit in the battery's room is mined from the battery
  ahead of it, spread evenly over the time until the excess begins, so that none of it
  is curtailed. This holds at night too, whatever the policy: energy that would be
  curtailed tomorrow displaces nothing tonight.

A forecast predicts the raw surplus; the policy's cap applies on top.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hashcore.throttle.battery import Battery
from hashcore.throttle.forecast import Forecast


class BatteryView(Protocol):
    """What dispatch asks of a battery: a simulated :class:`Battery`, or a live one's state."""

    def available_w(self, dt: float) -> float: ...

    def deliverable_j(self) -> float: ...


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Dispatch settings (seconds; see the module docstring)."""

    lead_s: float = 0.5
    carry_s: float = 1800.0
    hold_s: float = 900.0
    horizon_s: float = 24 * 3600.0
    replan_s: float = 60.0
    sample_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    """One tick's dispatch.

    Attributes:
        budget_w: what the controller follows.
        policy_w: the policy's budget, ``min(surplus, cap)``.
        discharge_ok: whether the battery may cover the miners' draw beyond the surplus.
        reason: ``policy``, ``ramp-ahead``, ``carry``, ``night`` or ``make-room``.
    """

    budget_w: float
    policy_w: float
    discharge_ok: bool
    reason: str


class Dispatcher:
    """Decides each tick's budget; see the module docstring.

    Args:
        full_w / paused_w: the fleet's full and paused power.
        battery: the site battery, if any (making room needs a simulated one: its room).
        forecast: the forecast, if any.
        night_gate: whether the policy has a grid gate (carbon cap or price) that may
            let the battery serve the miners at night.
    """

    def __init__(self, full_w: float, paused_w: float, *, battery: BatteryView | None = None,
                 forecast: Forecast | None = None, night_gate: bool = False,
                 config: DispatchConfig | None = None) -> None:
        self.full_w = full_w
        self.paused_w = paused_w
        self.battery = battery
        self.forecast = forecast
        self.night_gate = night_gate
        self.config = config or DispatchConfig()
        self._floor_w = paused_w + 0.01 * (full_w - paused_w)  # less is no surplus to mine on
        self._recent: deque[tuple[float, float, float]] = deque()  # (t, watts × dt, dt) over hold_s
        self._recent_j = self._recent_s = 0.0
        self._last_surplus_at = -math.inf
        self._plan_at = -math.inf
        self._room_w = 0.0  # extra draw to make room for predicted excess
        self._next_surplus_at: float | None = None
        self.last: Decision | None = None

    def decide(self, t: float, dt: float, surplus_w: float, cap_w: float) -> Decision:
        cfg = self.config
        surplus_w = max(0.0, surplus_w)
        policy_w = min(surplus_w, cap_w)
        if surplus_w > self._floor_w:
            self._last_surplus_at = t
        hold = self._hold(t, dt, min(surplus_w, self.full_w))
        battery = self.battery
        budget, reason, discharge_ok = policy_w, "policy", False
        if self.forecast is not None:
            change = self._change_ahead(t, dt)
            if change < 0:
                budget, reason = max(0.0, policy_w + change), "ramp-ahead"
            elif change > 0 and battery is not None and battery.available_w(dt) > 0:
                budget, reason, discharge_ok = min(policy_w + change, cap_w, self.full_w), "ramp-ahead", True
        if battery is not None:
            available = battery.available_w(dt)
            if self.forecast is not None and isinstance(battery, Battery) and t - self._plan_at >= cfg.replan_s:
                self._plan(t, battery)
            if t - self._last_surplus_at <= cfg.carry_s or self._surplus_soon(t):
                discharge_ok = True
                held = min(hold, policy_w + available, cap_w)
                if held > budget:
                    budget, reason = held, "carry"
            elif self.night_gate and cap_w > 0 and available > 0:
                discharge_ok = True
                spread = min(self._night_level(t), available, cap_w)
                if spread > budget:
                    budget, reason = spread, "night"
            if self._room_w > 0 and available > 0:
                discharge_ok = True
                extra = min(self.full_w, policy_w + min(self._room_w, available), cap_w)
                if extra > budget:
                    budget, reason = extra, "make-room"
        decision = Decision(budget, policy_w, discharge_ok, reason)
        self.last = decision
        return decision

    def _hold(self, t: float, dt: float, watts: float) -> float:
        """The mean usable surplus over the last ``hold_s``, this tick's included."""
        recent = self._recent
        recent.append((t, watts * dt, dt))
        self._recent_j += watts * dt
        self._recent_s += dt
        while recent and recent[0][0] < t - self.config.hold_s:
            _, joules, seconds = recent.popleft()
            self._recent_j -= joules
            self._recent_s -= seconds
        return max(0.0, self._recent_j / self._recent_s) if self._recent_s > 0 else watts

    def _change_ahead(self, t: float, dt: float) -> float:
        """The change of surplus the forecast expects within the lead, against its own
        figure for now: the deepest drop, else the highest rise (0: none)."""
        assert self.forecast is not None
        lead = self.config.lead_s
        if lead <= 0:
            return 0.0
        count = max(2, math.ceil(2 * lead / dt))
        times = t + np.linspace(0.0, lead, count + 1)
        predicted = self.forecast.predict(t, times)
        now = float(predicted[0])
        low, high = float(predicted.min()), float(predicted.max())
        if low < now - 1e-9:
            return low - now
        return high - now if high > now + 1e-9 else 0.0

    def _plan(self, t: float, battery: Battery) -> None:
        """Predict the coming excess and how much room the battery must make for it."""
        assert self.forecast is not None
        cfg = self.config
        self._plan_at = t
        times = t + np.arange(cfg.sample_s, cfg.horizon_s + 1e-9, cfg.sample_s)
        predicted = self.forecast.predict(t, times)
        power = battery.config.power_kw * 1000.0
        excess = np.clip(predicted - self.full_w, 0.0, power)
        above = np.nonzero(predicted > self._floor_w)[0]
        self._next_surplus_at = float(times[above[0]]) if above.size else None
        starts = np.nonzero(excess > 0)[0]
        self._room_w = 0.0
        if not starts.size:
            return
        to_store_mj = float(excess.sum()) * cfg.sample_s * 1000.0 * battery.config.one_way
        need_mj = to_store_mj - (battery.max_mj - battery.stored_mj)
        if need_mj <= 0:
            return
        until = float(times[starts[0]]) - t
        if until > cfg.sample_s:
            self._room_w = need_mj * battery.config.one_way / 1000.0 / until

    def _surplus_soon(self, t: float) -> bool:
        return self._next_surplus_at is not None and self._next_surplus_at - t <= self.config.carry_s

    def _night_level(self, t: float) -> float:
        """Spread what the battery holds over the time to the next surplus (eight hours
        when no forecast says)."""
        assert self.battery is not None
        until = (self._next_surplus_at - t) if self._next_surplus_at is not None else 8 * 3600.0
        return min(self.full_w, self.battery.deliverable_j() / max(until, self.config.replan_s))

    def status(self) -> dict[str, Any]:
        last = self.last
        return {"reason": None if last is None else last.reason, "room_w": self._room_w,
                "hold_w": self._recent_j / self._recent_s if self._recent_s > 0 else None,
                "next_surplus_at": self._next_surplus_at}
