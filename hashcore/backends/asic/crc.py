"""The CRCs of BM13xx frames: CRC5 (commands, and the last bits of every reply) and
CRC16/CCITT-FALSE (jobs). Pure code, checked against the catalogue values in the tests."""

from __future__ import annotations


def crc5_bits(data: bytes, nbits: int) -> int:
    """CRC5 (poly 0x05, init 0x1F, MSB first, no reflection) of the first ``nbits`` bits."""
    if nbits > 8 * len(data):
        raise ValueError(f"{nbits} bits asked of {len(data)} bytes")
    crc = 0x1F
    for i in range(nbits):
        bit = (data[i >> 3] >> (7 - (i & 7))) & 1
        top = (crc >> 4) & 1
        crc = (crc << 1) & 0x1F
        if bit ^ top:
            crc ^= 0x05
    return crc


def crc5(data: bytes) -> int:
    """CRC5 of whole bytes, as commands carry it."""
    return crc5_bits(data, 8 * len(data))


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ byte]
    return crc
