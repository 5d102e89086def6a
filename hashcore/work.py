"""The work model: jobs, coinbase and merkle root, headers, targets and shares.

Pure code: bytes and ints in, bytes and ints out, no I/O and no hex text (hex exists
only at the Stratum edge, in ``hashcore.stratum.protocol``). Byte orders follow the
table in DESIGN.md:

* the header is ``version | prev_hash | merkle_root | ntime | nbits | nonce``, the four
  integers little-endian, the two hashes in internal byte order;
* a hash is compared with a target as ``int.from_bytes(hash, "little")``;
* the share target for difficulty ``d`` is ``0xFFFF * 2**208 / d``.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field, replace
from fractions import Fraction

from hashcore.errors import WorkError
from hashcore.sha256 import midstate as _midstate
from hashcore.sha256 import sha256d

MAX_NONCE = 0xFFFFFFFF
NONCE_SPACE = 1 << 32
#: The target of difficulty 1 (``0x00000000FFFF0000...``), as pools define it.
DIFF1_TARGET = 0xFFFF << 208
MAX_TARGET = (1 << 256) - 1
#: The version bits BIP 310 miners ask to roll (BIP 320's general-purpose bits).
DEFAULT_VERSION_MASK = 0x1FFFE000


# --- targets ---------------------------------------------------------------------------


def nbits_to_target(nbits: int) -> int:
    """The block target encoded by a compact ``nbits`` value.

    ``target = mantissa * 256 ** (exponent - 3)``; a mantissa with the sign bit set or a
    target that overflows 256 bits is not a valid block target.
    """
    if not 0 <= nbits <= 0xFFFFFFFF:
        raise WorkError(f"nbits {nbits:#x} is not a 32-bit value")
    exponent = nbits >> 24
    mantissa = nbits & 0x007FFFFF
    if nbits & 0x00800000:
        raise WorkError(f"nbits {nbits:08x} encodes a negative target")
    if exponent <= 3:
        target = mantissa >> (8 * (3 - exponent))
    else:
        target = mantissa << (8 * (exponent - 3))
    if target == 0 or target > MAX_TARGET:
        raise WorkError(f"nbits {nbits:08x} encodes no usable target")
    return target


def target_to_nbits(target: int) -> int:
    """The compact form of a target (rounded down, as Bitcoin Core's GetCompact)."""
    if not 0 < target <= MAX_TARGET:
        raise WorkError("a target must be between 1 and 2**256 - 1")
    size = (target.bit_length() + 7) // 8
    mantissa = target >> (8 * (size - 3)) if size > 3 else target << (8 * (3 - size))
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def difficulty_to_target(difficulty: float | int | Fraction) -> int:
    """The share target of a pool difficulty; fractional difficulties are exact.

    A difficulty so small that the target would exceed 2**256 - 1 gives the largest
    target (every hash qualifies).
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float, Fraction)):
        raise WorkError(f"difficulty must be a number, got {difficulty!r}")
    if isinstance(difficulty, float) and not math.isfinite(difficulty):
        raise WorkError(f"difficulty must be finite, got {difficulty!r}")
    if difficulty <= 0:
        raise WorkError(f"difficulty must be positive, got {difficulty!r}")
    target = int(Fraction(DIFF1_TARGET) / Fraction(difficulty))
    return max(1, min(target, MAX_TARGET))


def target_to_difficulty(target: int) -> float:
    """The pool difficulty whose share target is ``target``."""
    if target <= 0:
        raise WorkError("a target must be positive")
    return DIFF1_TARGET / target


def hash_difficulty(hash_value: int) -> float:
    """The difficulty a hash achieves (how many difficulty-1 shares it is worth)."""
    return DIFF1_TARGET / max(hash_value, 1)


# --- coinbase, merkle root, header -----------------------------------------------------


def swap_words(data: bytes) -> bytes:
    """Reverse the bytes inside each 4-byte word (Stratum's prevhash order <-> internal)."""
    if len(data) % 4:
        raise WorkError(f"cannot word-swap {len(data)} bytes (not a multiple of 4)")
    words = struct.unpack(f"<{len(data) // 4}I", data)
    return struct.pack(f">{len(words)}I", *words)


def rolled_version(job_version: int, mask: int, bits: int) -> int:
    """The header version with BIP 310 rolled bits: ``(job & ~mask) | (bits & mask)``."""
    return (job_version & ~mask & 0xFFFFFFFF) | (bits & mask)


def deposit_bits(value: int, mask: int) -> int:
    """Spread the low bits of ``value`` over the set bits of ``mask``, lowest first (PDEP)."""
    out, bit = 0, 0
    while mask:
        low = mask & -mask
        if (value >> bit) & 1:
            out |= low
        mask ^= low
        bit += 1
    return out


def extract_bits(value: int, mask: int) -> int:
    """Gather the bits of ``value`` under ``mask`` into a compact number (PEXT, inverse of
    :func:`deposit_bits`)."""
    out, bit = 0, 0
    while mask:
        low = mask & -mask
        if value & low:
            out |= 1 << bit
        mask ^= low
        bit += 1
    return out


@dataclass(frozen=True, slots=True)
class Job:
    """One ``mining.notify``: everything needed to build headers for a block template.

    Attributes:
        job_id: the pool's name for the job, echoed in ``mining.submit``.
        prev_hash: the previous block hash in internal (header) byte order, 32 bytes.
        coinb1: coinbase bytes before the extranonces.
        coinb2: coinbase bytes after the extranonces.
        merkle_branch: sibling hashes (internal order) folded into the coinbase hash.
        version: the block version as a number.
        nbits: the compact block target.
        ntime: the block time (seconds since the epoch).
        clean_jobs: when true, work on every earlier job is stale.
    """

    job_id: str
    prev_hash: bytes
    coinb1: bytes
    coinb2: bytes
    merkle_branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool

    def __post_init__(self) -> None:
        if len(self.prev_hash) != 32:
            raise WorkError(f"job {self.job_id!r}: prev_hash is {len(self.prev_hash)} bytes, not 32")
        for i, node in enumerate(self.merkle_branch):
            if len(node) != 32:
                raise WorkError(f"job {self.job_id!r}: merkle branch {i} is {len(node)} bytes, not 32")
        for name in ("version", "nbits", "ntime"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFFFFFF:
                raise WorkError(f"job {self.job_id!r}: {name} {value} is not a 32-bit value")

    @property
    def block_target(self) -> int:
        return nbits_to_target(self.nbits)

    def coinbase(self, extranonce1: bytes, extranonce2: bytes) -> bytes:
        """The coinbase transaction: ``coinb1 + extranonce1 + extranonce2 + coinb2``."""
        return self.coinb1 + extranonce1 + extranonce2 + self.coinb2

    def merkle_root(self, extranonce1: bytes, extranonce2: bytes) -> bytes:
        """The merkle root (internal order) for a coinbase with these extranonces."""
        return merkle_root(sha256d(self.coinbase(extranonce1, extranonce2)), self.merkle_branch)

    def header76(self, merkle: bytes, *, ntime: int | None = None, version: int | None = None) -> bytes:
        """The first 76 header bytes (all but the nonce)."""
        return build_header76(
            self.version if version is None else version,
            self.prev_hash,
            merkle,
            self.ntime if ntime is None else ntime,
            self.nbits,
        )


def merkle_root(coinbase_hash: bytes, branch: tuple[bytes, ...] | list[bytes]) -> bytes:
    """Fold a merkle branch into the coinbase hash: ``root = sha256d(root + node)``."""
    root = coinbase_hash
    for node in branch:
        root = sha256d(root + node)
    return root


def merkle_branch_for_coinbase(txids: list[bytes]) -> tuple[bytes, ...]:
    """The branch a pool sends for a block whose first transaction is the coinbase.

    ``txids`` are the other transactions' hashes (internal order). Each level's first
    sibling is the branch entry; odd levels duplicate their last node, as Bitcoin does.
    """
    branch: list[bytes] = []
    siblings = list(txids)  # each level's nodes after the one the coinbase folds into
    while siblings:
        branch.append(siblings[0])
        rest = siblings[1:]
        if len(rest) % 2:
            rest.append(rest[-1])
        siblings = [sha256d(rest[i] + rest[i + 1]) for i in range(0, len(rest), 2)]
    return tuple(branch)


def build_header76(version: int, prev_hash: bytes, merkle: bytes, ntime: int, nbits: int) -> bytes:
    """``version | prev_hash | merkle_root | ntime | nbits`` with the byte orders of DESIGN.md."""
    if len(prev_hash) != 32 or len(merkle) != 32:
        raise WorkError("prev_hash and merkle root must be 32 bytes each")
    return struct.pack("<I", version) + prev_hash + merkle + struct.pack("<II", ntime, nbits)


def header_with_nonce(header76: bytes, nonce: int) -> bytes:
    return header76 + struct.pack("<I", nonce)


# --- work and shares -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkOrigin:
    """Where a Work came from: what ``mining.submit`` needs besides the nonce.

    Attributes:
        job_id: the pool's job id.
        extranonce2: the extranonce2 bytes placed in the coinbase.
        ntime: the header's ntime (possibly rolled).
        version_bits: ``version & mask`` sent as BIP 310's sixth submit field, or None
            when version rolling is not in use.
    """

    job_id: str
    extranonce2: bytes
    ntime: int
    version_bits: int | None = None


@dataclass(frozen=True, slots=True)
class Work:
    """One header to scan: the 76 bytes before the nonce and the target to report against.

    ``target`` is what a backend reports against; the engine sets it to the easier of
    the share and block targets so that a block-solving nonce is never dropped.
    ``version_mask`` is the BIP 310 mask the pool granted (0: no rolling); a backend that
    rolls version bits itself (an ASIC) stays inside it and reports the versions it used.
    ``midstate`` (the SHA-256 state after the first 64 bytes) is computed once here.
    """

    header76: bytes
    target: int
    share_target: int | None = None
    block_target: int | None = None
    origin: WorkOrigin | None = None
    version_mask: int = 0
    midstate: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.header76) != 76:
            raise WorkError(f"a header without its nonce is 76 bytes, got {len(self.header76)}")
        if not 0 < self.target <= MAX_TARGET:
            raise WorkError("the work target must be between 1 and 2**256 - 1")
        object.__setattr__(self, "midstate", _midstate(self.header76[:64]))

    @classmethod
    def from_header(cls, header76: bytes, target: int) -> Work:
        """Work for a bare header: results are reported against ``target`` alone."""
        return cls(bytes(header76), target)

    @property
    def tail(self) -> bytes:
        """Header bytes 64-76 (end of the merkle root, ntime, nbits): the second block's start."""
        return self.header76[64:]

    @property
    def version(self) -> int:
        return int(struct.unpack_from("<I", self.header76, 0)[0])

    def header(self, nonce: int) -> bytes:
        """The full 80-byte header for ``nonce``."""
        return header_with_nonce(self.header76, nonce)

    def with_version(self, version: int) -> Work:
        """This work with another header version (bits outside ``version_mask`` kept).

        Raises WorkError when ``version`` changes bits the pool did not grant.
        """
        if (version ^ self.version) & ~self.version_mask & 0xFFFFFFFF:
            raise WorkError(
                f"version {version:08x} changes bits outside the granted mask {self.version_mask:08x}"
            )
        origin = self.origin
        if origin is not None:
            origin = replace(origin, version_bits=version & self.version_mask)
        header76 = struct.pack("<I", version) + self.header76[4:]
        return replace(self, header76=header76, origin=origin)


@dataclass(frozen=True, slots=True)
class Share:
    """A nonce checked exactly with hashlib.

    Attributes:
        work: the work it was found in.
        nonce: the nonce as a number (header bytes 76-80 little-endian).
        hash: the block hash bytes (internal order).
        value: the hash as the number compared with targets.
    """

    work: Work
    nonce: int
    hash: bytes
    value: int

    @property
    def meets_target(self) -> bool:
        return self.value <= self.work.target

    @property
    def meets_share_target(self) -> bool:
        target = self.work.share_target if self.work.share_target is not None else self.work.target
        return self.value <= target

    @property
    def meets_block_target(self) -> bool:
        return self.work.block_target is not None and self.value <= self.work.block_target

    @property
    def difficulty(self) -> float:
        return hash_difficulty(self.value)


def header_hash(header80: bytes) -> bytes:
    """SHA-256d of an 80-byte header with hashlib."""
    if len(header80) != 80:
        raise WorkError(f"a block header is 80 bytes, got {len(header80)}")
    return hashlib.sha256(hashlib.sha256(header80).digest()).digest()


def verify_nonce(work: Work, nonce: int) -> Share:
    """Hash ``nonce`` in ``work`` exactly with hashlib (never trusting a backend)."""
    if not 0 <= nonce <= MAX_NONCE:
        raise WorkError(f"nonce {nonce} is outside 0..2**32-1")
    digest = header_hash(work.header(nonce))
    return Share(work, nonce, digest, int.from_bytes(digest, "little"))
