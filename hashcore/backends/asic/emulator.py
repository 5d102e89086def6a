"""A chain of emulated BM1366 / BM1397 chips behind a pseudo-terminal.

Two layers, as everywhere in hashcore: :class:`EmulatedChain` is the chips' behaviour
without I/O (frames in, reply values out, nonces found for a given number of hashes);
:class:`ChainEmulator` serves it on the master side of a pty from one thread, paces the
hashing to a configured rate, encodes replies byte for byte and injects faults. The driver
opens the pty's slave path like any serial port.

What a chip does here, as on silicon:

* answers chip-id reads (register 0) with its model's id, in chain order;
* forgets its address on CHAIN_INACTIVE and takes the next SET_ADDRESS;
* keeps every register written to it; PLL0 sets its clock, which sets its hash rate;
* hashes the last job broadcast: chip i of n searches its own 1/n of the nonce range from
  the job's starting nonce; a BM1366 rolls the version bits allowed by register 0xA4
  (small core k hashes version field k, k < 8), a BM1397 hashes each midstate it got;
* reports a nonce only when the hash passes its ticket mask (register 0x14);
* runs at the core voltage of the board's regulator, a PMBus device (TPS546-like) on a
  second pty behind a serial-to-SMBus bridge (:attr:`ChainEmulator.regulator_port`);
  below the voltage its V/f table asks for at its clock the chip's nonces come back
  wrong, as an undervolted chip's do.

Emulated difficulty: a real ticket mask of 0 means difficulty 1, i.e. 2**32 hashes per
reported nonce on average, hopeless for a chain hashed on a CPU. ``base_difficulty`` says
what difficulty a zero mask stands for here. The default, 1.0, is the real behaviour;
tests and the on-demand emulator of the ``asic`` backend lower it (2**-32 makes a zero
mask report every hash), and the driver, told the same figure, converts pool difficulties
into masks in the same units, so the nonces that reach the miner are exactly as good as
on hardware.

Power: a chip draws ``static + k * f * V**2`` (:meth:`ChipModel.power_ratio`), anchored so
that at the stock clock and voltage the board reports ``j_per_th`` joules per terahash it
really computed; each hash is booked at the joules per hash of the operating point it was
computed at, plus ``idle_watts`` over time. The watts are small because the hashes are few.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from hashcore.backends.asic.chips import (
    BM1366_FAST_BAUD,
    BM1366_FAST_UART_VALUE,
    BRIDGE_HOST,
    BRIDGE_REQUEST_LENGTH,
    PMBUS_OPERATION,
    PMBUS_READ_IOUT,
    PMBUS_READ_POUT,
    PMBUS_READ_VOUT,
    PMBUS_VOUT_COMMAND,
    PMBUS_VOUT_MODE,
    REG_CHIP_ID,
    REG_FAST_UART,
    REG_MISC_CONTROL,
    REG_PLL0,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    REGULATOR_ADDRESS,
    STATUS_ACK,
    STATUS_BAD_PEC,
    STATUS_NACK,
    VERSION_SHIFT,
    VOUT_MODE_ULINEAR16_MINUS9,
    ChipModel,
    chip_model,
    decode_misc_control_baud,
    decode_regulator_request,
    decode_ticket_mask,
    decode_ulinear16,
    decode_version_mask,
    encode_linear11,
    encode_regulator_reply,
    encode_ulinear16,
    ticket_target,
    vout_exponent,
)
from hashcore.backends.asic.framing import (
    Bm1366Job,
    Bm1397Job,
    Command,
    CommandKind,
    HostFrameDecoder,
    Job,
    NonceReply,
    RegisterReply,
    Reply,
    encode_reply,
)
from hashcore.backends.asic.jobs import header76_of
from hashcore.backends.base import Backend, open_backend
from hashcore.backends.reference import ReferenceBackend
from hashcore.errors import BackendUnavailable, ConfigError
from hashcore.sha256 import sha256_from_state
from hashcore.work import NONCE_SPACE, Work, deposit_bits

log = logging.getLogger("hashcore.backends.asic.emulator")

#: Small cores that report their own version (the id byte's low 3 bits).
_BM1366_LANES = 8
#: The most hashing debt carried from one tick to the next when the CPU falls behind.
_MAX_BACKLOG_S = 0.5
_IDLE_TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """An emulated chain.

    Attributes:
        chip: "bm1366" or "bm1397".
        chips: chips on the chain.
        hashrate: hashes per second of the whole chain with every chip at its model's
            default clock; a chip's share scales with the clock its PLL is set to.
        base_difficulty: the difficulty a zero ticket mask stands for (1.0: real chips;
            see the module docstring).
        j_per_th: joules per terahash the board reports.
        idle_watts: power drawn with no job.
        scanner: "auto" hashes BM1366 jobs with the C backend when it opens, else with
            hashlib; "reference" always uses hashlib. BM1397 jobs start from midstates,
            which hashlib cannot, so they use the pure-Python compression (slow).
        tick_s: the serving loop's period.
        seed: seeds the fault injection.
        vout_mv: the regulator's output at power-on (None: the chip's stock voltage).
        vout_range_mv: what the regulator accepts; a VOUT_COMMAND outside it is NACKed.
        link: a path made a symbolic link to the chain's pty, as udev names a board under
            /dev/serial/by-id: it stays the same when the board is unplugged and plugged
            back (:meth:`ChainEmulator.vanish`, :meth:`ChainEmulator.replug`), while the
            pty behind it changes. The regulator's link is ``link + ".regulator"``.
    """

    chip: str = "bm1366"
    chips: int = 1
    hashrate: float = 200_000.0
    base_difficulty: float = 1.0
    j_per_th: float = 21.5
    idle_watts: float = 0.0
    scanner: str = "auto"
    tick_s: float = 0.005
    seed: int = 0
    vout_mv: float | None = None
    vout_range_mv: tuple[float, float] = (700.0, 1400.0)
    link: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.chips <= 256:
            raise ConfigError(f"an emulated chain has 1..256 chips, not {self.chips}")
        if not self.hashrate > 0 or not self.base_difficulty > 0:
            raise ConfigError("emulator hashrate and base difficulty must be positive")


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults the emulator injects into its nonce replies, and its register replies too
    with ``register_faults``.

    Attributes:
        corrupt_crc: probability that a reply's CRC is wrong.
        drop_byte: probability that a reply loses one byte.
        garbage: probability that 1-16 random bytes (never 0xAA, so they cannot fake a
            preamble) come before a reply.
        late_s: delay between finding a nonce and sending it.
        dead_chips: chain positions that stopped answering: they neither hash nor reply.
        register_faults: CRC errors, dropped bytes and garbage hit register replies as
            well (chip-id reads at init and in the census), as on a truly noisy link.
    """

    corrupt_crc: float = 0.0
    drop_byte: float = 0.0
    garbage: float = 0.0
    late_s: float = 0.0
    dead_chips: frozenset[int] = frozenset()
    register_faults: bool = False

    def __post_init__(self) -> None:
        for name in ("corrupt_crc", "drop_byte", "garbage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"emulator fault {name} is a probability in [0, 1], not {value}")
        if not 0.0 <= self.late_s <= MAX_LATE_S:
            raise ConfigError(f"emulator fault late_s is 0..{MAX_LATE_S:g} seconds, not {self.late_s}")


#: The longest reply delay the emulator injects (longer ones only starve the known answer).
MAX_LATE_S = 1.0
#: Fault names an operator writes (``--asic-emulator-faults garbage=0.5,drop=0.2``), with
#: the :class:`Faults` field each sets; the field names are accepted too.
FAULT_NAMES = {
    "garbage": "garbage",
    "drop": "drop_byte",
    "drop_byte": "drop_byte",
    "crc": "corrupt_crc",
    "corrupt_crc": "corrupt_crc",
    "late": "late_s",
    "late_s": "late_s",
    "registers": "register_faults",
    "register_faults": "register_faults",
}


def parse_faults(text: str) -> Faults:
    """``garbage=0.5,drop=0.2,crc=0.1,late=0.2,registers=1`` as :class:`Faults`
    (probabilities in [0, 1], ``late`` in seconds up to 1, ``registers`` 0 or 1).
    ConfigError naming the first bad item."""
    settings: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ConfigError(f"emulator fault {item!r} needs a value: NAME=VALUE")
        if name not in FAULT_NAMES:
            raise ConfigError(f"unknown emulator fault {name!r}; known: garbage, drop, crc, late, registers")
        field_name = FAULT_NAMES[name]
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"emulator fault {name}={raw.strip()!r} is not a number") from None
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            unit = " seconds" if field_name == "late_s" else ""
            raise ConfigError(f"emulator fault {name}={raw.strip()} is out of range: 0..1{unit}")
        if field_name == "register_faults" and value not in (0.0, 1.0):
            raise ConfigError(f"emulator fault {name}={raw.strip()} must be 0 or 1")
        if field_name in settings:
            raise ConfigError(f"emulator fault {name} is given twice")
        settings[field_name] = value
    return Faults(
        corrupt_crc=settings.get("corrupt_crc", 0.0),
        drop_byte=settings.get("drop_byte", 0.0),
        garbage=settings.get("garbage", 0.0),
        late_s=settings.get("late_s", 0.0),
        register_faults=settings.get("register_faults", 0.0) == 1.0,
    )


@dataclass(frozen=True, slots=True)
class BoardPower:
    """The board's power report.

    Attributes:
        joules: energy used since the emulator started (cumulative).
        watts: the current draw.
    """

    joules: float
    watts: float


# --- the chips, without I/O ------------------------------------------------------------


@dataclass(slots=True)
class EmulatedChip:
    """One chip's state.

    Attributes:
        position: place in the chain (0 is nearest the host).
        address: the address it answers to.
        addressed: whether it took an address since the last CHAIN_INACTIVE.
        registers: every value written to it.
        frequency_mhz: the clock its PLL is set to; frequency_history: every change.
        cursor, round: progress through its share of the nonce range of the current job
            (``round`` counts full passes; a BM1366 rolls the next versions each pass).
    """

    position: int
    frequency_mhz: float
    address: int = 0
    addressed: bool = False
    registers: dict[int, int] = field(default_factory=dict)
    frequency_history: list[float] = field(default_factory=list)
    cursor: int = 0
    round: int = 0


class _JobHasher(Protocol):
    @property
    def starting_nonce(self) -> int: ...

    def lanes(self, chip: EmulatedChip) -> int: ...

    def scan(self, chip: EmulatedChip, lane: int, start: int, count: int, target: int) -> list[int]: ...

    def reply(self, chip: EmulatedChip, lane: int, nonce: int) -> NonceReply: ...


class _Bm1366Hasher:
    """A BM1366 job: small core k hashes version field k (+ 8 per pass) under the chip's mask."""

    def __init__(self, job: Bm1366Job, scanner: Backend):
        self.job = job
        self._scanner = scanner
        self._works: dict[tuple[int, int], Work] = {}

    @property
    def starting_nonce(self) -> int:
        return self.job.starting_nonce

    @staticmethod
    def _field_mask(chip: EmulatedChip) -> int:
        return decode_version_mask(chip.registers.get(REG_VERSION_MASK, 0)) >> VERSION_SHIFT

    def lanes(self, chip: EmulatedChip) -> int:
        return min(_BM1366_LANES, 1 << self._field_mask(chip).bit_count())

    def _field(self, chip: EmulatedChip, lane: int) -> int:
        mask = self._field_mask(chip)
        index = (chip.round * self.lanes(chip) + lane) % (1 << mask.bit_count())
        return deposit_bits(index, mask)

    def scan(self, chip: EmulatedChip, lane: int, start: int, count: int, target: int) -> list[int]:
        version = self.job.version | (self._field(chip, lane) << VERSION_SHIFT)
        work = self._works.get((version, target))
        if work is None:
            work = self._works[(version, target)] = Work(header76_of(self.job, version), target)
        return self._scanner.scan(work, start, count, max(1, count)).nonces

    def reply(self, chip: EmulatedChip, lane: int, nonce: int) -> NonceReply:
        # The byte after the nonce is undocumented on the BM1366; the chain position goes there.
        return NonceReply(nonce, chip.position, self.job.job_id | lane, self._field(chip, lane))


class _Bm1397Hasher:
    """A BM1397 job: lane k hashes midstate k. Starts from a midstate, so no hashlib."""

    def __init__(self, job: Bm1397Job):
        self.job = job
        self._tail = job.merkle_tail + struct.pack("<II", job.ntime, job.nbits)

    @property
    def starting_nonce(self) -> int:
        return self.job.starting_nonce

    def lanes(self, chip: EmulatedChip) -> int:
        return self.job.num_midstates

    def scan(self, chip: EmulatedChip, lane: int, start: int, count: int, target: int) -> list[int]:
        state = self.job.midstates[lane]
        sha256 = hashlib.sha256
        found = []
        for nonce in range(start, start + count):
            first = sha256_from_state(state, self._tail + struct.pack("<I", nonce), 80)
            if int.from_bytes(sha256(first).digest(), "little") <= target:
                found.append(nonce)
        return found

    def reply(self, chip: EmulatedChip, lane: int, nonce: int) -> NonceReply:
        # The midstate goes in both places the sources disagree about (ASIC.md).
        return NonceReply(nonce, lane, self.job.job_id | lane)


class EmulatedChain:
    """The chips of one chain: protocol behaviour and hashing, no I/O, no clock."""

    def __init__(self, model: ChipModel, chips: int, base_difficulty: float, scanner: Backend):
        self.model = model
        self.base_difficulty = base_difficulty
        self.chips = [EmulatedChip(i, model.start_mhz) for i in range(chips)]
        self.voltage_mv = model.stock_mv
        #: Settings (a clock or a voltage) that left a live chip below its V/f table.
        self.unstable_events = 0
        self.dead: frozenset[int] = frozenset()
        self.link_baud = 115_200
        self.jobs_received = 0
        self.foreign_frames = 0
        self._scanner = scanner
        self._hasher: _JobHasher | None = None

    def _live(self) -> list[EmulatedChip]:
        return [chip for chip in self.chips if chip.position not in self.dead]

    def handle(self, frame: Command | Job) -> list[RegisterReply]:
        """Apply one host frame; returns the register replies, in chain order."""
        if isinstance(frame, Command):
            return self._command(frame)
        self._job(frame)
        return []

    def _command(self, command: Command) -> list[RegisterReply]:
        kind = command.kind
        if kind is CommandKind.CHAIN_INACTIVE:
            for chip in self.chips:
                chip.addressed = False
            return []
        if kind is CommandKind.SET_ADDRESS:
            for chip in self._live():
                if not chip.addressed:
                    chip.address, chip.addressed = command.chip_addr, True
                    break
            return []
        targets = [c for c in self._live() if command.broadcast or c.address == command.chip_addr]
        if kind is CommandKind.WRITE:
            assert command.value is not None
            for chip in targets:
                self._write(chip, command.register, command.value)
            return []
        return [RegisterReply(self._read(chip, command.register), chip.address, command.register) for chip in targets]

    def _read(self, chip: EmulatedChip, register: int) -> int:
        if register == REG_CHIP_ID:
            return self.model.id_value
        return chip.registers.get(register, 0)

    def _write(self, chip: EmulatedChip, register: int, value: int) -> None:
        chip.registers[register] = value
        if register == REG_PLL0:
            chip.frequency_mhz = self.model.decode_pll(value)
            chip.frequency_history.append(chip.frequency_mhz)
            if not self.stable(chip):
                self.unstable_events += 1
        elif register == REG_FAST_UART and self.model.on_chip_rolling and value == BM1366_FAST_UART_VALUE:
            self.link_baud = BM1366_FAST_BAUD
        elif register == REG_MISC_CONTROL and not self.model.on_chip_rolling:
            self.link_baud = decode_misc_control_baud(value)

    def _job(self, job: Job) -> None:
        if isinstance(job, Bm1366Job) != self.model.on_chip_rolling:
            self.foreign_frames += 1
            return
        self.jobs_received += 1
        self._hasher = _Bm1366Hasher(job, self._scanner) if isinstance(job, Bm1366Job) else _Bm1397Hasher(job)
        for chip in self.chips:
            chip.cursor = chip.round = 0

    @property
    def has_job(self) -> bool:
        return self._hasher is not None

    def set_voltage(self, mv: float) -> None:
        """The board's core rail moved to ``mv`` (every chip of the chain shares it)."""
        self.voltage_mv = mv
        self.unstable_events += sum(1 for chip in self._live() if not self.stable(chip))

    def stable(self, chip: EmulatedChip) -> bool:
        """Whether the rail is high enough for the chip's clock (its V/f table)."""
        return self.model.stable_at(chip.frequency_mhz, self.voltage_mv)

    def power_ratio(self, chip: EmulatedChip) -> float:
        """The chip's power over its power at the stock point (clock and voltage)."""
        return self.model.power_ratio(chip.frequency_mhz, self.voltage_mv)

    def rate_share(self, chip: EmulatedChip) -> float:
        """This chip's share of the chain's rate: its clock against the model's default."""
        if chip.position in self.dead or self._hasher is None:
            return 0.0
        return chip.frequency_mhz / self.model.default_mhz / len(self.chips)

    def mine(self, chip: EmulatedChip, hashes: int) -> tuple[list[NonceReply], int]:
        """Let ``chip`` compute about ``hashes`` hashes; returns its nonce replies and the hashes done."""
        hasher = self._hasher
        if hasher is None or chip.position in self.dead or hashes <= 0:
            return [], 0
        lanes = hasher.lanes(chip)
        share = NONCE_SPACE // len(self.chips)
        count = min(max(1, hashes // lanes), share - chip.cursor)
        start = (hasher.starting_nonce + chip.position * share + chip.cursor) % NONCE_SPACE
        target = ticket_target(decode_ticket_mask(chip.registers.get(REG_TICKET_MASK, 0)), self.base_difficulty)
        replies = []
        for lane in range(lanes):
            first = min(count, NONCE_SPACE - start)
            nonces = hasher.scan(chip, lane, start, first, target)
            if first < count:
                nonces += hasher.scan(chip, lane, 0, count - first, target)
            replies += [hasher.reply(chip, lane, nonce) for nonce in nonces]
        if not self.stable(chip):
            # An undervolted chip's timing fails: what it reports no longer hashes right.
            replies = [replace(r, nonce=r.nonce ^ 0x1) for r in replies]
        chip.cursor += count
        if chip.cursor >= share:
            chip.cursor, chip.round = 0, chip.round + 1
        return replies, count * lanes


class EmulatedRegulator:
    """The board's core-voltage regulator: PMBus word transactions in, replies out.

    It answers at :data:`REGULATOR_ADDRESS` to OPERATION, VOUT_MODE (ULINEAR16, exponent
    -9), VOUT_COMMAND (NACKed outside ``range_mv``), READ_VOUT, READ_IOUT and READ_POUT
    (LINEAR11, from ``watts``); anything else is NACKed, a bad PEC too. A new VOUT goes
    to ``on_vout`` (the chain's rail).
    """

    def __init__(self, vout_mv: float, range_mv: tuple[float, float], on_vout: Callable[[float], None],
                 watts: Callable[[], float]) -> None:
        self._exponent = vout_exponent(VOUT_MODE_ULINEAR16_MINUS9)
        # The output is analog: exact at power-on, a register step after a VOUT_COMMAND;
        # READ_VOUT rounds it to the nearest step.
        self.vout_mv = vout_mv
        self.range_mv = range_mv
        self.operation = 0x80  # on
        self.writes: list[float] = []
        self._on_vout = on_vout
        self._watts = watts

    def handle(self, frame: bytes) -> bytes:
        try:
            request = decode_regulator_request(frame)
        except ValueError:
            return encode_regulator_reply(frame[2] if len(frame) > 2 else 0, STATUS_BAD_PEC)
        address = request.address
        if address != REGULATOR_ADDRESS:
            return encode_regulator_reply(address, STATUS_NACK)
        command = request.command
        if request.write:
            if command == PMBUS_VOUT_COMMAND:
                mv = decode_ulinear16(request.word, self._exponent) * 1000.0
                low, high = self.range_mv
                if not low <= mv <= high:
                    return encode_regulator_reply(address, STATUS_NACK)
                self.vout_mv = mv
                self.writes.append(mv)
                self._on_vout(mv)
            elif command == PMBUS_OPERATION:
                self.operation = request.word & 0xFF
            else:
                return encode_regulator_reply(address, STATUS_NACK)
            return encode_regulator_reply(address, STATUS_ACK, request.word)
        if command == PMBUS_VOUT_MODE:
            word = VOUT_MODE_ULINEAR16_MINUS9
        elif command in (PMBUS_VOUT_COMMAND, PMBUS_READ_VOUT):
            word = encode_ulinear16(self.vout_mv / 1000.0, self._exponent)
        elif command == PMBUS_READ_POUT:
            word = encode_linear11(self._watts())
        elif command == PMBUS_READ_IOUT:
            word = encode_linear11(self._watts() / (self.vout_mv / 1000.0))
        elif command == PMBUS_OPERATION:
            word = self.operation
        else:
            return encode_regulator_reply(address, STATUS_NACK)
        return encode_regulator_reply(address, STATUS_ACK, word)


# --- serving it on a pty ---------------------------------------------------------------


def _relink(link: str, target: str) -> str:
    """Point ``link`` at ``target`` in one step (a reader never finds it missing); returns ``link``."""
    temporary = f"{link}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)
    return link


def _open_scanner(kind: str) -> Backend:
    if kind == "auto":
        try:
            return open_backend("c")
        except (BackendUnavailable, ConfigError, ImportError) as exc:
            log.info("emulator hashes with hashlib: the C backend is not available (%s)", exc)
    elif kind != "reference":
        raise ConfigError(f"emulator scanner must be 'auto' or 'reference', not {kind!r}")
    return ReferenceBackend()


class ChainEmulator:
    """An :class:`EmulatedChain` served on a pseudo-terminal by one thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`; :attr:`port` is the
    path to open, :attr:`regulator_port` the core-voltage regulator's (the links of
    ``config.link`` where given). :attr:`faults` may be replaced at any time.
    :meth:`vanish` unplugs the board and :meth:`replug` plugs it back, power-cycled.
    """

    def __init__(self, config: EmulatorConfig | None = None, faults: Faults | None = None):
        self.config = config or EmulatorConfig()
        self.model = chip_model(self.config.chip)
        self.faults = faults or Faults()
        self._rng = random.Random(self.config.seed)
        self._scanner: Backend | None = None
        self.chain: EmulatedChain | None = None
        self.regulator: EmulatedRegulator | None = None
        self._master = -1
        self._slave = -1
        self._reg_master = -1
        self._reg_slave = -1
        self._reg_in = bytearray()
        self._reg_out = bytearray()
        self.port = ""
        self.regulator_port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.lock = threading.Lock()
        self._decoder = HostFrameDecoder()
        self._out = bytearray()
        self._due: list[tuple[float, bytes]] = []
        self._budget: list[float] = []
        self._hashes = 0
        self._joules = 0.0
        self._watts = 0.0
        self._shortfall = 0.0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> ChainEmulator:
        cfg = self.config
        self._stop.clear()
        self._decoder = HostFrameDecoder()
        self._out.clear()
        self._due.clear()
        self._reg_in.clear()
        self._reg_out.clear()
        self._scanner = _open_scanner(cfg.scanner)
        self.chain = EmulatedChain(self.model, cfg.chips, cfg.base_difficulty, self._scanner)
        chain = self.chain
        vout = cfg.vout_mv if cfg.vout_mv is not None else self.model.stock_mv
        chain.set_voltage(vout)
        self.regulator = EmulatedRegulator(vout, cfg.vout_range_mv, chain.set_voltage, lambda: self._watts)
        self._budget = [0.0] * cfg.chips
        import tty  # POSIX only, like the pseudo-terminal itself

        self._master, self._slave = os.openpty()
        self._reg_master, self._reg_slave = os.openpty()
        # Raw at once: the default line discipline would echo our replies back to us.
        for slave, master in ((self._slave, self._master), (self._reg_slave, self._reg_master)):
            tty.setraw(slave)
            os.set_blocking(master, False)
        self.port = os.ttyname(self._slave)
        self.regulator_port = os.ttyname(self._reg_slave)
        if cfg.link is not None:
            self.port = _relink(cfg.link, self.port)
            self.regulator_port = _relink(cfg.link + ".regulator", self.regulator_port)
        self._thread = threading.Thread(target=self._serve, name=f"asic-emulator {self.port}", daemon=True)
        self._thread.start()
        log.info("emulated %d x %s chain on %s", cfg.chips, self.model.name, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty (the host then sees the device vanish)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._reg_master, self._reg_slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._reg_master = self._reg_slave = -1
        if self.config.link is not None:
            for link in (self.config.link, self.config.link + ".regulator"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
        if self._scanner is not None:
            self._scanner.close()
            self._scanner = None

    def vanish(self) -> None:
        """Unplug the board: the same as :meth:`stop`, named for what a test means by it.
        The pty closes (an open port fails) and ``config.link`` disappears."""
        self.stop()

    def replug(self) -> ChainEmulator:
        """Plug the board back after :meth:`vanish`: new ptys (behind the same
        ``config.link``), chips power-cycled (no address, no registers, no job)."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        """Whether the board is plugged in: started and not stopped since."""
        return self._thread is not None and not self._stop.is_set()

    def __enter__(self) -> ChainEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what telemetry and tests read -------------------------------------------------

    def board_power(self) -> BoardPower:
        with self.lock:
            return BoardPower(self._joules, self._watts)

    @property
    def hashes_done(self) -> int:
        """Hashes the chain really computed."""
        with self.lock:
            return self._hashes

    @property
    def shortfall_hashes(self) -> float:
        """Hashes the CPU could not keep up with (dropped from the backlog)."""
        with self.lock:
            return self._shortfall

    @property
    def hashrate_per_chip_mhz(self) -> float:
        """The driver's figure for this chain: hashes per second per chip per MHz."""
        return self.config.hashrate / self.config.chips / self.model.default_mhz

    # --- the serving thread ------------------------------------------------------------

    def _serve(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            # Without a job only frames wake the loop; select sees those at once.
            timeout = self.config.tick_s if self.chain is not None and self.chain.has_job else _IDLE_TICK_S
            if self._due:
                timeout = min(timeout, max(0.0, min(due for due, _ in self._due) - now))
            writers = [fd for fd, out in ((self._master, self._out), (self._reg_master, self._reg_out)) if out]
            try:
                readable, _, _ = select.select([self._master, self._reg_master], writers, [], timeout)
            except (OSError, ValueError):
                return
            with self.lock:
                if self._master in readable and not self._receive():
                    return
                if self._reg_master in readable:
                    self._regulate()
                now = time.monotonic()
                self._hash(now - last)
                last = now
                self._release(now)
            if self._out and not self._send():
                return
            if self._reg_out:
                self._send_regulator()

    def _regulate(self) -> None:
        """Answer each whole bridge request; resynchronise on the preamble after garbage."""
        try:
            self._reg_in += os.read(self._reg_master, 4096)
        except (BlockingIOError, OSError):
            return
        assert self.regulator is not None
        buf = self._reg_in
        while True:
            start = buf.find(bytes((BRIDGE_HOST,)))
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < BRIDGE_REQUEST_LENGTH:
                return
            self._reg_out += self.regulator.handle(bytes(buf[:BRIDGE_REQUEST_LENGTH]))
            del buf[:BRIDGE_REQUEST_LENGTH]

    def _send_regulator(self) -> None:
        try:
            written = os.write(self._reg_master, self._reg_out)
        except (BlockingIOError, OSError):
            return
        del self._reg_out[:written]

    def _receive(self) -> bool:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        assert self.chain is not None
        self.chain.dead = self.faults.dead_chips
        for frame in self._decoder.feed(data):
            for reply in self.chain.handle(frame):
                if self.faults.register_faults:
                    self._out += self._encode_faulty(reply)
                else:
                    self._out += encode_reply(reply, self.model.reply_length)
        return True

    def _send(self) -> bool:
        try:
            written = os.write(self._master, self._out)
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self._out[:written]
        return True

    def _hash(self, dt: float) -> None:
        chain = self.chain
        assert chain is not None
        chain.dead = self.faults.dead_chips
        watts = self.config.idle_watts
        done_total = 0
        joules = self.config.idle_watts * dt
        for chip in chain.chips:
            rate = self.config.hashrate * chain.rate_share(chip)
            if rate <= 0:
                self._budget[chip.position] = 0.0
                continue
            chip_watts = self._stock_chip_watts * chain.power_ratio(chip)
            watts += chip_watts
            budget = self._budget[chip.position] + rate * dt
            cap = rate * _MAX_BACKLOG_S
            if budget > cap:
                self._shortfall += budget - cap
                budget = cap
            replies, done = chain.mine(chip, int(budget))
            self._budget[chip.position] = budget - done
            done_total += done
            joules += chip_watts / rate * done
            due = time.monotonic() + self.faults.late_s
            self._due += [(due, self._encode_faulty(reply)) for reply in replies]
        self._hashes += done_total
        self._joules += joules
        self._watts = watts

    @property
    def _stock_chip_watts(self) -> float:
        """One chip's power at the stock clock and voltage: ``j_per_th`` at its configured rate."""
        return self.config.j_per_th * self.config.hashrate / self.config.chips / 1e12

    def _release(self, now: float) -> None:
        ready = [frame for due, frame in self._due if due <= now]
        if ready:
            self._due = [(due, frame) for due, frame in self._due if due > now]
            self._out += b"".join(ready)

    def _encode_faulty(self, reply: Reply) -> bytes:
        frame = encode_reply(reply, self.model.reply_length)
        faults, rng = self.faults, self._rng
        if faults.corrupt_crc and rng.random() < faults.corrupt_crc:
            frame = frame[:-1] + bytes((frame[-1] ^ 0x01,))
        if faults.drop_byte and rng.random() < faults.drop_byte:
            i = rng.randrange(len(frame))
            frame = frame[:i] + frame[i + 1 :]
        if faults.garbage and rng.random() < faults.garbage:
            junk = bytes(rng.choice([b for b in range(256) if b != 0xAA]) for _ in range(rng.randint(1, 16)))
            frame = junk + frame
        return frame
