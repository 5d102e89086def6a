"""The board's core-voltage regulator on the wire: a PMBus device (a TPS546, as on
Bitaxe boards) reached through a serial-to-SMBus bridge. Pure code: command codes, the
bridge's framing with its SMBus PECs, and the ULINEAR16 / LINEAR11 number formats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The regulator's SMBus address (a TPS546 on Bitaxe boards).
REGULATOR_ADDRESS = 0x24
PMBUS_OPERATION = 0x01
PMBUS_VOUT_MODE = 0x20
PMBUS_VOUT_COMMAND = 0x21
PMBUS_READ_VOUT = 0x8B
PMBUS_READ_IOUT = 0x8C
PMBUS_READ_POUT = 0x96
#: VOUT_MODE: ULINEAR16 (mode bits 000) with exponent -9, so VOUT_COMMAND = volts * 512.
VOUT_MODE_ULINEAR16_MINUS9 = 0x17

#: The bridge's framing (the emulator's; a real board's bridge may differ). Host to
#: board, 7 bytes: ``5A | op | address | command | lo | hi | PEC``, op 'W' (write word)
#: or 'R' (read word; lo and hi zero). Board to host, 5 bytes: ``A5 | status | lo | hi |
#: PEC``. The PECs are SMBus CRC-8 (poly 0x07, init 0): the request's over
#: ``address<<1, command, lo, hi`` (a write) or ``address<<1, command, address<<1|1`` (a
#: read), the reply's over ``address<<1|1, status, lo, hi``. Status 0 is an ACK.
BRIDGE_HOST = 0x5A
BRIDGE_REPLY = 0xA5
BRIDGE_WRITE = 0x57
BRIDGE_READ = 0x52
BRIDGE_REQUEST_LENGTH = 7
BRIDGE_REPLY_LENGTH = 5
STATUS_ACK = 0x00
STATUS_NACK = 0x01
STATUS_BAD_PEC = 0x02


def smbus_pec(data: bytes) -> int:
    """SMBus packet error code: CRC-8, polynomial 0x07, initial 0, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def vout_exponent(vout_mode: int) -> int:
    """The exponent of a ULINEAR16 VOUT_MODE byte; ValueError for another mode."""
    if (vout_mode >> 5) & 0x03:
        raise ValueError(f"VOUT_MODE {vout_mode:#04x} is not ULINEAR16")
    exponent = vout_mode & 0x1F
    return exponent - 32 if exponent & 0x10 else exponent


def encode_ulinear16(volts: float, exponent: int, *, round_up: bool = False) -> int:
    """ULINEAR16 of ``volts``; ``round_up`` for a voltage that must not come out lower."""
    exact = volts / 2.0**exponent
    value = math.ceil(round(exact, 9)) if round_up else round(exact)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{volts} V does not fit ULINEAR16 with exponent {exponent}")
    return value


def decode_ulinear16(value: int, exponent: int) -> float:
    return value * 2.0**exponent


def encode_linear11(x: float) -> int:
    """PMBus LINEAR11: a 5-bit exponent and an 11-bit mantissa, both two's complement."""
    exponent = -16
    while exponent < 15 and abs(round(x / 2.0**exponent)) > 1023:
        exponent += 1
    mantissa = round(x / 2.0**exponent)
    if not -1024 <= mantissa <= 1023:
        raise ValueError(f"{x} does not fit LINEAR11")
    return ((exponent & 0x1F) << 11) | (mantissa & 0x7FF)


def decode_linear11(value: int) -> float:
    exponent = (value >> 11) & 0x1F
    mantissa = value & 0x7FF
    if exponent & 0x10:
        exponent -= 32
    if mantissa & 0x400:
        mantissa -= 0x800
    return mantissa * 2.0**exponent


@dataclass(frozen=True, slots=True)
class RegulatorRequest:
    """One SMBus word transaction for the regulator (``write``: False for a read)."""

    write: bool
    address: int
    command: int
    word: int = 0


def encode_regulator_request(request: RegulatorRequest) -> bytes:
    lo, hi = request.word & 0xFF, (request.word >> 8) & 0xFF
    address_w = (request.address << 1) & 0xFF
    if request.write:
        pec = smbus_pec(bytes((address_w, request.command, lo, hi)))
        return bytes((BRIDGE_HOST, BRIDGE_WRITE, request.address, request.command, lo, hi, pec))
    pec = smbus_pec(bytes((address_w, request.command, address_w | 1)))
    return bytes((BRIDGE_HOST, BRIDGE_READ, request.address, request.command, 0, 0, pec))


def decode_regulator_request(frame: bytes) -> RegulatorRequest:
    """A bridge request; ValueError naming what is wrong (length, preamble, op, PEC)."""
    if len(frame) != BRIDGE_REQUEST_LENGTH or frame[0] != BRIDGE_HOST:
        raise ValueError("not a regulator bridge request")
    op, address, command, lo, hi, pec = frame[1:]
    address_w = (address << 1) & 0xFF
    if op == BRIDGE_WRITE:
        expected = smbus_pec(bytes((address_w, command, lo, hi)))
    elif op == BRIDGE_READ:
        expected = smbus_pec(bytes((address_w, command, address_w | 1)))
    else:
        raise ValueError(f"unknown bridge operation {op:#04x}")
    if pec != expected:
        raise ValueError("bad PEC")
    return RegulatorRequest(op == BRIDGE_WRITE, address, command, lo | (hi << 8))


def encode_regulator_reply(address: int, status: int, word: int = 0) -> bytes:
    lo, hi = word & 0xFF, (word >> 8) & 0xFF
    pec = smbus_pec(bytes((((address << 1) | 1) & 0xFF, status, lo, hi)))
    return bytes((BRIDGE_REPLY, status, lo, hi, pec))


def decode_regulator_reply(frame: bytes, address: int) -> tuple[int, int]:
    """(status, word) of a bridge reply; ValueError for a bad preamble, length or PEC."""
    if len(frame) != BRIDGE_REPLY_LENGTH or frame[0] != BRIDGE_REPLY:
        raise ValueError(f"not a regulator reply: {frame.hex(' ')}")
    status, lo, hi, pec = frame[1:]
    if pec != smbus_pec(bytes((((address << 1) | 1) & 0xFF, status, lo, hi))):
        raise ValueError(f"bad PEC in regulator reply {frame.hex(' ')}")
    return status, lo | (hi << 8)
