"""The controller live: an asyncio task that throttles a running Miner to a budget.

Each tick (``tick_s`` of the clock) it reads the miner's energy counters
(``miner.stats().energy``: cumulative joules, so the power is the average over exactly
the tick that ended), subtracts the host's idle floor, books the tick, reads the signal,
lets the policy cap it and hands budget and measurement to the same
:class:`~hashcore.throttle.controller.Controller` the simulation runs. Pausing is duty 0
and no active threads: the pool connection, the jobs and every share already found stay
as they are, and mining resumes where it was when the budget returns.

The idle floor: the labelled estimate counts only this process's CPU time, which is
already what mining adds, so the floor is 0. A measured source (RAPL, NVML, a board)
sees the whole device, so the throttle first holds the fleet paused for
``calibration_ticks`` ticks and takes the average as the floor (or uses ``idle_watts``).
With no energy source at all the controller runs on its model alone.

The operator may override the signal with :meth:`LiveThrottle.set_target` (the API's
and the dashboard's power target); ``set_target(None)`` hands control back to the
signal and policy. While the operator has paused the miner (``miner.paused``) the
controller does not learn from the silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from hashcore.errors import ConfigError
from hashcore.throttle.actuators import EngineKnobs, Knobs, default_chain
from hashcore.throttle.clock import Clock, RealClock
from hashcore.throttle.controller import Controller, ControllerConfig
from hashcore.throttle.figures import FigureBook
from hashcore.throttle.model import FleetModel
from hashcore.throttle.policies import Policy
from hashcore.throttle.signals import LiveSource, Signal, SignalPoint, Trace

log = logging.getLogger("hashcore.throttle.live")

#: Meter sources whose figure is only this process's CPU time: no idle floor inside.
_PROCESS_ONLY_SOURCES = ("estimate",)


@dataclass(slots=True)
class LivePlan:
    """Everything a live throttle needs that is decided before the miner starts.

    Attributes:
        signal / policy: the budget and how much of it to use.
        fleet: the power model (``hashcore bench`` figures, or a model file).
        tick_s: seconds between ticks (of the throttle's clock).
        align: ``start`` replays a trace from its first row when the throttle starts;
            ``wall`` reads it at the wall-clock time (a day-ahead schedule).
        idle_watts: the host's idle floor; None: 0 for the estimate, else calibrated.
        calibration_ticks: paused ticks to measure the floor with.
        config: the controller's gains.
        gpu_device: the GPU a GPU backend runs on (for its power limit).
    """

    signal: Signal
    policy: Policy
    fleet: FleetModel
    tick_s: float = 1.0
    align: str = "start"
    idle_watts: float | None = None
    calibration_ticks: int = 3
    config: ControllerConfig = field(default_factory=ControllerConfig)
    gpu_device: int | str | None = None


class LiveThrottle:
    """Throttles ``miner`` to ``plan``'s budget until stopped.

    ``start()`` after ``miner.start()`` (it applies the first budget at once, then ticks
    in a task); ``await stop()`` before ``miner.stop()``; ``status()`` at any time.
    """

    def __init__(self, miner: Any, plan: LivePlan, *, clock: Clock | None = None,
                 knobs: Knobs | None = None) -> None:
        self.miner = miner
        self.plan = plan
        self.clock = clock or RealClock()
        self.knobs = knobs or EngineKnobs(miner)
        missing = [n for n in plan.fleet.names if n not in miner.backend_names]
        if missing:
            raise ConfigError(f"the power model has {', '.join(missing)}, which the miner does not run")
        unmodelled = [n for n in miner.backend_names if n not in plan.fleet.names]
        if unmodelled:  # it would run at full power outside the budget
            raise ConfigError(f"the power model has no figures for {', '.join(unmodelled)}")
        chains = {b.name: default_chain(b, self.knobs, plan.gpu_device) for b in plan.fleet.backends}
        self.controller = Controller(plan.fleet, self.knobs, chains, plan.config)
        # A week of ticks for the p95; a live run may go on for months.
        self.book = FigureBook(plan.fleet.paused_watts, plan.fleet.full_watts,
                               max_samples=int(7 * 86_400 / plan.tick_s))
        self._task: asyncio.Task[None] | None = None
        self._offset = 0.0
        self._last: tuple[float, float, float] | None = None  # joules, seconds, hashes at the last tick
        self._point = SignalPoint(0.0)
        self._signal_t = 0.0
        self._budget = 0.0
        self._measured: float | None = None
        self._source = "none"
        self._idle: float | None = plan.idle_watts
        self._calibration: list[float] = []
        self._target: float | None = None
        self.ticks = 0
        self.error: str | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Apply the first budget now and tick from here on (needs a running loop)."""
        if self._task is not None:
            return
        signal = self.plan.signal
        now = self.clock.now()
        if self.plan.align == "start" and isinstance(signal, Trace):
            self._offset = signal.start - now
        # A live source has not been read yet: its budget is 0 (paused) until the first tick.
        self._tick_sync(now, self.miner.stats())
        self._task = asyncio.create_task(self._run(), name="hashcore-throttle")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.controller.close()

    async def _run(self) -> None:
        tick = self.plan.tick_s
        next_at = self.clock.now()
        while True:
            next_at += tick
            await self.clock.sleep(next_at - self.clock.now())
            now = self.clock.now()
            try:
                if isinstance(self.plan.signal, LiveSource):  # the one kind whose refresh does I/O
                    await asyncio.to_thread(self.plan.signal.refresh, now + self._offset)
                else:
                    self.plan.signal.refresh(now + self._offset)
                self._tick_sync(now, self.miner.stats())
                self.error = None
            except Exception as exc:  # a bad tick must not end throttling: pause and go on
                if str(exc) != self.error:
                    log.exception("throttle tick failed; the fleet is paused until a tick succeeds")
                self.error = str(exc)
                self.controller.step(0.0, None)
            if next_at < self.clock.now() - tick:
                next_at = self.clock.now()  # fell behind (a suspended host): do not race to catch up

    def set_target(self, watts: float | None) -> None:
        """Follow a fixed power target instead of the signal (None: back to the signal)."""
        if watts is not None and not (math.isfinite(watts) and watts >= 0):
            raise ConfigError(f"a power target must be a non-negative number of watts, not {watts}")
        self._target = watts

    # --- one tick ------------------------------------------------------------------------

    def _tick_sync(self, now: float, stats: Any) -> None:
        measured = self._measure(stats)
        t = now + self._offset
        point = self.plan.signal.at(t)
        cap = self.plan.policy.limit(point, self.plan.fleet)
        budget = min(point.watts, cap) if self._target is None else self._target
        if self._idle is None and self._source not in _PROCESS_ONLY_SOURCES and self._source != "none":
            self._calibrate(measured)
            budget_for_controller = 0.0
        else:
            budget_for_controller = budget
        operator_paused = bool(getattr(self.miner, "paused", False))
        usable = measured if self._source != "none" and not operator_paused else None
        self.controller.step(budget_for_controller, usable)
        self.book.full_w = self.controller.status()["full_w"]
        self._point, self._signal_t, self._budget = point, t, budget
        self.ticks += 1

    def _measure(self, stats: Any) -> float | None:
        """Average power above the idle floor over the tick that ended; books that tick."""
        if stats is None:
            return None
        energy = stats.energy
        self._source = str(energy.get("energy_source", "none"))
        sample = (float(energy.get("joules", 0.0)), float(stats.seconds), float(stats.hashes))
        last, self._last = self._last, sample
        if last is None or sample[1] - last[1] <= 0:
            return None
        dt = sample[1] - last[1]
        watts = (sample[0] - last[0]) / dt
        measured = max(0.0, watts - (self._idle or 0.0))
        self._measured = measured
        if self._idle is not None or self._source in _PROCESS_ONLY_SOURCES or self._source == "none":
            self.book.add(self._signal_t, dt, self._budget, measured, sample[2] - last[2],
                          self._point.gco2_per_kwh, self._point.price)
        return measured

    def _calibrate(self, measured: float | None) -> None:
        # The first measured tick still holds the tail of the scans running at start.
        if measured is not None and self.ticks > 1:
            self._calibration.append(measured)
        if len(self._calibration) >= self.plan.calibration_ticks:
            self._idle = sum(self._calibration) / len(self._calibration)
            log.info("idle floor measured at %.1f W (%s)", self._idle, self._source)

    # --- reporting -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Budget, measured power, settings and the run's figures so far (JSON-ready)."""
        controller = self.controller.status()
        calibrating = self._idle is None and self._source not in (*_PROCESS_ONLY_SOURCES, "none")
        fractions = [b["fraction"] or 0.0 for b in controller["backends"].values()]
        if calibrating:
            state = "calibrating"
        elif getattr(self.miner, "paused", False):
            state = "paused by operator"
        elif not any(fractions):
            state = "paused"
        elif all(f >= 0.999 for f in fractions):
            state = "full"
        else:
            state = "throttled"
        signal = self.plan.signal
        return {
            "state": state,
            "policy": self.plan.policy.name if self._target is None else "operator target",
            "signal": signal.describe(),
            "signal_time": self._signal_t,
            "signal_w": self._point.watts,
            "gco2_per_kwh": self._point.gco2_per_kwh,
            "price": self._point.price,
            "budget_w": self._budget,
            "target_w": self._target,
            "measured_w": self._measured,
            "power_w": self._measured,
            "energy_source": self._source,
            "idle_w": self._idle,
            "policy_state": self.plan.policy.state(),
            "controller": controller,
            "signal_error": getattr(signal, "error", None),
            "error": self.error,
            "ticks": self.ticks,
            "figures": self.book.figures().to_json(),
        }
