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

Every serial failure, a silent chain and a failed known answer become a
:class:`~hashcore.errors.DeviceError` naming the port; once the device has failed, every
later call raises that error, and :meth:`close` always stops the reader and frees the port.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from hashcore.backends.asic import known_answer
from hashcore.backends.asic.chips import (
    BASE_BAUD,
    BM1366_FAST_BAUD,
    BM1366_FAST_UART_VALUE,
    BRIDGE_REPLY_LENGTH,
    CHIP_VERSION_BITS,
    CHIPS,
    PMBUS_READ_POUT,
    PMBUS_READ_VOUT,
    PMBUS_VOUT_COMMAND,
    PMBUS_VOUT_MODE,
    REG_ANALOG_MUX,
    REG_CHIP_ID,
    REG_CLOCK_ORDER0,
    REG_CLOCK_ORDER1,
    REG_CORE_CONTROL,
    REG_FAST_UART,
    REG_HASH_COUNTING,
    REG_INIT_CONTROL,
    REG_IO_DRIVER,
    REG_MISC_CONTROL,
    REG_ORDERED_CLOCK_ENABLE,
    REG_PLL0,
    REG_PLL0_DIVIDER,
    REG_PLL3,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    REGULATOR_ADDRESS,
    STATUS_ACK,
    ChipModel,
    RegulatorRequest,
    decode_linear11,
    decode_regulator_reply,
    decode_ulinear16,
    encode_misc_control_baud,
    encode_regulator_request,
    encode_ticket_mask,
    encode_ulinear16,
    encode_version_mask,
    ticket_for_difficulty,
    ticket_target,
    vout_exponent,
)
from hashcore.backends.asic.framing import (
    NonceReply,
    RegisterReply,
    ReplyDecoder,
    chain_inactive,
    encode_command,
    encode_job,
    read_register,
    set_address,
    write_register,
)
from hashcore.backends.asic.jobs import (
    FoundNonce,
    JobTable,
    LiveJob,
    bm1366_job,
    bm1397_job,
    chip_version_mask,
    midstate_versions,
)
from hashcore.errors import ConfigError, DeviceError
from hashcore.work import DEFAULT_VERSION_MASK, Work, target_to_difficulty

log = logging.getLogger("hashcore.backends.asic.driver")

SerialOpener = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """How to bring a chain up. Defaults suit real hardware.

    Attributes:
        frequency_mhz: the clock to ramp to (None: the chip's default).
        baud: the link speed after init. None: the chip's fast mode (BM1366: 1,000,000
            through register 0x28; BM1397: stays at 115,200). 115200 keeps the start
            speed; the BM1397 takes any 25 MHz / ((div + 1) * 8) through register 0x18.
        ramp_step_mhz, ramp_delay_s: the frequency ramp's step and the pause after each.
        detect_silence_s: chip counting ends after this long without a new chip-id reply.
        detect_attempts: chip-id reads at init. A noisy link loses replies, so the chain
            is counted at least twice (the larger count wins) and a silent chain is asked
            again after ``detect_silence_s``, doubling, before it counts as absent.
        census_interval_s, census_window_s: how often a running chain is asked for chip
            ids, and how long the answers are counted (finds chips that stopped answering).
        census_retry_s, census_misses: after a census that missed a chip, the next comes
            ``census_retry_s`` later, doubling up to ``census_interval_s``; a chip counts
            as dead only after ``census_misses`` misses in a row (so over at least
            ``census_retry_s * (2 ** (census_misses - 1) - 1)`` seconds), and alive again
            at its next answer.
        known_answer, known_answer_timeout_s: run the known-answer check at open.
        known_answer_retry_s: the captured job is sent again when its nonce has not come
            back after this long (a reply lost on the link), doubling, until the timeout.
        reset_line: "dtr" or "rts" when the adapter wires the chain's reset there; None
            when there is no reset line (emulator, boards whose reset the host cannot reach).
        reset_hold_s: how long reset is held, and the wait after release.
        hashrate_per_chip_mhz: hashes per second per chip per MHz (None: the published
            small-core count); the nominal rate that ``hashrate`` reports.
        base_difficulty: the difficulty a zero ticket mask stands for: 1 on real chips;
            an emulated chain may report at a lower one (see the emulator).
        read_timeout_s: the reader thread's serial read timeout.
        regulator_port: the core-voltage regulator's bridge (None: the voltage is not
            reachable and stays where the board keeps it).
        regulator_address: its SMBus address.
        regulator_timeout_s: how long one regulator transaction may take.
        follow_vf: move the voltage along the chip's V/f table with every clock change.
    """

    frequency_mhz: float | None = None
    baud: int | None = None
    ramp_step_mhz: float = 6.25
    ramp_delay_s: float = 0.1
    detect_silence_s: float = 1.0
    detect_attempts: int = 4
    census_interval_s: float = 30.0
    census_window_s: float = 1.0
    census_retry_s: float = 2.0
    census_misses: int = 3
    known_answer: bool = True
    known_answer_timeout_s: float = 5.0
    known_answer_retry_s: float = 1.0
    reset_line: str | None = None
    reset_hold_s: float = 0.1
    hashrate_per_chip_mhz: float | None = None
    base_difficulty: float = 1.0
    read_timeout_s: float = 0.05
    regulator_port: str | None = None
    regulator_address: int = REGULATOR_ADDRESS
    regulator_timeout_s: float = 0.5
    follow_vf: bool = True

    def __post_init__(self) -> None:
        if self.detect_attempts < 1 or self.census_misses < 1:
            raise ConfigError("detect_attempts and census_misses must be at least 1")


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
#: Raw bytes kept to tell which chip model answered when nothing decoded.
_RAW_TAIL = 512


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
        self._serial: Any = None
        self._decoder = ReplyDecoder(chip.reply_length)
        self._table = JobTable(chip)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._found: queue.Queue[object] = queue.Queue()
        self._registers: queue.Queue[RegisterReply] = queue.Queue()
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._failure: DeviceError | None = None
        self._closed = False
        self.addresses: list[int] = []
        self.chips_answering = 0
        self.frequency_mhz = chip.start_mhz
        self.ticket = 0
        self._chip_mask: int | None = None
        self._jobs_sent = 0
        self._nonces = 0
        self._known_answer_passed: bool | None = None
        self._census_started: float | None = None
        self._census_answered: set[int] = set()
        self._next_census = 0.0
        self._census_backoff = self.config.census_retry_s
        self._misses: dict[int, int] = {}
        self._dead: set[int] = set()
        self._census_misses = 0
        self._raw_tail = b""
        self._regulator: Any = None
        self._regulator_lock = threading.Lock()
        self._vout_exponent = -9
        self.voltage_mv: float | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the port and bring the chain up; DeviceError (port closed again) on failure."""
        try:
            self._serial = self._open_serial(
                self.port, baudrate=BASE_BAUD, timeout=self.config.read_timeout_s, write_timeout=2.0
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open ASIC port {self.port}: {exc}") from exc
        if self._closed:
            # close() ran while the port was opening: it must not stay open behind it.
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            raise DeviceError(f"ASIC port {self.port} was closed while it opened")
        try:
            self._open_regulator()
            self._serial.reset_input_buffer()
            self._reader = threading.Thread(target=self._read_loop, name=f"asic-reader {self.port}", daemon=True)
            self._reader.start()
            self._reset()
            if self.chip.on_chip_rolling:
                self._init_bm1366()
            else:
                self._init_bm1397()
            if self.config.known_answer:
                self.known_answer_check()
            self._next_census = time.monotonic() + self.config.census_interval_s
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the reader thread and free the port. Safe to call twice and after a failure."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        for port in (self._serial, self._regulator):
            if port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    port.close()
        self._found.put(_WAKE)

    def clone(self, port: str | None = None, config: DriverConfig | None = None) -> AsicDriver:
        """A new, unopened driver for the same chain (to bring it up again after a failure)."""
        return AsicDriver(port or self.port, self.chip, config or self.config, open_serial=self._open_serial)

    @property
    def failure(self) -> DeviceError | None:
        return self._failure

    # --- the reader thread -------------------------------------------------------------

    def _read_loop(self) -> None:
        ser = self._serial
        try:
            while not self._stopping.is_set():
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    self._on_bytes(data)
        except (serial.SerialException, OSError) as exc:
            if not self._stopping.is_set():
                self._fail(DeviceError(f"ASIC port {self.port} vanished or failed: {exc}"))

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            self._raw_tail = (self._raw_tail + data)[-_RAW_TAIL:]
            replies = self._decoder.feed(data)
            for reply in replies:
                if isinstance(reply, NonceReply):
                    found = self._table.resolve(reply)
                    if found is not None:
                        self._nonces += 1
                        self._found.put(found)
                elif self._census_started is not None and reply.register == REG_CHIP_ID:
                    self._census_answered.add(reply.chip_addr)
                else:
                    self._registers.put(reply)

    def _fail(self, error: DeviceError) -> None:
        if self._failure is None:
            self._failure = error
            log.error("%s", error)
        self._found.put(_WAKE)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise DeviceError(f"ASIC port {self.port} is closed")

    # --- raw commands ------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Write one encoded frame."""
        self._raise_if_failed()
        with self._write_lock:
            try:
                self._serial.write(frame)
            except (serial.SerialException, OSError) as exc:
                error = DeviceError(f"writing to ASIC port {self.port} failed: {exc}")
                self._fail(error)
                raise error from exc

    def write_register(self, register: int, value: int, chip_addr: int | None = None) -> None:
        self.send_frame(encode_command(write_register(register, value, chip_addr)))

    def read_register(self, register: int, chip_addr: int | None = None, *, silence_s: float) -> list[RegisterReply]:
        """Read a register; collects replies until ``silence_s`` passes without one."""
        while not self._registers.empty():
            self._registers.get_nowait()
        self.send_frame(encode_command(read_register(register, chip_addr)))
        replies: list[RegisterReply] = []
        deadline = time.monotonic() + silence_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = self._registers.get(timeout=remaining)
            except queue.Empty:
                break
            if reply.register == register and (chip_addr is None or reply.chip_addr == chip_addr):
                replies.append(reply)
                deadline = time.monotonic() + silence_s
        self._raise_if_failed()
        return replies

    # --- init --------------------------------------------------------------------------

    def _reset(self) -> None:
        line = self.config.reset_line
        if line is None:
            return
        if line not in ("dtr", "rts"):
            raise ConfigError(f"reset line must be 'dtr' or 'rts', got {line!r}")
        # Asserting DTR#/RTS# drives the pin low on a TTL adapter: that is the reset.
        setattr(self._serial, line, True)
        time.sleep(self.config.reset_hold_s)
        setattr(self._serial, line, False)
        time.sleep(self.config.reset_hold_s)

    def detect(self) -> int:
        """Count the chips answering a chip-id read; DeviceError when none or the wrong model.

        A reply lost on the link would hide a chip, and a chip counted short never gets an
        address: so the chain is read until two reads agree (the largest count wins) or
        ``detect_attempts`` run out, and a silent chain is asked again after a pause
        that doubles each time.
        """
        silence = self.config.detect_silence_s
        best: list[RegisterReply] = []
        foreign: set[int] = set()
        pause = silence
        for attempt in range(self.config.detect_attempts):
            replies = self.read_register(REG_CHIP_ID, silence_s=silence)
            ours = [reply for reply in replies if reply.value >> 16 == self.chip.chip_id]
            foreign |= {reply.value >> 16 for reply in replies} - {self.chip.chip_id}
            if ours and len(ours) == len(best):
                break
            if len(ours) > len(best):
                best = ours
            elif not best and attempt + 1 < self.config.detect_attempts:
                log.info("%s: no chip-id reply, asking again in %.2f s", self.port, pause)
                # close() from another thread ends the pause at once.
                self._stopping.wait(pause)
                self._raise_if_failed()
                pause *= 2
        if not best:
            if foreign:
                found = ", ".join(f"{i:04x}" for i in sorted(foreign))
                raise DeviceError(
                    f"chips on {self.port} answered with id {found}, not {self.chip.chip_id:04x} "
                    f"({self.chip.name}): pass the right --asic-chip"
                )
            other = self._other_model_answering()
            if other is not None:
                raise DeviceError(
                    f"chips on {self.port} answered as {other.name} (id {other.chip_id:04x}), "
                    f"not {self.chip.chip_id:04x} ({self.chip.name}): pass --asic-chip {other.name}"
                )
            raise DeviceError(
                f"no ASIC chip answered on {self.port}: check the board's power, the reset line, "
                f"the cable and that --asic-chip {self.chip.name} is right"
            )
        if foreign:
            # Among good replies a stray id is a frame the noise made, not a chip.
            log.warning("%s: ignored chip-id replies %s", self.port, ", ".join(f"{i:04x}" for i in sorted(foreign)))
        log.info("%d %s chip(s) on %s", len(best), self.chip.name, self.port)
        return len(best)

    def _other_model_answering(self) -> ChipModel | None:
        """Another model whose chip-id replies are in the bytes that did not decode."""
        with self._lock:
            raw = self._raw_tail
        for model in CHIPS.values():
            if model.reply_length == self.chip.reply_length:
                continue
            for reply in ReplyDecoder(model.reply_length).feed(raw):
                if isinstance(reply, RegisterReply) and reply.value >> 16 == model.chip_id:
                    return model
        return None

    def _assign_addresses(self, count: int) -> None:
        if count > 256:
            raise DeviceError(f"{count} chips answered on {self.port}; a chain addresses at most 256")
        self.send_frame(encode_command(chain_inactive()))
        interval = 256 // count
        self.addresses = [i * interval for i in range(count)]
        for address in self.addresses:
            self.send_frame(encode_command(set_address(address)))
        with self._lock:
            self.chips_answering = count
            self._misses = dict.fromkeys(self.addresses, 0)
            self._dead = set()

    def _init_bm1366(self) -> None:
        # Order and values as the open Bitaxe firmware brings a BM1366 chain up.
        for _ in range(3):
            self.write_register(REG_VERSION_MASK, encode_version_mask(DEFAULT_VERSION_MASK))
        self._chip_mask = DEFAULT_VERSION_MASK
        count = self.detect()
        self.write_register(REG_INIT_CONTROL, 0x00070000)
        self.write_register(REG_MISC_CONTROL, 0xFF0FC100)
        self._assign_addresses(count)
        self.write_register(REG_CORE_CONTROL, 0x80008540)
        self.write_register(REG_CORE_CONTROL, 0x80008020)
        self.set_ticket(256)
        self.write_register(REG_ANALOG_MUX, 0x00000003)
        self.write_register(REG_IO_DRIVER, 0x02111111)
        for address in self.addresses:
            self.write_register(REG_INIT_CONTROL, 0x000701F0, address)
            self.write_register(REG_MISC_CONTROL, 0xF000C100, address)
            self.write_register(REG_CORE_CONTROL, 0x80008540, address)
            self.write_register(REG_CORE_CONTROL, 0x80008020, address)
            self.write_register(REG_CORE_CONTROL, 0x800082AA, address)
        self.set_frequency(self.config.frequency_mhz or self.chip.default_mhz)
        self.write_register(REG_HASH_COUNTING, 0x0000151C)
        self.write_register(REG_VERSION_MASK, encode_version_mask(DEFAULT_VERSION_MASK))
        baud = self.config.baud
        if baud is None or baud == BM1366_FAST_BAUD:
            self.write_register(REG_FAST_UART, BM1366_FAST_UART_VALUE)
            self._switch_host_baud(BM1366_FAST_BAUD)
        elif baud != BASE_BAUD:
            raise ConfigError(f"a BM1366 link runs at {BASE_BAUD} or {BM1366_FAST_BAUD} baud, not {baud}")

    def _init_bm1397(self) -> None:
        count = self.detect()
        self._assign_addresses(count)
        self.write_register(REG_CLOCK_ORDER0, 0x00000000)
        self.write_register(REG_CLOCK_ORDER1, 0x00000000)
        self.write_register(REG_ORDERED_CLOCK_ENABLE, 0x00000001)
        self.write_register(REG_CORE_CONTROL, 0x80008074)
        self.set_ticket(256)
        self.write_register(REG_PLL3, 0xC0700111)
        self.write_register(REG_FAST_UART, 0x0600000F)
        self.write_register(REG_MISC_CONTROL, encode_misc_control_baud(BASE_BAUD))
        self.write_register(REG_PLL0_DIVIDER, 0x0F0F0F00)
        self.set_frequency(self.config.frequency_mhz or self.chip.default_mhz)
        baud = self.config.baud
        if baud is not None and baud != BASE_BAUD:
            self.write_register(REG_MISC_CONTROL, encode_misc_control_baud(baud))
            self._switch_host_baud(baud)

    def _switch_host_baud(self, baud: int) -> None:
        try:
            self._serial.flush()
            self._serial.baudrate = baud
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot switch {self.port} to {baud} baud: {exc}") from exc

    # --- settings ----------------------------------------------------------------------

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
        if mv is not None and self._regulator is None:
            raise DeviceError(f"no core-voltage regulator reachable for {self.port}: "
                              "the board's voltage cannot be set (DriverConfig.regulator_port)")
        # READ_VOUT is good to half a register step: closer than that is already there.
        tolerance = 2.0**self._vout_exponent * 500.0
        if mv is not None and self.voltage_mv is not None and mv > self.voltage_mv + tolerance:
            self.set_voltage(mv)
        self._ramp_clock(mhz, ramp)
        if mv is not None and (self.voltage_mv is None or mv < self.voltage_mv - tolerance):
            self.set_voltage(mv)
        return self.frequency_mhz, self.voltage_mv

    @property
    def _follows_vf(self) -> bool:
        return self.config.follow_vf and self._regulator is not None and self.chip.vf is not None

    def _ramp_clock(self, mhz: float, ramp: bool) -> None:
        target = self.chip.encode_pll(mhz)
        steps: list[float] = []
        step = self.config.ramp_step_mhz
        current = self.frequency_mhz
        if ramp and step > 0:
            while abs(target.mhz - current) > step:
                current += step if target.mhz > current else -step
                steps.append(current)
        for f in [*steps, mhz]:
            setting = self.chip.encode_pll(f)
            self.write_register(REG_PLL0, setting.value)
            self.frequency_mhz = setting.mhz
            if self.config.ramp_delay_s > 0 and f != mhz:
                time.sleep(self.config.ramp_delay_s)
        log.info("%s clock at %.2f MHz", self.port, self.frequency_mhz)

    # --- core voltage ------------------------------------------------------------------

    def _open_regulator(self) -> None:
        port = self.config.regulator_port
        if port is None:
            return
        try:
            self._regulator = self._open_serial(port, baudrate=BASE_BAUD, timeout=self.config.regulator_timeout_s,
                                                write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open the core-voltage regulator port {port}: {exc}") from exc
        try:
            self._vout_exponent = vout_exponent(self._regulator_read(PMBUS_VOUT_MODE) & 0xFF)
        except ValueError as exc:
            raise DeviceError(f"regulator on {port}: {exc}") from exc
        self.voltage_mv = self.read_voltage()
        log.info("%s: core voltage %.0f mV", port, self.voltage_mv)

    def _regulator_transaction(self, request: RegulatorRequest) -> int:
        port = self.config.regulator_port
        with self._regulator_lock:
            try:
                self._regulator.reset_input_buffer()
                self._regulator.write(encode_regulator_request(request))
                frame = bytes(self._regulator.read(BRIDGE_REPLY_LENGTH))
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(f"core-voltage regulator on {port} failed: {exc}") from exc
        if len(frame) < BRIDGE_REPLY_LENGTH:
            raise DeviceError(f"core-voltage regulator on {port} did not answer command {request.command:#04x}")
        try:
            status, word = decode_regulator_reply(frame, request.address)
        except ValueError as exc:
            raise DeviceError(f"core-voltage regulator on {port}: {exc}") from exc
        if status != STATUS_ACK:
            raise DeviceError(f"core-voltage regulator on {port} refused command {request.command:#04x} "
                              f"(status {status})")
        return word

    def _regulator_read(self, command: int) -> int:
        return self._regulator_transaction(RegulatorRequest(False, self.config.regulator_address, command))

    def set_voltage(self, mv: float) -> float:
        """Set the board's core voltage (mV) and read it back; returns the voltage reached."""
        if self._regulator is None:
            raise DeviceError(f"no core-voltage regulator reachable for {self.port}")
        try:
            # Up: the register's step must not take the rail below what the chips need.
            word = encode_ulinear16(mv / 1000.0, self._vout_exponent, round_up=True)
        except ValueError as exc:
            raise DeviceError(f"core voltage {mv} mV: {exc}") from exc
        self._regulator_transaction(RegulatorRequest(True, self.config.regulator_address, PMBUS_VOUT_COMMAND, word))
        self.voltage_mv = self.read_voltage()
        log.info("%s core voltage at %.0f mV", self.port, self.voltage_mv)
        return self.voltage_mv

    def read_voltage(self) -> float:
        """The regulator's output voltage (READ_VOUT), mV."""
        return decode_ulinear16(self._regulator_read(PMBUS_READ_VOUT), self._vout_exponent) * 1000.0

    def read_board_watts(self) -> float | None:
        """The regulator's output power (READ_POUT), W; None without a regulator."""
        if self._regulator is None:
            return None
        return decode_linear11(self._regulator_read(PMBUS_READ_POUT))

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
            if self.chip.on_chip_rolling:
                job366 = bm1366_job(work, job_id, starting_nonce=starting_nonce)
                live = LiveJob(job_id, work, job366.version, chip_version_mask(work), [job366.version])
                frame = encode_job(job366)
            else:
                versions = midstate_versions(work.version, work.version_mask)
                job397 = bm1397_job(work, job_id, versions, starting_nonce=starting_nonce)
                live = LiveJob(job_id, work, versions[0], 0, versions)
                frame = encode_job(job397)
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
        self._raise_if_failed()
        try:
            item = self._found.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if not isinstance(item, FoundNonce):
            self._raise_if_failed()
            return None
        return item

    def known_answer_check(self) -> None:
        """Send the captured job and wait for a captured nonce; DeviceError when none comes.

        The job goes out again after ``known_answer_retry_s`` (doubling) without the nonce:
        the one reply that carries it may be lost on a noisy link, and the chain, searching
        on, would not find it again.
        """
        timeout = self.config.known_answer_timeout_s
        deadline = time.monotonic() + timeout
        others = sends = 0
        wait = self.config.known_answer_retry_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self.send_work(known_answer.work(), clean=True, starting_nonce=known_answer.START_NONCE)
                sends += 1
                attempt_end = time.monotonic() + min(wait, remaining)
                wait *= 2
                while (left := attempt_end - time.monotonic()) > 0:
                    found = self.next_found(left)
                    if found is None:
                        continue
                    if (found.nonce, found.version) in known_answer.GOLDEN:
                        log.info("%s: known answer %08x (version %08x) came back", self.port, found.nonce,
                                 found.version)
                        self._known_answer_passed = True
                        return
                    others += 1
            self._known_answer_passed = False
            raise DeviceError(
                f"known-answer check failed on {self.port}: no known nonce within {timeout:g} s "
                f"({sends} tries, {others} other nonces); wrong chip model, clock or a damaged chain"
            )
        finally:
            self.clear_jobs()

    # --- health ------------------------------------------------------------------------

    def poll_chips(self) -> int:
        """Run the periodic chip census without blocking; returns the chips answering.

        Every ``census_interval_s`` a chip-id read goes out; ``census_window_s`` later the
        answers are counted, per chip address. A chip that missed is asked again sooner
        (``census_retry_s``, doubling) and counts as dead only after ``census_misses``
        misses in a row: one reply lost on a noisy link changes nothing. Dead chips lower
        ``hashrate``; when every chip is dead this raises DeviceError.
        """
        now = time.monotonic()
        send = False
        with self._lock:
            if self._census_started is not None:
                if now - self._census_started < self.config.census_window_s:
                    return self.chips_answering
                self._census_started = None
                self._count_census(now)
            elif now >= self._next_census:
                self._census_started, send = now, True
                self._census_answered = set()
        if send:
            self.send_frame(encode_command(read_register(REG_CHIP_ID)))
        elif self.chips_answering == 0:
            error = DeviceError(
                f"no ASIC chip on {self.port} answers any more ({self.config.census_misses} chip-id reads in a row)"
            )
            self._fail(error)
            raise error
        return self.chips_answering

    def _count_census(self, now: float) -> None:
        """Book one census's answers (under ``_lock``) and set when the next goes out."""
        config = self.config
        silent = False
        for address in self.addresses:
            if address in self._census_answered:
                if address in self._dead:
                    self._dead.discard(address)
                    log.warning("%s: chip %d answers again", self.port, address)
                self._misses[address] = 0
                continue
            self._census_misses += 1
            misses = self._misses[address] = self._misses.get(address, 0) + 1
            if address in self._dead:
                continue
            if misses >= config.census_misses:
                self._dead.add(address)
                log.warning("%s: chip %d counted dead after %d missed chip-id reads", self.port, address, misses)
            else:
                silent = True
                log.info("%s: chip %d missed a chip-id read (%d in a row), asking again", self.port, address, misses)
        self.chips_answering = len(self.addresses) - len(self._dead)
        if silent:
            self._next_census = now + min(self._census_backoff, config.census_interval_s)
            self._census_backoff *= 2
        else:
            self._next_census = now + config.census_interval_s
            self._census_backoff = config.census_retry_s

    @property
    def chips_silent(self) -> int:
        """Chips that missed the last census but not yet enough times in a row to count as dead."""
        with self._lock:
            return sum(1 for a, misses in self._misses.items() if misses and a not in self._dead)

    @property
    def stats(self) -> DriverStats:
        with self._lock:
            table, decoder = self._table.stats, self._decoder.stats
            return DriverStats(
                chips=len(self.addresses),
                chips_answering=self.chips_answering,
                frequency_mhz=self.frequency_mhz,
                ticket=self.ticket,
                baud=int(self._serial.baudrate) if self._serial is not None else 0,
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
                chips_silent=sum(1 for a, misses in self._misses.items() if misses and a not in self._dead),
                census_misses=self._census_misses,
            )
