"""BM13xx serial frames: host commands and jobs, chip replies, streaming decoders.

Pure code: bytes in, values out, no I/O. Layouts (see ASIC.md):

* host to chip: ``55 AA | HDR | LEN | DATA | CRC``. Commands end in a CRC5 byte, jobs in a
  big-endian CRC16/CCITT-FALSE; both cover ``HDR..DATA``. LEN counts everything after the
  preamble (commands: data + 3, jobs: data + 4).
* chip to host: ``AA 55 | body | last``, 11 bytes on the BM1366, 9 on the BM1397. Bit 7 of
  ``last`` marks a nonce reply, its low 5 bits are a CRC5 chosen so that the CRC5 of every
  bit after the preamble is zero.

How a reply's job id splits into job slot and small core (or midstate) is a property of
the chip, not of the frame, and lives in :mod:`hashcore.backends.asic.chips`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from hashcore.backends.asic.crc import crc5, crc5_bits, crc16_ccitt_false
from hashcore.errors import DeviceError

HOST_PREAMBLE = b"\x55\xaa"
CHIP_PREAMBLE = b"\xaa\x55"

TYPE_JOB = 0x20
TYPE_COMMAND = 0x40
BROADCAST = 0x10
#: Bit 7 of a reply's last byte: set for a nonce, clear for a register value.
REPLY_NONCE_FLAG = 0x80

#: Reply lengths, preamble included.
BM1366_REPLY_LENGTH = 11
BM1397_REPLY_LENGTH = 9

#: LEN of each host frame kind: commands without and with a register value, jobs.
_COMMAND_LEN_SHORT = 5
_COMMAND_LEN_WRITE = 9
BM1366_JOB_LEN = 0x56
BM1397_JOB_LEN = 0x96


class FrameError(DeviceError):
    """A frame that cannot be decoded: wrong length, preamble, header or CRC."""


# --- host to chip: commands ------------------------------------------------------------


class CommandKind(IntEnum):
    """The low nibble of a command header."""

    SET_ADDRESS = 0
    WRITE = 1
    READ = 2
    CHAIN_INACTIVE = 3


@dataclass(frozen=True, slots=True)
class Command:
    """A register command.

    Attributes:
        kind: what it does.
        broadcast: sent to every chip (header bit 0x10) rather than to ``chip_addr``.
        chip_addr: the addressed chip (or the new address, for SET_ADDRESS); 0 when broadcast.
        register: the register address (0 for SET_ADDRESS and CHAIN_INACTIVE).
        value: the 32-bit value of a WRITE, None otherwise.
    """

    kind: CommandKind
    broadcast: bool
    chip_addr: int = 0
    register: int = 0
    value: int | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.chip_addr <= 0xFF and 0 <= self.register <= 0xFF):
            raise ValueError("chip address and register are single bytes")
        if (self.kind is CommandKind.WRITE) != (self.value is not None):
            raise ValueError("a WRITE carries a value and nothing else does")
        if self.value is not None and not 0 <= self.value <= 0xFFFFFFFF:
            raise ValueError(f"register value {self.value:#x} is not 32 bits")

    @property
    def header(self) -> int:
        return TYPE_COMMAND | (BROADCAST if self.broadcast else 0) | int(self.kind)


def write_register(register: int, value: int, chip_addr: int | None = None) -> Command:
    """Write ``value`` to ``register`` of one chip, or of every chip when ``chip_addr`` is None."""
    return Command(CommandKind.WRITE, chip_addr is None, chip_addr or 0, register, value)


def read_register(register: int, chip_addr: int | None = None) -> Command:
    """Read ``register`` of one chip, or of every chip when ``chip_addr`` is None."""
    return Command(CommandKind.READ, chip_addr is None, chip_addr or 0, register)


def chain_inactive() -> Command:
    """Make every chip forget its address and wait for SET_ADDRESS commands."""
    return Command(CommandKind.CHAIN_INACTIVE, True)


def set_address(chip_addr: int) -> Command:
    """Give the first chip without an address the address ``chip_addr``."""
    return Command(CommandKind.SET_ADDRESS, False, chip_addr)


def encode_command(command: Command) -> bytes:
    data = bytes((command.chip_addr, command.register))
    if command.value is not None:
        data += struct.pack(">I", command.value)
    body = bytes((command.header, len(data) + 3)) + data
    return HOST_PREAMBLE + body + bytes((crc5(body),))


# --- host to chip: jobs ----------------------------------------------------------------


def reverse_words(data: bytes) -> bytes:
    """Reverse the order of the 4-byte words, keeping the bytes inside each word."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes are not whole 4-byte words")
    return b"".join(data[i : i + 4] for i in range(len(data) - 4, -1, -4))


@dataclass(frozen=True, slots=True)
class Bm1366Job:
    """A BM1366 job: the header's fields; the chip rolls version bits itself.

    Attributes:
        job_id: the id replies carry back (a multiple of 8; the low bits name the small core).
        nbits, ntime, version: the header's integers.
        merkle_root, prev_hash: 32 bytes each, internal (header) order.
        starting_nonce: where the chain starts its nonce search.
        num_midstates: always 1 on this chip.
    """

    job_id: int
    nbits: int
    ntime: int
    merkle_root: bytes
    prev_hash: bytes
    version: int
    starting_nonce: int = 0
    num_midstates: int = 1

    def __post_init__(self) -> None:
        if len(self.merkle_root) != 32 or len(self.prev_hash) != 32:
            raise ValueError("merkle root and previous hash are 32 bytes each")


@dataclass(frozen=True, slots=True)
class Bm1397Job:
    """A BM1397 job: midstates and the header's tail; the host rolls version bits.

    Attributes:
        job_id: the id replies carry back (a multiple of 4; the low bits name the midstate).
        num_midstates: 1 or 4 (how many of ``midstates`` the chip hashes).
        nbits, ntime: the header's integers.
        merkle_tail: header bytes 64-68 (the last 4 bytes of the merkle root).
        midstates: four SHA-256 states (8 words each) after the first 64 header bytes.
        starting_nonce: where the chain starts its nonce search.
    """

    job_id: int
    num_midstates: int
    nbits: int
    ntime: int
    merkle_tail: bytes
    midstates: tuple[tuple[int, ...], ...]
    starting_nonce: int = 0

    def __post_init__(self) -> None:
        if len(self.merkle_tail) != 4:
            raise ValueError("the merkle tail is 4 bytes")
        if len(self.midstates) != 4 or any(len(s) != 8 for s in self.midstates):
            raise ValueError("a BM1397 job carries four 8-word midstates")
        if self.num_midstates not in (1, 4):
            raise ValueError("a BM1397 job hashes 1 or 4 midstates")


Job = Bm1366Job | Bm1397Job


def _midstate_wire(state: tuple[int, ...]) -> bytes:
    # The chip wants H0..H7 big-endian with the whole 32 bytes reversed.
    return struct.pack(">8I", *state)[::-1]


def _midstate_from_wire(data: bytes) -> tuple[int, ...]:
    return struct.unpack(">8I", data[::-1])


def encode_job(job: Job) -> bytes:
    if isinstance(job, Bm1366Job):
        data = struct.pack("<BBIII", job.job_id, job.num_midstates, job.starting_nonce, job.nbits, job.ntime)
        data += reverse_words(job.merkle_root) + reverse_words(job.prev_hash)
        data += struct.pack("<I", job.version)
    else:
        data = struct.pack("<BBIII", job.job_id, job.num_midstates, job.starting_nonce, job.nbits, job.ntime)
        data += job.merkle_tail + b"".join(_midstate_wire(s) for s in job.midstates)
    body = bytes((TYPE_JOB | CommandKind.WRITE, len(data) + 4)) + data
    return HOST_PREAMBLE + body + struct.pack(">H", crc16_ccitt_false(body))


def _decode_job(body: bytes) -> Job:
    data = body[2:]
    job_id, num, start, nbits, ntime = struct.unpack_from("<BBIII", data, 0)
    if body[1] == BM1366_JOB_LEN:
        (version,) = struct.unpack_from("<I", data, 78)
        return Bm1366Job(
            job_id, nbits, ntime, reverse_words(data[14:46]), reverse_words(data[46:78]), version, start, num
        )
    states = tuple(_midstate_from_wire(data[18 + 32 * k : 50 + 32 * k]) for k in range(4))
    try:
        return Bm1397Job(job_id, num, nbits, ntime, data[14:18], states, start)
    except ValueError as exc:
        raise FrameError(f"bad BM1397 job: {exc}") from exc


def _host_frame_length(header: int, length: int) -> int | None:
    """Total bytes of a host frame with this HDR and LEN, or None when they do not fit."""
    if header & 0xE0 == TYPE_COMMAND and header & 0x0F <= CommandKind.CHAIN_INACTIVE:
        wanted = _COMMAND_LEN_WRITE if header & 0x0F == CommandKind.WRITE else _COMMAND_LEN_SHORT
        return length + 2 if length == wanted else None
    if header == TYPE_JOB | CommandKind.WRITE and length in (BM1366_JOB_LEN, BM1397_JOB_LEN):
        return length + 2
    return None


def decode_host_frame(frame: bytes) -> Command | Job:
    """Decode one complete host frame (preamble included); raises FrameError."""
    if len(frame) < 7 or frame[:2] != HOST_PREAMBLE:
        raise FrameError(f"not a host frame: {frame.hex()}")
    header, length = frame[2], frame[3]
    if _host_frame_length(header, length) != len(frame):
        raise FrameError(f"host frame of {len(frame)} bytes has HDR {header:#04x} LEN {length}")
    body = frame[2:]
    if header & TYPE_COMMAND:
        if crc5(body[:-1]) != body[-1]:
            raise FrameError(f"bad CRC5 in command {frame.hex()}")
        kind = CommandKind(header & 0x0F)
        value = struct.unpack(">I", body[4:8])[0] if kind is CommandKind.WRITE else None
        return Command(kind, bool(header & BROADCAST), body[2], body[3], value)
    if crc16_ccitt_false(body[:-2]) != struct.unpack(">H", body[-2:])[0]:
        raise FrameError("bad CRC16 in job frame")
    return _decode_job(body[:-2])


# --- chip to host: replies -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NonceReply:
    """A nonce a chip found.

    Attributes:
        nonce: header bytes 76-80 as the little-endian number the header carries.
        midstate_num: the byte after the nonce (BM1397: the midstate; BM1366: undocumented).
        job_id: the raw id byte: job slot plus small core (BM1366) or midstate (BM1397).
        version_field: BM1366 only: the rolled version bits shifted right by 13.
    """

    nonce: int
    midstate_num: int
    job_id: int
    version_field: int = 0


@dataclass(frozen=True, slots=True)
class RegisterReply:
    """A register value a chip sent back (a read, or the chip-id answer).

    Attributes:
        value: the 32-bit value (big-endian on the wire).
        chip_addr: the answering chip's address.
        register: the register read.
    """

    value: int
    chip_addr: int
    register: int


Reply = NonceReply | RegisterReply


def _seal_reply(body: bytes, flags: int) -> bytes:
    """Append the last byte: ``flags`` in the top 3 bits, CRC5 of all that precedes in the low 5."""
    partial = body + bytes((flags,))
    crc = crc5_bits(partial, 8 * len(body) + 3)
    return CHIP_PREAMBLE + body + bytes((flags | crc,))


def encode_reply(reply: Reply, length: int) -> bytes:
    """The ``length``-byte frame (11: BM1366, 9: BM1397) a chip sends for ``reply``."""
    if length not in (BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH):
        raise ValueError(f"no BM13xx reply is {length} bytes long")
    if isinstance(reply, NonceReply):
        body = struct.pack("<I", reply.nonce) + bytes((reply.midstate_num, reply.job_id))
        if length == BM1366_REPLY_LENGTH:
            body += struct.pack(">H", reply.version_field)
        return _seal_reply(body, REPLY_NONCE_FLAG)
    body = struct.pack(">I", reply.value) + bytes((reply.chip_addr, reply.register))
    if length == BM1366_REPLY_LENGTH:
        body += b"\x00\x00"
    return _seal_reply(body, 0)


def reply_crc_ok(frame: bytes) -> bool:
    return crc5(frame[2:]) == 0


def decode_reply(frame: bytes) -> Reply:
    """Decode one complete reply (preamble included); raises FrameError."""
    if len(frame) not in (BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH) or frame[:2] != CHIP_PREAMBLE:
        raise FrameError(f"not a BM13xx reply: {frame.hex()}")
    if not reply_crc_ok(frame):
        raise FrameError(f"bad CRC5 in reply {frame.hex()}")
    if frame[-1] & REPLY_NONCE_FLAG:
        (nonce,) = struct.unpack_from("<I", frame, 2)
        field = struct.unpack_from(">H", frame, 8)[0] if len(frame) == BM1366_REPLY_LENGTH else 0
        return NonceReply(nonce, frame[6], frame[7], field)
    (value,) = struct.unpack_from(">I", frame, 2)
    return RegisterReply(value, frame[6], frame[7])


# --- streaming decoders ----------------------------------------------------------------

T = TypeVar("T")


@dataclass(slots=True)
class DecoderStats:
    """What a streaming decoder did with its input.

    Attributes:
        frames: good frames emitted.
        dropped_bytes: bytes thrown away (garbage, and the bytes of frames that failed).
        bad_frames: candidate frames rejected (bad CRC, impossible header or length).
    """

    frames: int = 0
    dropped_bytes: int = 0
    bad_frames: int = 0


class _StreamDecoder(Generic[T]):
    """Cuts a byte stream into frames that start with ``preamble``.

    After garbage, a split frame or a bad CRC it drops one byte and looks for the next
    preamble, so a good frame right behind a bad one is never lost.
    """

    def __init__(self, preamble: bytes, length_of: Callable[[bytes], int | None], parse: Callable[[bytes], T]):
        self._preamble = preamble
        self._length_of = length_of
        self._parse = parse
        self._buffer = bytearray()
        self.stats = DecoderStats()

    def feed(self, data: bytes) -> list[T]:
        self._buffer += data
        out: list[T] = []
        buf = self._buffer
        while True:
            start = buf.find(self._preamble)
            if start < 0:
                # Keep a trailing first preamble byte: the second may come in the next read.
                keep = 1 if buf[-1:] == self._preamble[:1] else 0
                self.stats.dropped_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            if start:
                self.stats.dropped_bytes += start
                del buf[:start]
            total = self._length_of(bytes(buf[:4]))
            if total is None:
                if len(buf) < 4:
                    return out
                self._reject(buf)
                continue
            if len(buf) < total:
                return out
            try:
                item = self._parse(bytes(buf[:total]))
            except FrameError:
                self._reject(buf)
                continue
            del buf[:total]
            self.stats.frames += 1
            out.append(item)

    def _reject(self, buf: bytearray) -> None:
        self.stats.bad_frames += 1
        self.stats.dropped_bytes += 1
        del buf[:1]

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)


class ReplyDecoder(_StreamDecoder[Reply]):
    """Chip replies of one fixed length out of a byte stream; only good CRCs come out."""

    def __init__(self, length: int):
        if length not in (BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH):
            raise ValueError(f"no BM13xx reply is {length} bytes long")
        super().__init__(CHIP_PREAMBLE, lambda _head: length, decode_reply)


def _host_length_of(head: bytes) -> int | None:
    if len(head) < 4:
        return None
    return _host_frame_length(head[2], head[3])


class HostFrameDecoder(_StreamDecoder[Command | Job]):
    """Host commands and jobs out of a byte stream (what an emulated chip reads)."""

    def __init__(self) -> None:
        super().__init__(HOST_PREAMBLE, _host_length_of, decode_host_frame)
