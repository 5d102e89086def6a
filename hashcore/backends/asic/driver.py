"""The serial driver for a chain of BM1366 or BM1397 chips.

Theory of operation: :meth:`AsicDriver.open` opens the port through pyserial's
``serial_for_url`` (a tty, a pseudo-terminal, ``loop://`` or ``spy://``), starts a reader
thread, resets the chain, counts the chips, gives them addresses, writes the init
registers, ramps the clock, switches the baud rate and finally runs the known-answer
check: the captured job must come back with a captured nonce. After that
:meth:`send_work` hands out jobs and :meth:`next_found` yields the nonces the reader
thread mapped back to their job and rolled version through the :class:`JobTable`.

Operating points: where the board's core-voltage regulator is reachable (a second port,
``regulator_port``: PMBus word transactions through a serial-to-SMBus bridge, see
:mod:`~hashcore.backends.asic.chips`), every clock change moves the voltage along the
chip's V/f table: up before the clock rises, down after it falls, so the chips never run
a clock their voltage cannot carry. :meth:`AsicDriver.set_operating_point` sets both.

Modules it orchestrates: ``config`` (:class:`DriverConfig`), ``link`` (the port and its
reader thread), ``bringup`` (chip count, addresses and each model's init), ``clock``
(the clock ramp), ``regulator`` (the PMBus core-voltage regulator), ``census`` (which
chips still answer), ``jobs`` (jobs and the table of live ones).

Every serial failure, a silent chain and a failed known answer become a
:class:`~hashcore.errors.DeviceError` naming the port; once the device has failed, every
later call raises that error, and :meth:`close` always stops the reader and frees the port.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import serial

from hashcore.backends.asic import bringup, known_answer
from hashcore.backends.asic.census import ChipCensus
from hashcore.backends.asic.chips import (
    CHIP_VERSION_BITS,
    REG_CHIP_ID,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    ChipModel,
    encode_ticket_mask,
    encode_version_mask,
    ticket_for_difficulty,
    ticket_target,
)
from hashcore.backends.asic.clock import ChainClock
from hashcore.backends.asic.config import DriverConfig
from hashcore.backends.asic.framing import (
    NonceReply,
    RegisterReply,
    encode_command,
    read_register,
)
from hashcore.backends.asic.jobs import FoundNonce, JobTable, chip_job
from hashcore.backends.asic.link import SerialLink, SerialOpener
from hashcore.backends.asic.regulator import CoreRegulator
from hashcore.errors import DeviceError
from hashcore.work import DEFAULT_VERSION_MASK, Work, target_to_difficulty

log = logging.getLogger("hashcore.backends.asic.driver")

@dataclass(frozen=True, slots=True)
class DriverStats:
    """Counters of a driver since open.

    Attributes:
        chips: chips found at open; chips_answering: those not counted dead by the census.
        chips_silent: chips that missed the last census but not yet enough in a row.
        census_misses: chip-census misses since open (each chip each census).
        frequency_mhz: the clock the chips were last set to.
        ticket: the chip-side difficulty of the ticket mask.
        baud: the host's current baud rate.
        jobs_sent, nonces: jobs written, nonce replies mapped to a live job.
        stale, duplicates, bad_version: replies the job table dropped.
        frames, dropped_bytes, bad_frames: the reply decoder's counters.
        known_answer_passed: whether the check at open succeeded (None: not run).
        voltage_mv: the core voltage last set or read (None: no regulator reachable).
    """

    chips: int
    chips_answering: int
    frequency_mhz: float
    ticket: int
    baud: int
    jobs_sent: int
    nonces: int
    stale: int
    duplicates: int
    bad_version: int
    frames: int
    dropped_bytes: int
    bad_frames: int
    known_answer_passed: bool | None
    voltage_mv: float | None = None
    chips_silent: int = 0
    census_misses: int = 0


_WAKE = object()


class AsicDriver:
    """One chain of one chip model on one serial port. See the module docstring."""

    def __init__(
        self,
        port: str,
        chip: ChipModel,
        config: DriverConfig | None = None,
        *,
        open_serial: SerialOpener = serial.serial_for_url,
    ):
        self.port = port
        self.chip = chip
        self.config = config or DriverConfig()
        self._open_serial = open_serial
        self._table = JobTable(chip)
        self._lock = threading.Lock()
        self._found: queue.Queue[object] = queue.Queue()
        self._link = SerialLink(
            port,
            chip.reply_length,
            open_serial=open_serial,
            read_timeout_s=self.config.read_timeout_s,
            lock=self._lock,
            on_nonce=self._on_nonce,
            claim_register=self._claim_census_answer,
            on_failure=self._wake,
        )
        self._clock = ChainClock(self._link, chip, step_mhz=self.config.ramp_step_mhz,
                                 delay_s=self.config.ramp_delay_s)
        self._regulator: CoreRegulator | None = None
        self.ticket = 0
        self._chip_mask: int | None = None
        self._jobs_sent = 0
        self._nonces = 0
        self._known_answer_passed: bool | None = None
        config = self.config
        self._census = ChipCensus(port, interval_s=config.census_interval_s, window_s=config.census_window_s,
                                  retry_s=config.census_retry_s, misses_to_dead=config.census_misses)
        self.voltage_mv: float | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and bring the chain up; DeviceError (port closed again) on failure."""
        self._link.open()
        try:
            self._open_regulator()
            self._link.start_reader()
            self._link.pulse_reset(self.config.reset_line, self.config.reset_hold_s)
            mhz = self.config.frequency_mhz or self.chip.default_mhz
            if self.chip.on_chip_rolling:
                self._chip_mask = DEFAULT_VERSION_MASK  # the init writes it before anything else
                bringup.init_bm1366(self._link, self, mhz, self.config.baud)
            else:
                bringup.init_bm1397(self._link, self, mhz, self.config.baud)
            if self.config.known_answer:
                self.known_answer_check()
            with self._lock:
                self._census.start(time.monotonic())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the reader thread and free the port. Safe to call twice and after a failure."""
        if self._link.closed:
            return
        self._link.close()
        if self._regulator is not None:
            self._regulator.close()
        self._wake()

    def clone(self, port: str | None = None, config: DriverConfig | None = None) -> AsicDriver:
        """A new, unopened driver for the same chain (to bring it up again after a failure)."""
        return AsicDriver(port or self.port, self.chip, config or self.config, open_serial=self._open_serial)

    @property
    def failure(self) -> DeviceError | None:
        return self._link.failure

    def _wake(self) -> None:
        """Wake a :meth:`next_found` waiting, to see a failure or the close."""
        self._found.put(_WAKE)

    # --- replies the link hands over (under ``_lock``) -------------------------------------

    def _on_nonce(self, reply: NonceReply) -> None:
        found = self._table.resolve(reply)
        if found is not None:
            self._nonces += 1
            self._found.put(found)

    def _claim_census_answer(self, reply: RegisterReply) -> bool:
        return reply.register == REG_CHIP_ID and self._census.answer(reply.chip_addr)

    # --- raw commands ------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Write one encoded frame."""
        self._link.send_frame(frame)

    def write_register(self, register: int, value: int, chip_addr: int | None = None) -> None:
        self._link.write_register(register, value, chip_addr)

    def read_register(self, register: int, chip_addr: int | None = None, *, silence_s: float) -> list[RegisterReply]:
        """Read a register; collects replies until ``silence_s`` passes without one."""
        return self._link.read_register(register, chip_addr, silence_s=silence_s)

    # --- bring-up (called by the init sequences of ``bringup``) --------------------------

    def detect(self) -> int:
        """Count the chips answering a chip-id read; DeviceError when none or the wrong model
        (see :func:`~hashcore.backends.asic.bringup.detect_chips`)."""
        return bringup.detect_chips(
            self._link, self.chip, silence_s=self.config.detect_silence_s, attempts=self.config.detect_attempts
        )

    def assign_addresses(self, count: int) -> list[int]:
        """Give ``count`` chips their addresses; the census starts counting them all alive."""
        addresses = bringup.address_chain(self._link, count)
        with self._lock:
            self._census.reset(addresses)
        return addresses

    @property
    def addresses(self) -> list[int]:
        """The chips' addresses, in chain order (empty until the chain is up)."""
        return self._census.addresses

    @property
    def chips_answering(self) -> int:
        """Chips not counted dead by the census."""
        return self._census.answering

    # --- settings ----------------------------------------------------------------------

    @property
    def frequency_mhz(self) -> float:
        """The clock the chips were last set to."""
        return self._clock.mhz

    def set_frequency(self, mhz: float, *, ramp: bool = True) -> float:
        """Move the chips' clock to ``mhz`` in small steps; returns the frequency reached.

        With a regulator and ``follow_vf`` the voltage follows the chip's V/f table.
        """
        mv = self.chip.voltage_for(self.chip.encode_pll(mhz).mhz) if self._follows_vf else None
        return self.set_operating_point(mhz, mv, ramp=ramp)[0]

    def set_operating_point(
        self, mhz: float, mv: float | None = None, *, ramp: bool = True
    ) -> tuple[float, float | None]:
        """Clock ``mhz`` at core voltage ``mv`` (None: leave the voltage as it is); returns
        the (MHz, mV) reached. A higher voltage is set before the clock rises, a lower one
        after it falls."""
        regulator = self._regulator
        if mv is not None and regulator is None:
            raise DeviceError(f"no core-voltage regulator reachable for {self.port}: "
                              "the board's voltage cannot be set (DriverConfig.regulator_port)")
        # READ_VOUT is good to half a register step: closer than that is already there.
        tolerance = regulator.step_mv / 2 if regulator is not None else 0.0
        if mv is not None and self.voltage_mv is not None and mv > self.voltage_mv + tolerance:
            self.set_voltage(mv)
        self._clock.ramp_to(mhz, ramp)
        if mv is not None and (self.voltage_mv is None or mv < self.voltage_mv - tolerance):
            self.set_voltage(mv)
        return self.frequency_mhz, self.voltage_mv

    @property
    def _follows_vf(self) -> bool:
        return self.config.follow_vf and self._regulator is not None and self.chip.vf is not None

    # --- core voltage ------------------------------------------------------------------

    def _open_regulator(self) -> None:
        port = self.config.regulator_port
        if port is None:
            return
        self._regulator = CoreRegulator(port, self.config.regulator_address, self.config.regulator_timeout_s,
                                        self._open_serial)
        self.voltage_mv = self._regulator.open()

    def set_voltage(self, mv: float) -> float:
        """Set the board's core voltage (mV) and read it back; returns the voltage reached."""
        if self._regulator is None:
            raise DeviceError(f"no core-voltage regulator reachable for {self.port}")
        self.voltage_mv = self._regulator.set_voltage(mv)
        log.info("%s core voltage at %.0f mV", self.port, self.voltage_mv)
        return self.voltage_mv

    def read_voltage(self) -> float:
        """The regulator's output voltage (READ_VOUT), mV."""
        if self._regulator is None:
            raise DeviceError(f"no core-voltage regulator reachable for {self.port}")
        return self._regulator.read_voltage()

    def read_board_watts(self) -> float | None:
        """The regulator's output power (READ_POUT), W; None without a regulator."""
        if self._regulator is None:
            return None
        return self._regulator.read_watts()

    def set_ticket(self, ticket: int) -> None:
        """Write the ticket mask for chip-side difficulty ``ticket`` (a power of two)."""
        self.write_register(REG_TICKET_MASK, encode_ticket_mask(ticket))
        self.ticket = ticket

    def set_difficulty(self, difficulty: float) -> int:
        """Ticket mask for a wanted difficulty (in real units); written only when it changes."""
        ticket = ticket_for_difficulty(difficulty / self.config.base_difficulty)
        if ticket != self.ticket:
            self.set_ticket(ticket)
        return ticket

    @property
    def report_target(self) -> int:
        """The largest hash value the chips report at the current ticket mask."""
        return ticket_target(self.ticket, self.config.base_difficulty)

    def set_version_mask(self, mask: int) -> None:
        """Let a BM1366 roll the chip-rollable bits of ``mask`` (written only when it changes)."""
        if not self.chip.on_chip_rolling:
            return
        chip_mask = mask & CHIP_VERSION_BITS
        if chip_mask != self._chip_mask:
            self.write_register(REG_VERSION_MASK, encode_version_mask(chip_mask))
            self._chip_mask = chip_mask

    @property
    def hashrate(self) -> float:
        """Nominal hashes per second: clock * chips answering * rate per chip and MHz."""
        per_mhz = self.config.hashrate_per_chip_mhz or self.chip.hashrate_per_mhz()
        return self.frequency_mhz * self.chips_answering * per_mhz

    # --- jobs and nonces ---------------------------------------------------------------

    def send_work(self, work: Work, *, clean: bool = False, starting_nonce: int = 0) -> int:
        """Send ``work`` as a new job (after its version mask and ticket); returns the job id.

        ``clean`` retires every live job first, so replies for them are dropped as stale,
        and forgets their nonces already queued.
        """
        self.set_version_mask(work.version_mask)
        self.set_difficulty(target_to_difficulty(work.target))
        with self._lock:
            if clean:
                self._table.clear()
                self._drain_found()
            job_id = self._table.next_id()
            live, frame = chip_job(self.chip, work, job_id, starting_nonce=starting_nonce)
            self._table.add(live)
        self.send_frame(frame)
        self._jobs_sent += 1
        return job_id

    def clear_jobs(self) -> None:
        """Retire every live job and forget nonces already queued."""
        with self._lock:
            self._table.clear()
            self._drain_found()

    def _drain_found(self) -> None:
        while True:
            try:
                self._found.get_nowait()
            except queue.Empty:
                return

    def next_found(self, timeout: float) -> FoundNonce | None:
        """The next nonce mapped to a live job, or None after ``timeout`` seconds."""
        self._link.raise_if_failed()
        try:
            item = self._found.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if not isinstance(item, FoundNonce):
            self._link.raise_if_failed()
            return None
        return item

    def known_answer_check(self) -> None:
        """Send the captured job and wait for a captured nonce; DeviceError when none comes
        (see :func:`~hashcore.backends.asic.known_answer.check`)."""
        try:
            known_answer.check(self, self.config.known_answer_timeout_s, self.config.known_answer_retry_s)
        except known_answer.KnownAnswerFailed:
            self._known_answer_passed = False
            raise
        self._known_answer_passed = True

    # --- health ------------------------------------------------------------------------

    def poll_chips(self) -> int:
        """Run the periodic chip census without blocking; returns the chips answering.

        Every ``census_interval_s`` a chip-id read goes out; ``census_window_s`` later the
        answers are counted (see :mod:`~hashcore.backends.asic.census`). Dead chips lower
        ``hashrate``; when every chip is dead this raises DeviceError.
        """
        with self._lock:
            step = self._census.step(time.monotonic())
        if step == "collecting":
            return self.chips_answering
        if step == "send":
            self.send_frame(encode_command(read_register(REG_CHIP_ID)))
        elif self.chips_answering == 0:
            error = DeviceError(
                f"no ASIC chip on {self.port} answers any more ({self.config.census_misses} chip-id reads in a row)"
            )
            self._link.fail(error)
            raise error
        return self.chips_answering

    @property
    def chips_silent(self) -> int:
        """Chips that missed the last census but not yet enough times in a row to count as dead."""
        with self._lock:
            return self._census.silent

    @property
    def stats(self) -> DriverStats:
        with self._lock:
            table, decoder = self._table.stats, self._link.decoder_stats
            return DriverStats(
                chips=len(self.addresses),
                chips_answering=self.chips_answering,
                frequency_mhz=self.frequency_mhz,
                ticket=self.ticket,
                baud=self._link.baud,
                jobs_sent=self._jobs_sent,
                nonces=self._nonces,
                stale=table.stale,
                duplicates=table.duplicates,
                bad_version=table.bad_version,
                frames=decoder.frames,
                dropped_bytes=decoder.dropped_bytes,
                bad_frames=decoder.bad_frames,
                known_answer_passed=self._known_answer_passed,
                voltage_mv=self.voltage_mv,
                chips_silent=self._census.silent,
                census_misses=self._census.misses,
            )
