"""The ``asic`` backend: a BM13xx chain, or its emulator, fitted to the Backend contract.

A chain does not scan nonce ranges on request: it mines the last job it was sent, over
the whole nonce range and every version its mask allows, and streams nonces back. So
``scan(work, nonce_start, count, max_results)`` means here:

* when ``work`` differs from the chain's current job, send it (a new previous-block hash
  retires every older job, so their late nonces are dropped as stale). A work scanned
  again after another is sent again and the chain searches it from the start, so the
  shares it already gave are remembered and not returned twice;
* wait as long as the chain needs for ``count`` hashes at its nominal rate (at most
  ``max_wait_s``), collecting the nonces that arrive for ``work``, including any that
  arrived since the last call; nonces for other live jobs are kept for when that work is
  scanned again;
* check each with hashlib on ``work.with_version(version)`` and return those meeting
  ``work.target``, with ``versions`` parallel to ``nonces`` (always filled);
* ``hashes_done`` = nominal rate * seconds waited, at most ``count``. The nominal rate is
  clock * chips answering * per-chip figure (the published small-core count, or the
  emulator's configured rate), and it drops when a chip stops answering the census.

``nonce_start`` does not steer the chip: the nonces come from wherever the chain is in
its search, and with version rolling one Work holds far more than 2**32 hashes, so the
engine may keep handing the same Work. ``releases_gil`` is true: a scan waits on I/O.

A chain that fails mid-run (the port vanished, a write failed, every chip fell silent)
does not stop the backend for good: that scan closes the link and raises
:class:`ChainError`, and each later scan first tries to bring the chain back, opening the
same port again (a board plugged back in reappears at its /dev/serial/by-id name) and
running the whole init and known-answer check; while that fails it raises
:class:`ChainError` with the reason, at once when the port is missing. The caller (the
engine) backs off between tries. :attr:`AsicBackend.state` says where the chain is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hashcore.backends.asic.chips import chip_model
from hashcore.backends.asic.driver import AsicDriver, DriverConfig, DriverStats
from hashcore.backends.asic.emulator import BoardPower, ChainEmulator, EmulatorConfig
from hashcore.backends.asic.faults import Faults, parse_faults
from hashcore.backends.asic.jobs import FoundNonce
from hashcore.backends.base import BackendInfo, EnergyKind, ScanResult, check_range, register
from hashcore.errors import BackendError, BackendUnavailable, ConfigError, DeviceError, WorkError
from hashcore.work import Work, verify_nonce

log = logging.getLogger("hashcore.backends.asic.backend")

#: The port name that starts the built-in emulator instead of opening a device.
EMULATOR_PORT = "emulator"
#: What a zero ticket mask stands for on the on-demand emulator: every hash. A CPU-hashed
#: chain with real ticket semantics (difficulty 1 per reported nonce) would almost never
#: report; the driver converts pool difficulties in the same units, so shares stay exact.
EMULATOR_BASE_DIFFICULTY = 2.0**-32
#: Works whose nonces are kept while another work is current.
_PENDING_WORKS = 64
#: Nonces remembered to drop repeats across jobs of the same work.
_REMEMBERED_SHARES = 4096


class ChainError(BackendError, DeviceError):
    """The chain failed mid-run or is still down; the message says why. The backend stays
    usable: the next scan tries to bring the chain back."""


@dataclass(frozen=True, slots=True)
class AsicStats:
    """The driver's counters plus the backend's.

    Attributes:
        driver: see :class:`DriverStats`.
        returned: nonces returned (meeting ``work.target``).
        below_target: nonces that passed the chip's ticket but not ``work.target``.
        hw_errors: nonces whose hash fails even the chip's ticket (a chip or link fault).
        orphaned: nonces of works dropped from the pending buffer before being scanned.
        repeats: nonces already returned for the same work (from a job sent again).
        reopens: times the chain was brought back after a failure (``driver`` counts
            since the last).
        failures: times the chain went down mid-run.
    """

    driver: DriverStats
    returned: int
    below_target: int
    hw_errors: int
    orphaned: int
    repeats: int
    reopens: int = 0
    failures: int = 0


class AsicBackend:
    """A BM13xx chain as a Backend. See the module docstring for what ``scan`` means."""

    name = "asic"
    releases_gil = True
    #: The chain rolls version bits itself; ScanResult.versions says which it used.
    rolls_versions = True
    #: Its power is the board's, not the host CPU's (see hashcore.metering).
    energy_kind: EnergyKind = "asic"
    #: close() from another thread makes a running scan (or reopen) end at once.
    close_interrupts_scan = True

    def __init__(self, driver: AsicDriver, *, emulator: ChainEmulator | None = None, max_wait_s: float = 1.0):
        self.driver = driver
        self.emulator = emulator
        self.max_wait_s = max_wait_s
        self._state = "mining"
        self._down = False
        self._closed = False
        self._reopens = self._failures = 0
        self._operating_point: tuple[float, float | None] | None = None
        self._current: Work | None = None
        self._pending: OrderedDict[Work, list[FoundNonce]] = OrderedDict()
        self._lock = threading.Lock()
        self._returned = self._below_target = self._hw_errors = self._orphaned = self._repeats = 0
        self._returned_keys: OrderedDict[tuple[bytes, int, int], None] = OrderedDict()
        # What ``hashcore.telemetry.choose_meter("asic", board_watts=..., board_joules=...)``
        # takes: callables where the board reports power, None where it does not.
        self.board_watts: Callable[[], float] | None = None
        self.board_joules: Callable[[], float] | None = None
        if emulator is not None:
            self.board_watts = lambda: emulator.board_power().watts
            self.board_joules = lambda: emulator.board_power().joules

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        with self._lock:
            if self._closed:
                raise ChainError(f"asic backend on {self.driver.port} is closed")
            if self._down:
                self._reopen()
            try:
                return self._scan(work, count, max_results)
            except DeviceError as exc:
                raise self._went_down(exc) from exc

    @property
    def state(self) -> str:
        """Where the chain is, in a few words: "mining", "retrying census: 1 of 4 chips
        silent", "mining on 3 of 4 chips", "port gone: /dev/ttyUSB0", "reopening: ...",
        "chain down: <reason>", "closed"."""
        state = self._state
        if state != "mining":
            return state
        driver = self.driver
        total = len(driver.addresses)
        silent = driver.chips_silent
        if silent:
            return f"retrying census: {silent} of {total} chips silent"
        if driver.chips_answering < total:
            return f"mining on {driver.chips_answering} of {total} chips"
        return state

    def _port(self) -> str:
        """The port to open again: the same name (an emulator's current pty, if any)."""
        if self.emulator is not None:
            return self.emulator.port if self.emulator.running else ""
        return self.driver.port

    def _port_missing(self, port: str) -> bool:
        if self.emulator is not None:
            return not port
        # A URL (spy://, socket://) is left to its opener; a path must exist.
        return "://" not in port and not os.path.exists(port)

    def _went_down(self, exc: DeviceError) -> ChainError:
        """Close the failed link and say why; the next scan tries to bring the chain back."""
        port = self.driver.port
        self.driver.close()
        self._down = True
        self._failures += 1
        self._current = None
        self._orphaned += sum(len(v) for v in self._pending.values())
        self._pending.clear()
        self._state = f"port gone: {port}" if self._port_missing(self._port()) else f"chain down: {exc}"
        log.warning("asic chain on %s went down: %s; it is reopened on the next scan", port, exc)
        return ChainError(f"asic chain on {port} went down: {exc}")

    def _reopen(self) -> None:
        """Open the same port again and bring the chain up; ChainError while it cannot."""
        old = self.driver
        port = self._port() or old.port
        if self._port_missing(self._port()):
            self._state = f"port gone: {port}"
            raise ChainError(f"asic port {port} is gone (unplugged or powered off); waiting for it to return")
        config = old.config
        if self.emulator is not None:
            config = replace(config, regulator_port=self.emulator.regulator_port or None)
        driver = old.clone(port, config)
        # close() from another thread reaches the new driver while it comes up.
        self.driver = driver
        self._state = f"reopening: {port}"
        try:
            driver.open()
            if self._operating_point is not None:
                mhz, mv = self._operating_point
                self._set_operating_point(mhz, mv)
        except DeviceError as exc:
            driver.close()
            if self._closed:
                self._state = "closed"
            elif self._port_missing(self._port()):
                self._state = f"port gone: {port}"
            else:
                self._state = f"chain down: {exc}"
            raise ChainError(f"asic chain on {port} is still down: {exc}") from exc
        self._down = False
        self._reopens += 1
        self._state = "mining"
        log.warning("asic chain on %s is back: %d chip(s)", port, driver.chips_answering)

    def _scan(self, work: Work, count: int, max_results: int) -> ScanResult:
        start = time.monotonic()
        self.driver.poll_chips()
        if work != self._current:
            self._switch(work)
        rate = self.driver.hashrate
        deadline = start + (min(count / rate, self.max_wait_s) if rate > 0 else 0.0)
        nonces: list[int] = []
        versions: list[int] = []
        pending = self._pending.pop(work, [])
        while pending and len(nonces) < max_results:
            self._accept(work, pending.pop(0), nonces, versions)
        if pending:
            self._pending[work] = pending
        while len(nonces) < max_results:
            # Nonces already queued are taken even when the wait is over.
            remaining = max(0.0, deadline - time.monotonic())
            try:
                found = self.driver.next_found(remaining)
            except DeviceError as exc:
                if not nonces:
                    raise
                # Shares already found go out; the failure shows on the next scan.
                self._went_down(exc)
                break
            if found is None:
                if remaining > 0:
                    continue
                break
            if found.work == work:
                self._accept(work, found, nonces, versions)
            else:
                self._stash(found)
        hashes = min(count, int(rate * (time.monotonic() - start)))
        return ScanResult(nonces, hashes, versions)

    def _switch(self, work: Work) -> None:
        current = self._current
        clean = current is None or work.header76[4:36] != current.header76[4:36]
        if clean:
            self._orphaned += sum(len(v) for v in self._pending.values())
            self._pending.clear()
        self.driver.send_work(work, clean=clean)
        self._current = work

    def _stash(self, found: FoundNonce) -> None:
        self._pending.setdefault(found.work, []).append(found)
        self._pending.move_to_end(found.work)
        while len(self._pending) > _PENDING_WORKS:
            _, dropped = self._pending.popitem(last=False)
            self._orphaned += len(dropped)

    def _accept(self, work: Work, found: FoundNonce, nonces: list[int], versions: list[int]) -> None:
        try:
            value = verify_nonce(work.with_version(found.version), found.nonce).value
        except WorkError:
            self._hw_errors += 1
            return
        if value <= work.target:
            # A work sent again (the engine came back to it) is a new job to the chip,
            # which finds the same nonces again: a pool would reject the repeats.
            key = (work.header76[4:], found.nonce, found.version)
            if key in self._returned_keys:
                self._repeats += 1
                return
            self._returned_keys[key] = None
            if len(self._returned_keys) > _REMEMBERED_SHARES:
                self._returned_keys.popitem(last=False)
            nonces.append(found.nonce)
            versions.append(found.version)
            self._returned += 1
        elif value <= self.driver.report_target:
            self._below_target += 1
        else:
            self._hw_errors += 1

    @property
    def hashrate(self) -> float:
        """The chain's nominal hashes per second."""
        return self.driver.hashrate

    def set_frequency(self, mhz: float) -> float:
        """Ramp the chips to ``mhz`` (an operating point for throttling); returns the MHz reached."""
        return self.set_operating_point(mhz)[0]

    def set_operating_point(self, mhz: float, mv: float | None = None) -> tuple[float, float | None]:
        """Clock and core voltage together (None: the voltage the chip's V/f table gives,
        where the board has a regulator); returns the (MHz, mV) reached. A chain brought
        back after a failure gets the last operating point set."""
        with self._lock:
            self._operating_point = (mhz, mv)
            return self._set_operating_point(mhz, mv)

    def _set_operating_point(self, mhz: float, mv: float | None) -> tuple[float, float | None]:
        if mv is None:
            return self.driver.set_frequency(mhz), self.driver.voltage_mv
        return self.driver.set_operating_point(mhz, mv)

    def energy_options(self) -> dict[str, Callable[[], float] | None]:
        """The board's power readers, as ``hashcore.telemetry.choose_meter("asic", ...)`` takes them."""
        return {"board_watts": self.board_watts, "board_joules": self.board_joules}

    def board_power(self) -> BoardPower | None:
        """The board's power report, where the chain has one (the emulator); None otherwise.

        The BM13xx UART carries no power figures: real boards measure power with a
        separate sensor, which this backend does not read.
        """
        return self.emulator.board_power() if self.emulator is not None else None

    @property
    def stats(self) -> AsicStats:
        return AsicStats(
            self.driver.stats,
            self._returned,
            self._below_target,
            self._hw_errors,
            self._orphaned,
            self._repeats,
            self._reopens,
            self._failures,
        )

    def close(self) -> None:
        # Not under the scan lock: a scan bringing the chain up fails at once instead.
        self._closed = True
        self._state = "closed"
        self.driver.close()
        if self.emulator is not None:
            self.emulator.stop()


def open_asic(
    *,
    port: str | None = None,
    chip: str = "bm1366",
    frequency_mhz: float | None = None,
    baud: int | None = None,
    reset_line: str | None = None,
    known_answer: bool = True,
    max_wait_s: float = 1.0,
    emulator_chips: int = 1,
    emulator_hashrate: float = 200_000.0,
    emulator_base_difficulty: float = EMULATOR_BASE_DIFFICULTY,
    emulator_faults: Faults | str | None = None,
    **unknown: Any,
) -> AsicBackend:
    """Open the ``asic`` backend.

    Args:
        port: a serial device or pyserial URL (``/dev/ttyUSB0``, ``spy:///dev/ttyUSB0``),
            or ``"emulator"`` for the built-in emulated chain.
        chip: ``"bm1366"`` or ``"bm1397"``.
        frequency_mhz: the clock to ramp to (default: the chip's, 485 / 425 MHz).
        baud: the link speed after init (see :class:`DriverConfig`).
        reset_line: ``"dtr"`` or ``"rts"`` where the adapter wires the chain's reset.
        known_answer: run the known-answer check at open.
        max_wait_s: the longest one scan waits.
        emulator_chips, emulator_hashrate, emulator_base_difficulty, emulator_faults:
            the emulated chain, when ``port`` is ``"emulator"`` (see the emulator module;
            the base difficulty defaults to 2**-32 so a CPU-hashed chain finds shares;
            the faults may be given as text, ``"garbage=0.5,drop=0.2"``, see
            :func:`~hashcore.backends.asic.faults.parse_faults`).

    Raises:
        BackendUnavailable: no port given, the port cannot be opened, no chip answers,
            or the known-answer check fails.
        ConfigError: an unknown option or chip.
    """
    if unknown:
        raise ConfigError(f"unknown asic backend option(s): {', '.join(sorted(unknown))}")
    if not port:
        raise BackendUnavailable(
            "the asic backend needs a port: --asic-port /dev/ttyUSB0 (or another serial device), "
            "or --asic-port emulator for the built-in emulated chain"
        )
    model = chip_model(chip)
    if isinstance(emulator_faults, str):
        emulator_faults = parse_faults(emulator_faults)
    emulator = None
    if port == EMULATOR_PORT:
        emulator = ChainEmulator(
            EmulatorConfig(chip=model.name, chips=emulator_chips, hashrate=emulator_hashrate,
                           base_difficulty=emulator_base_difficulty),
            emulator_faults,
        ).start()
        config = DriverConfig(
            frequency_mhz=frequency_mhz,
            baud=baud,
            ramp_delay_s=0.0,
            detect_silence_s=0.25,
            census_interval_s=5.0,
            census_window_s=0.5,
            census_retry_s=0.5,
            known_answer=known_answer,
            known_answer_retry_s=0.5,
            hashrate_per_chip_mhz=emulator.hashrate_per_chip_mhz,
            base_difficulty=emulator_base_difficulty,
            regulator_port=emulator.regulator_port,
        )
        device = emulator.port
    else:
        config = DriverConfig(frequency_mhz=frequency_mhz, baud=baud, reset_line=reset_line, known_answer=known_answer)
        device = port
    driver = AsicDriver(device, model, config)
    try:
        driver.open()
    except DeviceError as exc:
        if emulator is not None:
            emulator.stop()
        raise BackendUnavailable(f"asic backend on {port}: {exc}") from exc
    return AsicBackend(driver, emulator=emulator, max_wait_s=max_wait_s)


def _probe() -> BackendInfo:
    from serial.tools import list_ports

    ports = sorted(p.device for p in list_ports.comports())
    found = f"serial ports: {', '.join(ports)}" if ports else "no serial ports found"
    return BackendInfo(
        "asic",
        True,
        f"BM1366/BM1397 chains over serial (--asic-port); {found}; --asic-port emulator runs an emulated chain",
        {"ports": ports},
    )


register("asic", open_asic, _probe, "BM1366/BM1397 ASIC chains over serial, or the built-in chip emulator")
