"""The controller live: an asyncio task that throttles a running Miner to a budget.

Each tick (``tick_s`` of the clock) it reads the miner's energy counters
(``miner.stats().energy``: cumulative joules, so the power is the average over exactly
the tick that ended), subtracts the host's idle floor, books the tick, reads the signal,
lets the policy cap it and hands budget and measurement to the same
:class:`~hashcore.throttle.controller.Controller` the simulation runs. Everything it
reads of the miner goes through the few functions at the end of this module
(:func:`_backend_names`, :func:`_snapshot`, :func:`_energy_sample`, :func:`_accepted_shares`,
:func:`_operator_paused`, :func:`_has_operating_points`). Pausing is duty 0
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

A site battery, where the plan has one, is read live (:class:`LiveBatteryState`: its
state of charge from a file or URL); the dispatcher lets the miners lean on it through
short lulls of the surplus (and at night only where the policy's grid gate allows), as
in a simulation. Every tick is booked in a carbon account (energy by source, Scope 2
emissions, per TH and per accepted share): :meth:`LiveThrottle.carbon_account`, and
:meth:`LiveThrottle.write_run` for ``hashcore report``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hashcore.app.actuators import EngineKnobs, live_chain
from hashcore.app.sources import LiveBatteryState, LiveSource
from hashcore.control import MinerControl, MinerStats
from hashcore.errors import ConfigError
from hashcore.report.account import AccountSettings, CarbonAccount, CarbonBook
from hashcore.report.run import SERIES_COLUMNS, series_columns, write_run_files
from hashcore.throttle.actuators import Knobs
from hashcore.throttle.clock import Clock, RealClock
from hashcore.throttle.controller import Controller, ControllerConfig
from hashcore.throttle.dispatch import Dispatcher
from hashcore.throttle.figures import FigureBook
from hashcore.throttle.model import FleetModel
from hashcore.throttle.policies import Policy
from hashcore.throttle.signals import Signal, SignalPoint, Trace

log = logging.getLogger("hashcore.throttle.live")

T = TypeVar("T")

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
        battery: the site battery's live state, if the site has one.
        account: how to keep the carbon account.
        actuator: ``duty`` (threads and duty cycle) or ``dvfs`` (operating points first,
            for backends with an efficiency curve and clock/voltage knobs).
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
    battery: LiveBatteryState | None = None
    account: AccountSettings = field(default_factory=AccountSettings)
    actuator: str = "duty"


class LiveBatteryView:
    """A live battery's state as the dispatcher asks for it (at the tick's time ``t``, set
    by the owner before each decision)."""

    def __init__(self, state: LiveBatteryState) -> None:
        self.state = state
        self.t = 0.0

    def available_w(self, dt: float) -> float:
        return self.state.available_w(self.t)

    def deliverable_j(self) -> float:
        reading = self.state.reading(self.t)
        if reading is None:
            return 0.0
        config = self.state.config
        return max(0.0, reading.soc - config.soc_min) * config.capacity_kwh * 3.6e6 * config.one_way


#: Seconds per row of a live run's series (what ``hashcore report`` plots).
_SERIES_BUCKET_S = 60.0
#: Rows kept: a week of minutes.
_SERIES_ROWS = 7 * 1440


class LiveThrottle:
    """Throttles ``miner`` to ``plan``'s budget until stopped.

    ``start()`` after ``miner.start()`` (it applies the first budget at once, then ticks
    in a task); ``await stop()`` before ``miner.stop()``; ``status()`` at any time.
    """

    def __init__(self, miner: MinerControl, plan: LivePlan, *, clock: Clock | None = None,
                 knobs: Knobs | None = None) -> None:
        self.miner = miner
        self.plan = plan
        self.clock = clock or RealClock()
        self.knobs = knobs or EngineKnobs(miner)
        running = _backend_names(miner)
        missing = [n for n in plan.fleet.names if n not in running]
        if missing:
            raise ConfigError(f"the power model has {', '.join(missing)}, which the miner does not run")
        unmodelled = [n for n in running if n not in plan.fleet.names]
        if unmodelled:  # it would run at full power outside the budget
            raise ConfigError(f"the power model has no figures for {', '.join(unmodelled)}")
        if plan.actuator == "dvfs":
            lacking = [b.name for b in plan.fleet.backends if not _has_operating_points(miner, b.name)]
            if lacking:
                raise ConfigError(f"--actuator dvfs: {', '.join(lacking)} has no clock or voltage control here")
        chains = {b.name: live_chain(b, self.knobs, plan.actuator, plan.gpu_device) for b in plan.fleet.backends}
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
        self._battery = LiveBatteryView(plan.battery) if plan.battery is not None else None
        self.dispatcher = Dispatcher(plan.fleet.paused_watts + plan.fleet.span_watts, plan.fleet.paused_watts,
                                     battery=self._battery,
                                     night_gate=any(n in plan.policy.name for n in ("carbon-cap", "price")))
        self._discharge_ok = False
        self._dispatch_w = 0.0
        self.carbon: CarbonBook | None = None
        self._bucket: list[list[float]] = []
        self.series: list[tuple[float, ...]] = []

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
        self._tick_sync(now, _snapshot(self.miner))
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
                    await in_daemon_thread(self.plan.signal.refresh, now + self._offset)
                else:
                    self.plan.signal.refresh(now + self._offset)
                if self.plan.battery is not None:
                    await in_daemon_thread(self.plan.battery.refresh, now)
                self._tick_sync(now, _snapshot(self.miner))
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

    def _tick_sync(self, now: float, stats: MinerStats) -> None:
        measured = self._measure(stats)
        t = now + self._offset
        point = self.plan.signal.at(t)
        cap = self.plan.policy.limit(point, self.plan.fleet)
        if self._battery is not None:
            self._battery.t = now
        decision = self.dispatcher.decide(t, self.plan.tick_s, point.watts, cap)
        self._discharge_ok = decision.discharge_ok and self._target is None
        self._dispatch_w = decision.budget_w
        budget = decision.budget_w if self._target is None else self._target
        if self._idle is None and self._source not in _PROCESS_ONLY_SOURCES and self._source != "none":
            self._calibrate(measured)
            budget_for_controller = 0.0
        else:
            budget_for_controller = budget
        operator_paused = _operator_paused(self.miner)
        usable = measured if self._source != "none" and not operator_paused else None
        self.controller.step(budget_for_controller, usable)
        self.book.full_w = self.controller.status()["full_w"]
        self._point, self._signal_t, self._budget = point, t, budget
        self.ticks += 1

    def _measure(self, stats: MinerStats) -> float | None:
        """Average power above the idle floor over the tick that ended; books that tick."""
        if stats is None:
            return None
        self._source, sample = _energy_sample(stats)
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
            self._book_carbon(dt, measured, sample[2] - last[2], stats)
        return measured

    def _book_carbon(self, dt: float, measured: float, hashes: float, stats: MinerStats) -> None:
        """The tick that ended, by source: the surplus first, then what the battery may
        give (it covers a draw beyond the surplus, as its inverter does), then the grid."""
        if self.carbon is None:
            self.carbon = CarbonBook(self.plan.account, self._signal_t)
        surplus = max(0.0, self._point.watts) if self.plan.account.budget_source == "surplus" else 0.0
        battery = 0.0
        if self._battery is not None and self._discharge_ok:
            battery = min(max(0.0, measured - surplus), self._battery.available_w(dt))
        self.carbon.add(self._signal_t, dt, measured, surplus_w=surplus, battery_w=battery,
                        curtailed_w=0.0 if self._battery is not None else max(0.0, surplus - measured),
                        gco2_per_kwh=self._point.gco2_per_kwh, hashes=hashes)
        accepted = _accepted_shares(stats)
        if accepted is not None:
            self.carbon.set_accepted_shares(accepted)
        grid = max(0.0, measured - surplus - battery)
        soc = math.nan
        if self.plan.battery is not None:
            reading = self.plan.battery.reading(self.clock.now())
            soc = math.nan if reading is None else reading.soc
        self._bucket.append([self._signal_t, surplus, self._budget, self._dispatch_w, measured, hashes / dt, soc,
                             -battery, grid, 0.0, math.nan,
                             math.nan if self._point.gco2_per_kwh is None else self._point.gco2_per_kwh,
                             math.nan if self._point.price is None else self._point.price])
        if self._signal_t - self._bucket[0][0] >= _SERIES_BUCKET_S:
            first = self._bucket[0][0]
            columns = list(zip(*self._bucket, strict=True))
            row = [first, *(_mean(c) for c in columns[1:])]
            self.series.append(tuple(row))
            del self.series[:-_SERIES_ROWS]
            self._bucket = []

    def carbon_account(self) -> CarbonAccount | None:
        """The run's carbon account so far (None before the first booked tick)."""
        return None if self.carbon is None else self.carbon.account()

    def write_run(self, directory: str) -> str:
        """Write the run folder ``hashcore report`` renders (see :mod:`hashcore.report.run`)."""
        status = self.status()
        account = self.carbon_account()
        meta = {"kind": "live", **status["figures"], "signal": status["signal"], "policy": status["policy"],
                "full_power_w": self.book.full_w, "paused_power_w": self.plan.fleet.paused_watts,
                "model_source": self.plan.fleet.source, "fleet": self.plan.fleet.to_json(), "tick_s": self.plan.tick_s,
                "actuator": self.plan.actuator, "forecast": "none", "battery_state": status.get("battery"),
                "utc_offset_s": getattr(self.plan.signal, "utc_offset_s", 0.0),
                **({} if account is None else {k: account.to_json()[k] for k in
                                               ("co2_location_g", "co2_market_g", "g_co2_per_th")})}
        rows = self.series or [tuple([self._signal_t, *[math.nan] * (len(SERIES_COLUMNS) - 1)])]
        write_run_files(directory, meta, series_columns(rows, SERIES_COLUMNS), account)
        return directory

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
        elif _operator_paused(self.miner):
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
            "dispatch": self.dispatcher.status(),
            "battery": None if self.plan.battery is None else self.plan.battery.status(self.clock.now()),
            "carbon": None if self.carbon is None else _carbon_summary(self.carbon.account()),
        }


async def in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on a daemon thread of its own, awaited.

    Unlike ``asyncio.to_thread`` (the loop's executor, which ``asyncio.run`` and the
    interpreter wait for at exit), a read that hangs here never holds up shutdown:
    cancelling the await returns at once, and the thread is left to end by itself.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = function(*args), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="hashcore-live-read", daemon=True).start()
    return await future


def _mean(values: tuple[float, ...]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _carbon_summary(account: CarbonAccount) -> dict[str, Any]:
    data = account.to_json()
    return {k: data[k] for k in ("surplus_j", "battery_j", "grid_j", "co2_location_g", "co2_market_g",
                                 "g_co2_per_th", "g_co2_per_share", "shares", "shares_kind")}


# --- what the throttle reads of the miner ----------------------------------------------


def _backend_names(miner: MinerControl) -> list[str]:
    """The backends the miner runs."""
    return list(miner.stats().backends)


def _snapshot(miner: MinerControl) -> MinerStats:
    """The miner's figures for one tick."""
    return miner.stats()


def _energy_sample(stats: MinerStats) -> tuple[str, tuple[float, float, float]]:
    """The energy source's name, and cumulative joules, seconds and hashes."""
    return stats.energy.source, (stats.energy.joules, stats.seconds, float(stats.hashes))


def _accepted_shares(stats: MinerStats) -> float | None:
    """Shares the pools accepted so far."""
    return float(stats.accepted)


def _operator_paused(miner: MinerControl) -> bool:
    """Whether the operator has paused the miner (the API's or the dashboard's pause)."""
    return miner.paused


def _has_operating_points(miner: MinerControl, backend: str) -> bool:
    """Whether ``backend`` has clock or voltage control on this miner."""
    return miner.has_operating_points(backend)
