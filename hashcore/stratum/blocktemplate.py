"""Block templates for the embedded pool: real-shaped jobs and the extranonce layout.

A coinbase with a BIP 34 height and room for extranonce1 and extranonce2, a merkle branch
over a few synthetic transactions, a realistic nbits and a previous block hash that looks
like one: what a miner meets on a real pool, made up from a seed.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time

from hashcore.work import Job, merkle_branch_for_coinbase, nbits_to_target

#: A mainnet nbits from 2024: no CPU will ever find a block at this target.
MAINNET_NBITS = 0x17034219
#: Regtest's nbits: nearly every hash is a block (used to test block candidates).
REGTEST_NBITS = 0x207FFFFF
#: The coinbase's room for extranonce1 (the pool's, one per connection) and extranonce2
#: (the miner's), in bytes.
EXTRANONCE1_SIZE = 4
EXTRANONCE2_SIZE = 4
POOL_TAG = b"/hashcore-pool/"


class JobMaker:
    """Builds real-shaped block templates and their Stratum jobs."""

    def __init__(self, nbits: int = MAINNET_NBITS, *, version: int = 0x20000000, seed: bytes | None = None) -> None:
        nbits_to_target(nbits)  # refuse a malformed nbits up front
        self.nbits = nbits
        self.version = version
        self.height = 850_000
        self._seed = seed if seed is not None else os.urandom(16)
        self._counter = 0
        self._prev_hash = self._digest(b"genesis")

    def _digest(self, label: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(self._seed + label).digest()).digest()

    def next_job(self, clean: bool, now: int | None = None) -> Job:
        """A new job; ``clean`` starts a new block (new previous hash, next height)."""
        self._counter += 1
        if clean:
            self.height += 1
            # A previous block hash looks like one: its high-order bytes are zero.
            self._prev_hash = self._digest(b"block%d" % self.height)[:24] + bytes(8)
        txids = [self._digest(b"tx%d.%d" % (self._counter, i)) for i in range(3 + self._counter % 5)]
        height_push = _script_number(self.height)
        tag_push = bytes([len(POOL_TAG)]) + POOL_TAG
        script_len = len(height_push) + EXTRANONCE1_SIZE + EXTRANONCE2_SIZE + len(tag_push)
        coinb1 = (
            struct.pack("<I", 1)  # transaction version
            + b"\x01"  # one input: the coinbase
            + bytes(32)
            + b"\xff\xff\xff\xff"
            + bytes([script_len])
            + height_push
        )
        payout_script = b"\x00\x14" + self._digest(b"payout")[:20]  # P2WPKH-shaped output
        coinb2 = (
            tag_push
            + b"\xff\xff\xff\xff"  # sequence
            + b"\x01"
            + struct.pack("<Q", 312_500_000)
            + bytes([len(payout_script)])
            + payout_script
            + struct.pack("<I", 0)  # lock time
        )
        return Job(
            job_id=f"{self._counter:x}",
            prev_hash=self._prev_hash,
            coinb1=coinb1,
            coinb2=coinb2,
            merkle_branch=merkle_branch_for_coinbase(txids),
            version=self.version,
            nbits=self.nbits,
            ntime=int(time.time()) if now is None else now,
            clean_jobs=clean,
        )


def _script_number(n: int) -> bytes:
    """A BIP 34 height push: minimal little-endian number with its push opcode."""
    data = n.to_bytes((n.bit_length() + 8) // 8, "little")
    return bytes([len(data)]) + data
