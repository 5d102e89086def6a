"""Slow, obviously correct references that the fast code is compared with.

Written from the byte-order table of DESIGN.md with plain hex and string operations,
sharing nothing with hashcore.work.
"""

from __future__ import annotations

import hashlib
from typing import Any


def dsha(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def le32_hex(value_hex_be: str) -> str:
    """A Stratum big-endian 32-bit hex field as the header's little-endian bytes, in hex."""
    return bytes.fromhex(value_hex_be)[::-1].hex()


def prevhash_to_header_hex(stratum_prevhash: str) -> str:
    """Each 4-byte word of Stratum's prevhash byte-reversed."""
    return "".join(stratum_prevhash[i : i + 8][6:8] + stratum_prevhash[i : i + 8][4:6]
                   + stratum_prevhash[i : i + 8][2:4] + stratum_prevhash[i : i + 8][0:2]
                   for i in range(0, 64, 8))


def header_hex(notify: dict[str, Any], extranonce1: str, extranonce2: str, ntime: str, nonce: str,
               version: str | None = None) -> str:
    """The 80-byte header as hex, built by string concatenation."""
    coinbase = bytes.fromhex(notify["coinb1"] + extranonce1 + extranonce2 + notify["coinb2"])
    root = dsha(coinbase)
    for node in notify["merkle_branch"]:
        root = dsha(root + bytes.fromhex(node))
    return (
        le32_hex(version or notify["version"])
        + prevhash_to_header_hex(notify["prevhash"])
        + root.hex()
        + le32_hex(ntime)
        + le32_hex(notify["nbits"])
        + le32_hex(nonce)
    )


def block_hash_display(header: bytes) -> str:
    return dsha(header)[::-1].hex()


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def parse_block(raw: bytes) -> tuple[bytes, list[bytes]]:
    """(80-byte header, txids in internal order) of a pre-segwit block."""
    header = raw[:80]
    count, pos = read_varint(raw, 80)
    txids = []
    for _ in range(count):
        start = pos
        pos += 4  # version
        n_in, pos = read_varint(raw, pos)
        for _ in range(n_in):
            pos += 36
            script_len, pos = read_varint(raw, pos)
            pos += script_len + 4
        n_out, pos = read_varint(raw, pos)
        for _ in range(n_out):
            pos += 8
            script_len, pos = read_varint(raw, pos)
            pos += script_len
        pos += 4  # lock time
        txids.append(dsha(raw[start:pos]))
    assert pos == len(raw), "trailing bytes in block"
    return header, txids


def merkle_root_of(txids: list[bytes]) -> bytes:
    """Bitcoin's merkle root over a whole level list (odd levels duplicate the last node)."""
    level = list(txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
