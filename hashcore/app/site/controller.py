"""The site controller live: one budget shared across many miners, tick by tick.

Each tick it reads every miner at once (at most :data:`MAX_CONCURRENT` connections, the
quick first, each read within the miner's deadline from the start of the reads), books
the tick that ended (from each miner's own energy counter, else its power times the
tick), reads the budget through the policy and dispatcher (battery, forecast) exactly as
the live throttle and the simulation do, lets :class:`~hashcore.throttle.site.SiteAllocator`
share it and sends the orders, each within its miner's deadline (a failed one is resent).

A battery is read live (``battery_state``) or modelled from the site's measured power
with the simulation's :class:`~hashcore.throttle.battery.Battery`, so a live site books
its battery and carbon account as a simulated one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.app.live import LiveBatteryView, in_daemon_thread
from hashcore.app.site.config import MinerEntry, SiteConfig
from hashcore.app.site.links import LinkReading, MinerLink, MinerLinkError
from hashcore.app.site.view import SiteMinerView, SiteView
from hashcore.app.site.wiring import open_link, site_battery, site_budget, site_forecast
from hashcore.app.sources import LiveSource
from hashcore.errors import ConfigError
from hashcore.lograte import RateLimitedLog
from hashcore.report.account import CarbonBook
from hashcore.report.run import SERIES_COLUMNS, series_columns, write_run_files
from hashcore.throttle.clock import Clock, ScaledClock, sleep_or_stop
from hashcore.throttle.dispatch import Dispatcher
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.signals import SignalPoint, Trace
from hashcore.throttle.site import (
    MAX_MINER_HASHRATE_HS,
    MAX_MINER_WATTS,
    REFUSED,
    TIMEOUT,
    MinerReading,
    Observation,
    Order,
    SiteAllocator,
    SiteBook,
)

log = logging.getLogger("hashcore.site")

#: The most miner connections open at once (reads, then orders).
MAX_CONCURRENT = 256
#: Why a miner waited its whole deadline for a connection.
_BUSY = "the {n} connections the site opens at once were all held by slower miners for its {s:g} s"
#: Per-tick rows kept for the run folder (a week of 2 s ticks; the folder keeps 1,440 means).
_SERIES_ROWS = 7 * 86_400 // 2


@dataclass(slots=True)
class _Miner:
    """What the controller keeps of one miner between ticks."""

    entry: MinerEntry
    link: MinerLink
    reading: LinkReading | None = None
    failure: str | None = None
    error: str | None = None          # why the last read failed
    order_error: str | None = None    # why the last order failed, until one is taken
    unordered: int = 0                # ticks since it was last sent an order
    reached: int = -1                 # the last round of reads it had a connection in
    slow: bool = False                # its last read took half its deadline or more
    counters: tuple[float, float | None, float | None] | None = None  # time, energy J, hashes
    energy_j: float = 0.0
    watts: float | None = None
    hashes: float = 0.0  # done over the tick that ended


class SiteController:
    """Runs a site; see the module docstring.

    Args:
        config: the site file, checked.
        links: each miner's link by address (None: opened from the config).
        clock: the controller's clock (a virtual one in tests; None: the wall's time at the
            start, moved on by the monotonic clock).
    """

    def __init__(self, config: SiteConfig, links: Mapping[str, MinerLink] | None = None, *,
                 clock: Clock | None = None) -> None:
        self.config = config
        # The wall's time at the start, kept by the monotonic clock: a wall clock stepped back
        # would hold the next tick and every minimum on/off time for the size of the step.
        self.clock = clock or ScaledClock(time.time(), 1.0)
        opened = dict(links) if links is not None else {e.address: open_link(e) for e in config.miners}
        missing = [e.address for e in config.miners if e.address not in opened]
        if missing:
            raise ConfigError(f"no link for {', '.join(missing)}")
        self._miners = {e.address: _Miner(e, opened[e.address]) for e in config.miners}
        self.allocator = SiteAllocator({e.address: e.rules for e in config.miners}, config.rules)
        self.book = SiteBook()
        self.signal, self.policy, self.account = site_budget(config)
        self._battery, self._live_battery = site_battery(config)
        self._live_view = LiveBatteryView(self._live_battery) if self._live_battery is not None else None
        forecast = site_forecast(config, self.signal, self.clock)
        full = sum(e.rules.max_watts or 0.0 for e in config.miners)
        self.dispatcher = Dispatcher(full, sum(e.rules.sleep_watts for e in config.miners),
                                     battery=self._battery or self._live_view, forecast=forecast,
                                     night_gate=any(n in self.policy.name for n in ("carbon-cap", "price")))
        self.carbon: CarbonBook | None = None
        self._offset = 0.0
        self._started: float | None = None
        self._last_t: float | None = None
        self._point = SignalPoint(0.0)
        self._budget = 0.0
        self._surplus: float | None = None
        self._discharge_ok = False
        self._usable = 0.0
        self._measured: float | None = None
        self._tick_cost: float | None = None
        self.signal_error: str | None = None
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT)
        self._round = 0
        self._errors = RateLimitedLog(log, interval=30.0)
        #: Called with the view after every tick (the CLI's live line).
        self.on_tick: Callable[[SiteView], None] | None = None
        self.series: deque[tuple[float, ...]] = deque(maxlen=_SERIES_ROWS)

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, duration: float | None = None, stop: asyncio.Event | None = None) -> SiteView:
        """Tick until ``duration`` seconds have passed or ``stop`` is set; returns the last view."""
        stop = stop or asyncio.Event()
        started = self.clock.now()
        next_at = started
        while not stop.is_set():
            await self.tick()
            if self.on_tick is not None:
                self.on_tick(self.view())
            next_at += self.config.tick_s
            if duration is not None and next_at - started > duration + 1e-9:
                break
            wait = next_at - self.clock.now()
            if wait < -self.config.tick_s:
                next_at = self.clock.now()  # fell behind: do not race to catch up
                continue
            await sleep_or_stop(self.clock, max(0.0, wait), stop)
        if duration is not None and not stop.is_set():
            await self._book_until(started + duration)
        return self.view()

    async def close(self) -> None:
        """Let go of every link, within the longest link deadline: the run folder is written after."""
        deadline = max(m.entry.timeout_s for m in self._miners.values()) + 1.0
        closing = asyncio.gather(*(m.link.close() for m in self._miners.values()), return_exceptions=True)
        try:
            await asyncio.wait_for(closing, deadline)
        except TimeoutError:
            log.warning("some miner links did not close within %g s; left behind", deadline)

    def write_run(self, directory: str) -> str:
        """Write the run folder ``hashcore report`` renders (see :mod:`hashcore.report.run`)."""
        view = self.view()
        figures = view.to_json()
        seconds = max(self.book.seconds, 1e-9)
        book = self.book
        meta = {
            "kind": "site", **figures, "signal": self.signal.describe(), "policy": self.policy.name,
            "tick_s": self.config.tick_s, "actuator": "site", "forecast": self.config.budget.forecast,
            "full_power_w": sum(p.full_w or 0.0 for p in self.allocator.plans().values()) or None,
            "model_source": "measured",
            "absorbed_fraction": book.absorbed_j / book.budget_energy_j if book.budget_energy_j else None,
            "mean_power_w": book.energy_j / seconds,
            "battery": self._battery.summary() if self._battery is not None else None,
            "utc_offset_s": getattr(self.signal, "utc_offset_s", 0.0),
        }
        rows = list(self.series) or [tuple([self._last_t or 0.0, *[math.nan] * (len(SERIES_COLUMNS) - 1)])]
        account = None if self.carbon is None else self.carbon.account()
        write_run_files(directory, meta, series_columns(rows, SERIES_COLUMNS), account)
        return directory

    # --- one tick ------------------------------------------------------------------------

    async def tick(self) -> None:
        """Read every miner, book the tick that ended, share the budget, send the orders."""
        began = time.perf_counter()
        now = self.clock.now()
        if self._started is None:
            self._started = now
            if self.config.budget_align == "start" and isinstance(self.signal, Trace):
                self._offset = self.signal.start - now
        await self._refresh_inputs(now)
        observations = await self._read_all(now)
        measured = self._book(now)
        self._decide(now)
        allocation = self.allocator.step(now, self._budget, observations, measured_w=measured)
        self._usable = allocation.usable_w
        await self._send(allocation.orders)
        self._tick_cost = time.perf_counter() - began

    async def _refresh_inputs(self, now: float) -> None:
        try:
            if isinstance(self.signal, LiveSource):  # the one kind whose refresh does I/O
                await in_daemon_thread(self.signal.refresh, now + self._offset)
            else:
                self.signal.refresh(now + self._offset)
            self.signal_error = getattr(self.signal, "error", None)
        except Exception as exc:  # a budget that cannot be read is a budget of zero, said once
            if str(exc) != self.signal_error:
                log.warning("the site's budget cannot be read (%s); the site runs on zero until it can", exc)
            self.signal_error = str(exc)
        if self._live_battery is not None:
            with contextlib.suppress(Exception):
                await in_daemon_thread(self._live_battery.refresh, now)

    async def _read_all(self, now: float) -> dict[str, Observation]:
        # The quick to answer first, then the slow, each the longest unread first: a silent
        # miner does not hold a connection another would have answered on in its deadline.
        self._round += 1
        miners = sorted(self._miners.values(), key=lambda m: (m.slow, m.reached))
        began = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(self._read(m, began) for m in miners))
        observations: dict[str, Observation] = {}
        for miner, result in zip(miners, results, strict=True):
            if isinstance(result, MinerLinkError):
                miner.failure, miner.error = result.failure, str(result)
                if result.failure == REFUSED:
                    miner.counters, miner.order_error = None, None  # it starts afresh when it returns
                observations[miner.entry.address] = result.failure
                continue
            miner.failure, miner.error = None, None
            observations[miner.entry.address] = self._observe(miner, result, now)
        return observations

    async def _read(self, miner: _Miner, began: float) -> LinkReading | MinerLinkError:
        """Read ``miner`` within its deadline from ``began``, the wait for a connection included."""
        address, timeout = miner.entry.address, miner.entry.timeout_s
        if not await self._slot(began + timeout):
            return MinerLinkError(f"{address}: not read this tick: {_BUSY.format(n=MAX_CONCURRENT, s=timeout)}",
                                  TIMEOUT)
        start, miner.reached = time.monotonic(), self._round
        try:
            async with asyncio.timeout_at(began + timeout + 1.0):  # past the link's own deadline: its bug
                return await miner.link.read()
        except MinerLinkError as exc:
            return exc
        except TimeoutError:
            return MinerLinkError(f"{address}: no answer within {timeout:g} s", TIMEOUT)
        except Exception as exc:  # a link's own bug must not end the site
            self._errors.warning("read", "reading %s failed: %s", address, exc)
            return MinerLinkError(f"{address}: {exc}", TIMEOUT)
        finally:
            miner.slow = time.monotonic() - start >= timeout / 2
            self._semaphore.release()

    async def _slot(self, deadline: float) -> bool:
        """Whether one of the connections was had by ``deadline`` (the caller releases it)."""
        try:
            async with asyncio.timeout_at(deadline):
                await self._semaphore.acquire()
        except TimeoutError:
            return False
        return True

    def _observe(self, miner: _Miner, result: LinkReading, now: float) -> MinerReading:
        """The reading the allocator gets: the power over the tick that ended from the
        miner's energy counter where it keeps one."""
        miner.reading = result
        reading = result.reading
        watts = reading.watts
        last, miner.counters = miner.counters, (now, result.energy_j, result.hashes)
        dt = now - last[0] if last is not None else 0.0
        miner.hashes = (reading.hashrate_hs or 0.0) * dt
        if last is not None and dt > 0:
            # A counter that went back belongs to a restarted miner, one that leapt further than
            # any machine runs to a miner's nonsense: the reported figures serve this once.
            if last[1] is not None and result.energy_j is not None and result.energy_j >= last[1]:
                counted = (result.energy_j - last[1]) / dt
                watts = counted if counted <= MAX_MINER_WATTS else watts
            if last[2] is not None and result.hashes is not None and result.hashes >= last[2]:
                done = result.hashes - last[2]
                miner.hashes = done if done <= MAX_MINER_HASHRATE_HS * dt else miner.hashes
        miner.watts = watts
        return MinerReading(watts, reading.hashrate_hs, reading.asleep, reading.control, reading.target_w)

    def _book(self, now: float) -> float | None:
        """Book the tick that ended at ``now``; returns the site's power over it."""
        last_t, self._last_t = self._last_t, now
        if last_t is None or now <= last_t:
            return None
        dt = now - last_t
        plans = self.allocator.plans()
        energy = hashes = full = 0.0
        for address, miner in self._miners.items():
            plan = plans[address]
            watts = plan.counted_w if miner.failure is not None or miner.watts is None else miner.watts
            energy_j = max(0.0, watts) * dt
            miner.energy_j += energy_j
            energy += energy_j
            if miner.failure is None and miner.reading is not None:
                hashes += miner.hashes
                if plan.full_w is not None:
                    full += plan.full_w
        self.book.add(dt, self._budget, energy, full, hashes)
        measured = energy / dt
        self._measured = measured
        self._book_battery_and_carbon(last_t, dt, measured, hashes)
        return measured

    def _book_battery_and_carbon(self, t: float, dt: float, measured: float, hashes: float) -> None:
        if self.carbon is None:
            self.carbon = CarbonBook(self.account, t + self._offset)
        surplus = max(0.0, self._point.watts) if self.account.budget_source == "surplus" else 0.0
        charged = delivered = loss_j = 0.0
        battery = self._battery
        if battery is not None:
            loss_before = battery.loss_mj
            if surplus >= measured:
                charged = battery.charge(surplus - measured, dt)
            elif self._discharge_ok:
                delivered = battery.discharge(measured - surplus, dt)
            loss_j = (battery.loss_mj - loss_before) / 1000.0
            curtailed = max(0.0, surplus - measured - charged)
        elif self._live_battery is not None:
            if self._discharge_ok:
                delivered = min(max(0.0, measured - surplus), self._live_battery.available_w(t))
            curtailed = 0.0
        else:
            curtailed = max(0.0, surplus - measured)
        self.carbon.add(t + self._offset, dt, measured, surplus_w=surplus, battery_w=delivered, curtailed_w=curtailed,
                        battery_in_w=charged, battery_loss_j=loss_j, gco2_per_kwh=self._point.gco2_per_kwh,
                        hashes=hashes)
        nan = math.nan
        soc = battery.soc if battery is not None else nan
        grid = max(0.0, measured - surplus - delivered)
        point = self._point
        self.series.append((t + self._offset, surplus, self._budget, self._usable, measured, hashes / dt, soc,
                            charged - delivered, grid, curtailed, nan,
                            nan if point.gco2_per_kwh is None else point.gco2_per_kwh,
                            nan if point.price is None else point.price))

    async def _book_until(self, end: float) -> None:
        """At the end of a timed run: book the last part tick at what the miners draw now."""
        if self._last_t is not None and end > self._last_t:
            await self._read_all(end)
            self._book(end)

    def _decide(self, now: float) -> None:
        t = now + self._offset
        if self._live_view is not None:
            self._live_view.t = now
        try:
            point = self.signal.at(t)  # a live source says 0 once its last reading is too old
        except Exception as exc:
            self.signal_error = str(exc)
            point = SignalPoint(0.0)
        cap = self.policy.limit(point, self._fleet_model())
        decision = self.dispatcher.decide(t, self.config.tick_s, point.watts, cap)
        self._point, self._surplus = point, point.watts
        self._budget, self._discharge_ok = decision.budget_w, decision.discharge_ok

    def _fleet_model(self) -> FleetModel:
        """The miners as the policy sees them: full power and hashrate, measured or configured."""
        models = []
        for address, plan in self.allocator.plans().items():
            full = plan.full_w or self._miners[address].entry.rules.max_watts
            j_per_th = plan.j_per_th or self._miners[address].entry.rules.j_per_th
            hashrate = full / j_per_th * 1e12 if full and j_per_th else 0.0
            if full and 0.0 < hashrate < math.inf:  # a miner that hashes next to nothing is left out
                models.append(BackendModel(address, full, hashrate, kind="asic", source="site"))
        if not models:  # nothing measured yet: one stand-in so the policy has a fleet to size
            models.append(BackendModel("site", 1.0, 1e9, source="site"))
        return FleetModel(tuple(models))

    async def _send(self, orders: tuple[Order, ...]) -> None:
        by_miner: dict[str, list[Order]] = {}
        for order in orders:
            by_miner.setdefault(order.address, []).append(order)
        began = asyncio.get_running_loop().time()
        await asyncio.gather(*(self._send_one(self._miners[a], o, began) for a, o in by_miner.items()))
        for address, miner in self._miners.items():
            if address not in by_miner:
                miner.unordered += 1
                # Left alone a whole confirmation: its telemetry shows the last order took.
                if miner.unordered > self.config.rules.confirm_ticks:
                    miner.order_error = None

    async def _send_one(self, miner: _Miner, orders: list[Order], began: float) -> None:
        """Send ``miner`` its orders, all within its deadline from ``began``."""
        miner.unordered, timeout, action = 0, miner.entry.timeout_s, orders[0].action
        if not await self._slot(began + timeout):
            miner.order_error = f"{action} not sent this tick: {_BUSY.format(n=MAX_CONCURRENT, s=timeout)}"
            return
        try:
            async with asyncio.timeout_at(began + timeout + 1.0):
                for order in orders:  # in order: a target before a wake
                    action = order.action
                    if order.action == "target" and order.watts is not None:
                        await miner.link.set_target(order.watts)
                    elif order.action in ("sleep", "wake"):
                        await (miner.link.sleep() if order.action == "sleep" else miner.link.wake())
            miner.order_error = None
        except Exception as exc:
            reason = str(exc) or f"no answer within {timeout:g} s"
            miner.order_error = f"{action} failed: {reason}"
            self._errors.warning("order", "%s: %s failed: %s", miner.entry.address, action, reason)
        finally:
            self._semaphore.release()

    # --- reporting -----------------------------------------------------------------------

    def view(self) -> SiteView:
        now = self.clock.now()
        plans = self.allocator.plans()
        miners = []
        for address, miner in self._miners.items():
            plan = plans[address]
            reading = miner.reading.reading if miner.reading is not None and miner.failure is None else None
            since = None if not math.isfinite(plan.since) else max(0.0, now - plan.since)
            miners.append(SiteMinerView(
                address=address, kind=miner.entry.kind, state=plan.state,
                watts=plan.counted_w if miner.failure is not None else miner.watts,
                hashrate_hs=None if reading is None else reading.hashrate_hs,
                j_per_th=plan.j_per_th, energy_j=miner.energy_j, allotted_w=plan.allotted_w,
                target_w=None if reading is None else reading.target_w,
                control=reading.control if reading is not None else "none",
                rank=plan.rank, locked=plan.locked, since_s=since,
                energy_source=None if miner.reading is None else miner.reading.energy_source,
                error=miner.error or miner.order_error, note="" if miner.reading is None else miner.reading.note))
        account = None if self.carbon is None else self.carbon.account()
        battery: dict[str, Any] | None = None
        if self._battery is not None:
            battery = {"soc": round(self._battery.soc, 4), **self._battery.summary()}
        elif self._live_battery is not None:
            battery = self._live_battery.status(now)
        book = self.book
        return SiteView(
            seconds=book.seconds, ticks=book.ticks, tick_s=self.config.tick_s, last_tick_cost_s=self._tick_cost,
            budget_w=self._budget, surplus_w=self._surplus, usable_w=self._usable, measured_w=self._measured,
            budget_energy_j=book.budget_energy_j, energy_j=book.energy_j,
            energy_over_budget_j=book.energy_over_budget_j, absorbed_j=book.absorbed_j, curtailed_j=book.curtailed_j,
            hashes=book.hashes, policy=self.policy.name, signal=self.signal.describe(),
            signal_error=self.signal_error, battery=battery,
            co2_location_g=None if account is None else account.co2_location_g,
            co2_market_g=None if account is None else account.co2_market_g,
            miners=tuple(miners))

