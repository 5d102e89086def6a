"""The Miner: jobs -> work -> backends -> verified shares -> submit, with accounting.

Threads and the event loop
--------------------------
The asyncio loop owns the pool connection (:class:`StratumClient`), every counter and
every decision about shares. Worker threads only scan: each takes a nonce range from
the shared :class:`WorkSource`, scans it with its backend and hands the result back to
the loop with ``call_soon_threadsafe``. On the loop :class:`~hashcore.shareflow.ShareFlow`
re-hashes each result with hashlib before anything is sent (false positives, stale jobs
and duplicates are counted and dropped there), sends the shares, counts the answers and
turns pool events into work templates, reading the session state (extranonce, version
mask, difficulty) from the Stratum protocol object.

Bounds: at most ``RESULT_SLOTS`` scan results wait for the loop (a worker blocks until
the loop catches up); the share rate is capped per connection (see ShareFlow). A
failing backend is retried with backoff instead of stopping its worker; ``stats()``
says what state each backend is in.

The counters live in :mod:`hashcore.accounting`; ``stats()`` is the typed snapshot of
:mod:`hashcore.control`, and the knobs (pause, duty, threads, operating point, pools) are
the methods :class:`hashcore.control.MinerControl` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from hashcore.accounting import (
    BackendCounters,
    Books,
    Controls,
    PoolCounters,
    PowerHistory,
    backend_view,
    pool_views,
    read_energy,
    snapshot,
)
from hashcore.backends.base import (
    ScanResult,
    backend_path,
    closes_mid_scan,
    device_state,
    operating_point_control,
    resolve_names,
)
from hashcore.control import MinerStats
from hashcore.errors import ConfigError, HashcoreError
from hashcore.lograte import RateLimitedLog
from hashcore.metering import EnergyLedger, MeterSettings
from hashcore.shareflow import ShareFlow
from hashcore.sharerate import DEFAULT_MAX_SHARE_RATE
from hashcore.stratum.client import StratumClient
from hashcore.stratum.options import ClientOptions, Link
from hashcore.telemetry.base import EnergyMeter
from hashcore.work import NONCE_SPACE
from hashcore.workers import MAX_RESULTS, ChunkSizer, ProcessScanner, Scanner, default_threads, open_scanners
from hashcore.worksource import WorkSource, WorkUnit

log = logging.getLogger("hashcore.engine")

#: Scan results that may wait for the event loop before workers block.
RESULT_SLOTS = 64
#: The longest wait between retries of a failing backend.
MAX_RETRY_SECONDS = 30.0
#: How long stop() waits for each part (the pool task, answers, workers) to finish.
STOP_GRACE_SECONDS = 0.6
#: Seconds between two samples of the total energy (for the recent power).
POWER_SAMPLE_SECONDS = 1.0


class Miner:
    """Mines against Stratum pools with one or more backends.

    ``async with Miner(pools=["stratum+tcp://host:3333"], user="me", backends=["c"]) as m:
    await m.run(duration=60)``; ``m.stats()`` gives the counters at any time.

    Args:
        pools: pool URLs in priority order (failover goes down the list).
        user / password: worker credentials.
        backends: backend names; ``None`` or ``["auto"]`` picks the fastest available.
        threads: worker threads per backend (default: one per core for CPU backends).
        backend_options: per-backend factory options, e.g. ``{"c": {"path": "shani"}}``.
        nonce_span: nonces per header before rolling to the next one.
        scan_seconds: the target duration of one scan (how fast clean jobs take effect).
        meter: the meter for the CPU backends (default: RAPL where readable, else the
            labelled estimate); GPU and ASIC backends get their own meters.
        meter_settings: where to look for counters (powercap root, TDP for the estimate).
        max_share_rate: shares a second sent to one pool at most; a pool difficulty
            that would mean more raises the local difficulty (said once in the log).
        client: extra :class:`ClientOptions` fields (timeouts, TLS, failover...).
    """

    def __init__(
        self,
        pools: Sequence[str],
        user: str,
        password: str = "x",
        backends: Sequence[str] | None = None,
        threads: int | None = None,
        *,
        backend_options: dict[str, dict[str, Any]] | None = None,
        nonce_span: int = NONCE_SPACE,
        scan_seconds: float = 0.25,
        meter: EnergyMeter | None = None,
        meter_settings: MeterSettings | None = None,
        max_share_rate: float = DEFAULT_MAX_SHARE_RATE,
        **client: Any,
    ) -> None:
        if not user:
            raise ConfigError("a worker name (--user) is needed")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if not max_share_rate > 0:
            raise ConfigError(f"max_share_rate must be positive, got {max_share_rate}")
        self.max_share_rate = max_share_rate
        names = list(backends or ["auto"])
        self.backend_names = resolve_names(names)
        if len(set(self.backend_names)) != len(self.backend_names):
            raise ConfigError(f"backend listed twice: {', '.join(names)}")
        self.threads = threads
        self.backend_options = backend_options or {}
        self.scan_seconds = scan_seconds
        self._cpu_meter = meter
        self._meter_settings = meter_settings or MeterSettings()
        self.ledger: EnergyLedger | None = None
        try:
            options = ClientOptions(user=user, password=password, **client)
        except TypeError as exc:
            raise ConfigError(f"unknown pool client option: {exc}") from None
        self.client = StratumClient(list(pools), options, self._on_pool_event)
        self.source = WorkSource(nonce_span=nonce_span)
        self.books = Books([PoolCounters(url=e.url) for e in self.client.endpoints])  # URLs without passwords
        self._warn = RateLimitedLog(log)
        self.shares = ShareFlow(self.books, self.source, self.client, max_share_rate, self._warn)
        self._result_slots = threading.Semaphore(RESULT_SLOTS)
        self._scanners: dict[str, list[Scanner]] = {}
        #: Each worker thread with the scanner it drives.
        self._workers: list[tuple[threading.Thread, Scanner]] = []
        self._stop = threading.Event()
        self._duty: dict[str, float] = {}
        self._active_threads: dict[str, int] = {}
        self._paused = False
        # Idle and duty-cycle naps wait here, so a control change wakes them at once.
        self._control = threading.Condition()
        self._client_task: asyncio.Task[None] | None = None
        self._power_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = 0.0
        self._power = PowerHistory()
        self._final: MinerStats | None = None

    @property
    def user(self) -> str:
        """The worker name pools get unless their URL names another."""
        return self.client.options.user

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open every backend (BackendUnavailable here, not mid-mining), then mine."""
        self._loop = asyncio.get_running_loop()
        try:
            for name in self.backend_names:
                count = self.threads or default_threads(name)
                options = self.backend_options.get(name, {})
                self._scanners[name] = await asyncio.to_thread(open_scanners, name, count, options)
                path = backend_path(self._scanners[name][0])
                self.books.backends[name] = BackendCounters(name=name, threads=count, path=path)
                self._duty[name] = 1.0
                self._active_threads[name] = count
            first = {name: scanners[0] for name, scanners in self._scanners.items()}
            self.ledger = await asyncio.to_thread(EnergyLedger, first, self._meter_settings, self._cpu_meter)
        except BaseException:
            self._close_scanners()
            raise
        self.ledger.start()
        self._started_at = time.monotonic()
        for name, scanners in self._scanners.items():
            for index, scanner in enumerate(scanners):
                thread = threading.Thread(
                    target=self._worker, args=(name, index, scanner), name=f"hashcore-{name}-{index}", daemon=True
                )
                thread.start()
                self._workers.append((thread, scanner))
        self._client_task = asyncio.create_task(self.client.run())
        self._power_task = asyncio.create_task(self._sample_power())

    async def _sample_power(self) -> None:
        """The engine's tick: total joules once a second, for the recent power."""
        ledger = self.ledger
        assert ledger is not None
        while True:
            try:
                _, total = ledger.report(self.books.hashes())
            except HashcoreError as exc:  # a meter that failed once may read again next tick
                self._warn.warning("power sample", "energy not sampled: %s", exc)
            else:
                self._power.sample(time.monotonic(), total.joules)
            await asyncio.sleep(POWER_SAMPLE_SECONDS)

    async def run(self, duration: float | None = None) -> None:
        """Mine for ``duration`` seconds (forever when None). Raises PoolError when the
        client gives up (``fail_fast`` and no pool reachable)."""
        if self._client_task is None:
            await self.start()
        assert self._client_task is not None
        waiting: set[asyncio.Future[Any]] = {self._client_task}
        timer = asyncio.ensure_future(asyncio.sleep(duration)) if duration is not None else None
        if timer is not None:
            waiting.add(timer)
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        if self._client_task.done() and not self._client_task.cancelled():
            exc = self._client_task.exception()
            if exc is not None:
                raise exc

    async def stop(self) -> None:
        """Stop within about two seconds whatever the pools and devices do: the pool
        task and unanswered shares get a short grace, workers finish their scan."""
        running = self.stats() if self._started_at and self._final is None else None
        self._stop.set()
        if self._power_task is not None:
            self._power_task.cancel()
        self._controls_changed()
        self.source.stop()
        for _ in self._workers:
            self._result_slots.release()  # a worker blocked on a full queue sees the stop
        if self._client_task is not None:
            self._client_task.cancel()
            done, _ = await asyncio.wait({self._client_task}, timeout=STOP_GRACE_SECONDS)
            if not done:
                log.warning("the pool connection did not close in time; leaving it")
            elif not self._client_task.cancelled():
                with contextlib.suppress(asyncio.CancelledError, HashcoreError, OSError):
                    self._client_task.result()
        tasks = list(self.shares.answers)
        for task in tasks:
            task.cancel()  # each counts its share as unanswered
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
        stuck = await asyncio.to_thread(self._join_workers, STOP_GRACE_SECONDS)
        if running is not None:
            self._final = self._final_stats(running)
        # A device scan may be mid-reopen (seconds): a backend whose close interrupts a
        # scan is closed under it; the others are left to the process's exit.
        self._close_scanners(skip=[s for s in stuck if not closes_mid_scan(s)])
        if self.ledger is not None:
            self.ledger.close()
        self._warn.flush()

    async def __aenter__(self) -> Miner:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _join_workers(self, grace: float) -> list[Scanner]:
        """Join the worker threads for up to ``grace`` seconds in all; the scanners of
        those still scanning (not to be closed under them)."""
        deadline = time.monotonic() + grace
        for thread, _ in self._workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [(thread, scanner) for thread, scanner in self._workers if thread.is_alive()]
        if stuck:
            log.warning("%d worker(s) still in a scan at stop: %s", len(stuck),
                        ", ".join(thread.name for thread, _ in stuck))
        return [scanner for _, scanner in stuck]

    def _final_stats(self, running: MinerStats) -> MinerStats:
        """The counters after the stop (shares left unanswered counted), with the pool
        it was mining on when told to stop rather than the closed connection."""
        final = self.stats()
        pools = tuple(dataclasses.replace(pool, connected=was.connected)
                      for pool, was in zip(final.pools, running.pools, strict=True))
        backends = {name: dataclasses.replace(view, state="stopped") for name, view in final.backends.items()}
        return dataclasses.replace(final, pools=pools, backends=backends, active_pool=running.active_pool)

    def _close_scanners(self, skip: Sequence[Scanner] = ()) -> None:
        for scanners in self._scanners.values():
            for scanner in scanners:
                if any(scanner is busy for busy in skip):
                    continue
                with contextlib.suppress(Exception):
                    scanner.close()

    # --- control (throttling) ----------------------------------------------------------

    def set_duty(self, backend: str, duty: float) -> None:
        """Run ``backend`` only this fraction of the time (0 pauses it, 1 is full speed)."""
        if backend not in self._duty:
            raise ConfigError(f"backend {backend!r} is not running")
        self._duty[backend] = min(max(duty, 0.0), 1.0)
        self._controls_changed()

    def has_operating_points(self, backend: str) -> bool:
        """Whether ``backend``'s devices have clock (and voltage) knobs."""
        scanners = self._scanners.get(backend) or []
        return bool(scanners) and all(operating_point_control(s) is not None for s in scanners)

    def set_operating_point(self, backend: str, freq_mhz: float, voltage_mv: float | None = None) -> None:
        """Clock (and core voltage) of a backend's devices, where they have such knobs
        (an ASIC chain); ConfigError where they do not."""
        scanners = self._scanners.get(backend)
        if not scanners:
            raise ConfigError(f"backend {backend!r} is not running")
        controls = [c for s in scanners if (c := operating_point_control(s)) is not None]
        if len(controls) != len(scanners):
            raise ConfigError(f"backend {backend!r} has no frequency or voltage control")
        for control in controls:
            control.set_operating_point(freq_mhz, voltage_mv)

    def pause(self) -> None:
        """Stop hashing on every backend; the pool connection stays up."""
        self._paused = True
        self._controls_changed()

    def resume(self) -> None:
        self._paused = False
        self._controls_changed()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_threads(self, backend: str, threads: int) -> None:
        """Keep only this many of ``backend``'s worker threads scanning (the rest idle)."""
        if backend not in self._active_threads:
            raise ConfigError(f"backend {backend!r} is not running")
        self._active_threads[backend] = min(max(threads, 0), len(self._scanners[backend]))
        self._controls_changed()

    def _controls_changed(self) -> None:
        with self._control:
            self._control.notify_all()

    def _nap(self, seconds: float) -> None:
        """Sleep in a worker until ``seconds`` pass or a control (or stop) changes."""
        with self._control:
            if not self._stop.is_set():
                self._control.wait(seconds)

    def add_pool(self, url: str) -> int:
        """Add a pool at the lowest priority; returns its index."""
        index = self.client.add_pool(url)
        self.books.pools.append(PoolCounters(url=self.client.endpoints[index].url))
        return index

    def switch_pool(self, index: int) -> None:
        """Make pool ``index`` the first choice and move to it now."""
        self.client.switch_pool(index)

    def enable_pool(self, index: int) -> None:
        self.client.enable_pool(index)

    def disable_pool(self, index: int) -> None:
        """Stop using pool ``index`` (fails over at once when it is the current one)."""
        self.client.disable_pool(index)

    @property
    def shares_in_flight(self) -> int:
        """Shares sent whose answer has not come back yet."""
        return len(self.shares.answers)

    def duty(self, backend: str) -> float:
        return self._duty[backend]

    def max_threads(self, backend: str) -> int:
        """Worker threads opened for ``backend`` (what :meth:`set_threads` may allow)."""
        if backend not in self.books.backends:
            raise ConfigError(f"backend {backend!r} is not running")
        return self.books.backends[backend].threads

    def active_threads(self, backend: str) -> int:
        return self._active_threads[backend]

    # --- worker threads ----------------------------------------------------------------

    def _worker(self, name: str, index: int, scanner: Scanner) -> None:
        sizer = ChunkSizer(self.scan_seconds)
        loop, ledger = self._loop, self.ledger
        assert loop is not None and ledger is not None
        # A child process does the work of a ProcessScanner: its wall time is its CPU time.
        in_thread = not isinstance(scanner, ProcessScanner)
        failures = 0
        while not self._stop.is_set():
            duty = self._duty[name]
            if self._paused or duty <= 0.0 or index >= self._active_threads[name]:
                self._nap(self.scan_seconds)
                continue
            unit = self.source.take(sizer.count)
            if unit is None:
                continue
            started, cpu_started = time.perf_counter(), time.thread_time_ns()
            try:
                result = scanner.scan(unit.work, unit.nonce_start, unit.count, MAX_RESULTS)
            except Exception as exc:
                # A device may come back (a replugged port, a restarted driver): retry
                # with backoff rather than leave this worker idle for good.
                failures += 1
                delay = min(MAX_RETRY_SECONDS, 2.0 ** (failures - 1))
                if not self._post(loop, self._on_worker_error, name, index, str(exc) or type(exc).__name__, delay):
                    return
                self._nap(delay)
                continue
            if failures:
                failures = 0
                self._post(loop, self._on_worker_recovered, name, index)
            elapsed = time.perf_counter() - started
            cpu_us = (time.thread_time_ns() - cpu_started) // 1000 if in_thread else int(elapsed * 1e6)
            ledger.add_cpu_time(name, cpu_us)
            sizer.update(result.hashes_done, elapsed)
            # Backpressure: wait while the loop has RESULT_SLOTS results still to check.
            while not self._result_slots.acquire(timeout=self.scan_seconds):
                if self._stop.is_set():
                    return
            if self._stop.is_set() or not self._post(loop, self._on_scan, name, unit, result):
                return
            if duty < 1.0:
                self._nap(elapsed * (1.0 - duty) / duty)

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> bool:
        """Run ``callback`` on the loop; False when the loop is closed (shutting down)."""
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            return False
        return True

    def _on_worker_error(self, name: str, index: int, reason: str, retry_in: float) -> None:
        counters = self.books.backends[name]
        counters.errors += 1
        counters.failing[index] = reason
        self._warn.warning(f"backend {name}", "backend %s (worker %d) failed: %s; retrying in %.0f s",
                           name, index, reason, retry_in)

    def _on_worker_recovered(self, name: str, index: int) -> None:
        if self.books.backends[name].failing.pop(index, None) is not None:
            log.info("backend %s (worker %d) scans again", name, index)

    # --- results and pool events (event loop) -------------------------------------------

    def _on_scan(self, name: str, unit: WorkUnit, result: ScanResult) -> None:
        self._result_slots.release()
        self.shares.on_result(name, unit, result)

    def _on_pool_event(self, link: Link, event: object) -> None:
        self.shares.on_pool_event(link, event)

    # --- reporting ---------------------------------------------------------------------

    def stats(self) -> MinerStats:
        """The snapshot now; after :meth:`stop`, as it was when it finished. Reads the
        counters and the meters, and changes nothing."""
        if self._final is not None:
            return self._final
        now = time.monotonic()
        seconds = max(now - self._started_at, 1e-9) if self._started_at else 0.0
        per_backend, total = read_energy(self.ledger, self.books, self._power, now)
        backends = {
            name: backend_view(c, seconds, now, self._controls(name, c), per_backend.get(name))
            for name, c in self.books.backends.items()
        }
        link = self.client.link
        return snapshot(self.books, seconds=seconds, now=now, pools=pool_views(self.books, self.client),
                        backends=backends, energy=total, active_pool=link.url if link else None,
                        paused=self._paused, current_job=self.source.current_job)

    def _controls(self, name: str, counters: BackendCounters) -> Controls:
        return Controls(self._duty.get(name, 1.0), self._active_threads.get(name, counters.threads),
                        self._backend_state(name, counters))

    def _backend_state(self, name: str, counters: BackendCounters) -> str:
        """A short text for the live view, the API and the dashboard."""
        if counters.failing:
            return f"retrying: {next(iter(counters.failing.values()))}"[:160]
        scanners = self._scanners.get(name)
        state = device_state(scanners[0]) if scanners else None
        if state not in (None, "", "mining"):
            return state
        if self._paused or self._duty.get(name, 1.0) <= 0.0 or self._active_threads.get(name, 1) == 0:
            return "paused"
        if self.source.current_job is None:
            return "waiting for work"
        return "mining"
