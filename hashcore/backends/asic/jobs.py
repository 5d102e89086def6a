"""Jobs for the chips, built from Work, and the table that maps nonce replies back to them.

Pure code. A BM1366 job carries the header's fields and the chip rolls the version bits
of register 0xA4 itself; a reply's version field, shifted left by 13, is OR-ed into the
job's version (ASIC.md). A BM1397 job carries up to four midstates whose versions the
host rolled; a reply names the midstate. Either way the host must remember, per job id,
which Work and which versions a reply belongs to: that is :class:`JobTable`, 128 slots
indexed by the masked job id, as the open firmware keeps it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hashcore.backends.asic.chips import CHIP_VERSION_BITS, VERSION_SHIFT, ChipModel
from hashcore.backends.asic.framing import Bm1366Job, Bm1397Job, NonceReply, encode_job
from hashcore.sha256 import midstate
from hashcore.work import Work, build_header76, deposit_bits, extract_bits, rolled_version

JOB_TABLE_SLOTS = 128


# --- version bits ----------------------------------------------------------------------


def increment_masked(version: int, mask: int, steps: int = 1) -> int:
    """``version`` with the field under ``mask`` counted up ``steps`` times (wrapping)."""
    width = mask.bit_count()
    if width == 0:
        return version
    count = (extract_bits(version, mask) + steps) % (1 << width)
    return rolled_version(version, mask, deposit_bits(count, mask))


def midstate_versions(version: int, mask: int, wanted: int = 4) -> list[int]:
    """Versions for a BM1397 job: ``version`` and its next three under ``mask``.

    A job hashes 1 or 4 midstates; when ``mask`` leaves fewer than four versions, one.
    """
    if mask.bit_count() < 2 or wanted < 4:
        return [version]
    return [increment_masked(version, mask, k) for k in range(4)]


# --- work <-> jobs ---------------------------------------------------------------------


def chip_version_mask(work: Work) -> int:
    """The part of the granted mask a BM1366 can roll."""
    return work.version_mask & CHIP_VERSION_BITS


def bm1366_job(work: Work, job_id: int, *, starting_nonce: int = 0) -> Bm1366Job:
    """The BM1366 job for ``work``; the rollable bits of the version are sent cleared.

    Clearing them makes the chip's OR of its rolled bits an exact BIP 310 roll inside the
    granted mask, whatever bits the work's version already had there.
    """
    header = work.header76
    version = work.version & ~chip_version_mask(work) & 0xFFFFFFFF
    ntime, nbits = struct.unpack_from("<II", header, 68)
    return Bm1366Job(job_id, nbits, ntime, header[36:68], header[4:36], version, starting_nonce)


def header76_of(job: Bm1366Job, version: int | None = None) -> bytes:
    """The 76 header bytes a BM1366 job stands for (with ``version`` if given)."""
    v = job.version if version is None else version
    return build_header76(v, job.prev_hash, job.merkle_root, job.ntime, job.nbits)


def bm1397_job(work: Work, job_id: int, versions: list[int], *, starting_nonce: int = 0) -> Bm1397Job:
    """The BM1397 job for ``work`` hashing one midstate per entry of ``versions`` (1 or 4)."""
    if len(versions) not in (1, 4):
        raise ValueError("a BM1397 job hashes 1 or 4 midstates")
    header = work.header76
    states = [midstate(struct.pack("<I", v) + header[4:64]) for v in versions]
    states += [states[0]] * (4 - len(states))
    ntime, nbits = struct.unpack_from("<II", header, 68)
    return Bm1397Job(job_id, len(versions), nbits, ntime, header[64:68], tuple(states), starting_nonce)


# --- the job table ---------------------------------------------------------------------


@dataclass(slots=True)
class LiveJob:
    """A job the chain may still answer.

    Attributes:
        job_id: the id sent (a multiple of the chip's job-id step).
        work: the Work it came from.
        base_version: the version sent (BM1366) or of midstate 0 (BM1397).
        rolled_mask: the bits the chip may set in the version (BM1366), 0 for BM1397.
        versions: the version of each midstate (BM1397); one entry on the BM1366.
        seen: (nonce, version) pairs already reported, to drop repeats.
    """

    job_id: int
    work: Work
    base_version: int
    rolled_mask: int
    versions: list[int]
    seen: set[tuple[int, int]] = field(default_factory=set)


def chip_job(chip: ChipModel, work: Work, job_id: int, *, starting_nonce: int = 0) -> tuple[LiveJob, bytes]:
    """``work`` as job ``job_id`` for ``chip``'s model: the table's entry and the frame to send."""
    if chip.on_chip_rolling:
        job366 = bm1366_job(work, job_id, starting_nonce=starting_nonce)
        return LiveJob(job_id, work, job366.version, chip_version_mask(work), [job366.version]), encode_job(job366)
    versions = midstate_versions(work.version, work.version_mask)
    job397 = bm1397_job(work, job_id, versions, starting_nonce=starting_nonce)
    return LiveJob(job_id, work, versions[0], 0, versions), encode_job(job397)


@dataclass(frozen=True, slots=True)
class FoundNonce:
    """A nonce reply mapped back to its job.

    Attributes:
        work: the Work of the job.
        nonce: the header nonce (little-endian number of header bytes 76-80).
        version: the header version the chip hashed.
        job_id: the job's id.
        lane: the small core (BM1366) or midstate (BM1397) that found it.
    """

    work: Work
    nonce: int
    version: int
    job_id: int
    lane: int


@dataclass(slots=True)
class JobTableStats:
    """Replies the table refused.

    Attributes:
        stale: replies for a job id that is not live (replaced, cleared, never sent).
        duplicates: the same nonce and version reported again for a live job.
        bad_version: version bits outside the job's mask, or a midstate it does not have.
    """

    stale: int = 0
    duplicates: int = 0
    bad_version: int = 0


class JobTable:
    """Live jobs by id; hands out ids and resolves replies to (work, nonce, version).

    Not thread-safe: the driver holds a lock around it.
    """

    def __init__(self, chip: ChipModel):
        self._chip = chip
        self._slots: list[LiveJob | None] = [None] * JOB_TABLE_SLOTS
        self._last_id = JOB_TABLE_SLOTS - chip.job_id_step
        self.stats = JobTableStats()

    def next_id(self) -> int:
        """The id for the next job; sending it retires whatever job held it before."""
        self._last_id = (self._last_id + self._chip.job_id_step) % JOB_TABLE_SLOTS
        return self._last_id

    def add(self, job: LiveJob) -> None:
        self._slots[job.job_id] = job

    def clear(self) -> None:
        """Retire every job (a clean job: replies for older work are stale)."""
        self._slots = [None] * JOB_TABLE_SLOTS

    def live(self) -> list[LiveJob]:
        return [job for job in self._slots if job is not None]

    def resolve(self, reply: NonceReply) -> FoundNonce | None:
        """The job and version of a nonce reply, or None (counted) when it must be dropped."""
        slot = self._chip.job_slot(reply.job_id)
        job = self._slots[slot] if slot < JOB_TABLE_SLOTS else None
        if job is None:
            self.stats.stale += 1
            return None
        lane = self._chip.lane(reply.job_id)
        if self._chip.on_chip_rolling:
            rolled = reply.version_field << VERSION_SHIFT
            if rolled & ~job.rolled_mask:
                self.stats.bad_version += 1
                return None
            version = job.base_version | rolled
        else:
            if lane >= len(job.versions):
                self.stats.bad_version += 1
                return None
            version = job.versions[lane]
        key = (reply.nonce, version)
        if key in job.seen:
            self.stats.duplicates += 1
            return None
        job.seen.add(key)
        return FoundNonce(job.work, reply.nonce, version, job.job_id, lane)
