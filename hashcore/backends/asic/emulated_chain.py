"""Emulated BM1366 / BM1397 chips: their behaviour without I/O and without a clock
(frames in, register replies out, nonces found for a given number of hashes).

What a chip does here, as on silicon:

* answers chip-id reads (register 0) with its model's id, in chain order;
* forgets its address on CHAIN_INACTIVE and takes the next SET_ADDRESS;
* keeps every register written to it; PLL0 sets its clock, which sets its hash rate;
* hashes the last job broadcast: chip i of n searches its own 1/n of the nonce range from
  the job's starting nonce; a BM1366 rolls the version bits allowed by register 0xA4
  (small core k hashes version field k, k < 8), a BM1397 hashes each midstate it got;
* reports a nonce only when the hash passes its ticket mask (register 0x14);
* runs at the core voltage of the board's rail (:meth:`EmulatedChain.set_voltage`, which
  the emulated regulator moves); below the voltage its V/f table asks for at its clock
  the chip's nonces come back wrong, as an undervolted chip's do.

Emulated difficulty: a real ticket mask of 0 means difficulty 1, i.e. 2**32 hashes per
reported nonce on average, hopeless for a chain hashed on a CPU. ``base_difficulty`` says
what difficulty a zero mask stands for here. The default, 1.0, is the real behaviour;
tests and the on-demand emulator of the ``asic`` backend lower it (2**-32 makes a zero
mask report every hash), and the driver, told the same figure, converts pool difficulties
into masks in the same units, so the nonces that reach the miner are exactly as good as
on hardware.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Protocol

from hashcore.backends.asic.chips import (
    BM1366_FAST_BAUD,
    BM1366_FAST_UART_VALUE,
    REG_CHIP_ID,
    REG_FAST_UART,
    REG_MISC_CONTROL,
    REG_PLL0,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    VERSION_SHIFT,
    ChipModel,
    decode_misc_control_baud,
    decode_ticket_mask,
    decode_version_mask,
    ticket_target,
)
from hashcore.backends.asic.framing import Bm1366Job, Bm1397Job, Command, CommandKind, Job, NonceReply, RegisterReply
from hashcore.backends.asic.jobs import header76_of
from hashcore.backends.base import Backend
from hashcore.sha256 import sha256_from_state
from hashcore.work import NONCE_SPACE, Work, deposit_bits

#: Small cores that report their own version (the id byte's low 3 bits).
_BM1366_LANES = 8


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
