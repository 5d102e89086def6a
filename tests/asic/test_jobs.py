"""Work to jobs, and the job table that maps replies back to work and version."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hashcore.backends.asic import known_answer
from hashcore.backends.asic.chips import BM1366, BM1397
from hashcore.backends.asic.framing import Bm1366Job, NonceReply, decode_reply, encode_job
from hashcore.backends.asic.jobs import (
    JOB_TABLE_SLOTS,
    JobTable,
    LiveJob,
    bm1366_job,
    bm1397_job,
    header76_of,
    increment_masked,
    midstate_versions,
)
from hashcore.sha256 import midstate
from hashcore.work import DEFAULT_VERSION_MASK, Work, deposit_bits, extract_bits, verify_nonce


def _capture_work(capture: dict[str, Any], mask: int = DEFAULT_VERSION_MASK) -> Work:
    header = bytes.fromhex(capture["replies"][1]["header_hex"])  # version 20000000
    return Work(header[:76], target=(1 << 256) - 1, version_mask=mask)


def test_work_becomes_the_captured_job_frame_byte_for_byte(capture: dict[str, Any]) -> None:
    job = bm1366_job(_capture_work(capture), capture["job"]["job_id"])
    assert encode_job(job).hex().upper() == capture["job_frame_hex"]


def test_rollable_version_bits_are_sent_cleared(capture: dict[str, Any]) -> None:
    work = _capture_work(capture).with_version(0x2000A000)
    assert bm1366_job(work, 8).version == 0x20000000
    no_rolling = Work(work.header76, work.target)  # mask 0: nothing is cleared
    assert bm1366_job(no_rolling, 8).version == 0x2000A000


def test_header_of_a_job_is_the_work_header(capture: dict[str, Any]) -> None:
    work = _capture_work(capture)
    assert header76_of(bm1366_job(work, 0)) == work.header76


def test_the_known_answer_constants_are_the_capture(capture: dict[str, Any]) -> None:
    assert known_answer.work().header76 == _capture_work(capture).header76
    assert capture["job"]["job_id"] == known_answer.JOB_ID
    golden = {
        (struct.unpack("<I", bytes.fromhex(r["nonce_header_bytes"]))[0], int(r["rolled_version"], 16))
        for r in capture["replies"]
    }
    assert golden == known_answer.GOLDEN
    for nonce, version in golden:
        assert verify_nonce(known_answer.work().with_version(version), nonce).meets_target


def test_bm1397_job_carries_host_rolled_midstates(capture: dict[str, Any]) -> None:
    work = _capture_work(capture)
    versions = midstate_versions(work.version, work.version_mask)
    assert versions == [0x20000000, 0x20002000, 0x20004000, 0x20006000]
    job = bm1397_job(work, 4, versions)
    assert job.num_midstates == 4
    assert job.merkle_tail == work.header76[64:68]
    for version, state in zip(versions, job.midstates, strict=True):
        assert state == midstate(struct.pack("<I", version) + work.header76[4:64])
    assert len(encode_job(job)) == 152


def test_bm1397_hashes_one_midstate_without_a_mask(capture: dict[str, Any]) -> None:
    assert midstate_versions(0x20000000, 0) == [0x20000000]
    assert midstate_versions(0x20000000, 0x2000) == [0x20000000]  # fewer than four versions


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_deposit_and_extract_are_inverse(value: int, mask: int) -> None:
    width = mask.bit_count()
    assert extract_bits(deposit_bits(value, mask), mask) == value & ((1 << width) - 1)
    assert deposit_bits(value, mask) & ~mask == 0


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 50))
def test_increment_masked_stays_inside_the_mask(version: int, mask: int, steps: int) -> None:
    rolled = increment_masked(version, mask, steps)
    assert (rolled ^ version) & ~mask == 0


# --- the job table ---------------------------------------------------------------------


def _table_with_capture(capture: dict[str, Any]) -> tuple[JobTable, Work]:
    table = JobTable(BM1366)
    work = _capture_work(capture)
    job = bm1366_job(work, 40)
    table.add(LiveJob(40, work, job.version, DEFAULT_VERSION_MASK, [job.version]))
    return table, work


def test_captured_replies_resolve_to_their_work_and_version(capture: dict[str, Any]) -> None:
    table, work = _table_with_capture(capture)
    for entry in capture["replies"]:
        reply = decode_reply(bytes.fromhex(entry["reply_hex"]))
        assert isinstance(reply, NonceReply)
        found = table.resolve(reply)
        assert found is not None
        assert found.work is work
        assert found.version == int(entry["rolled_version"], 16)
        assert found.lane == entry["small_core"]
        assert work.with_version(found.version).header(found.nonce).hex() == entry["header_hex"]


def test_repeated_nonces_are_dropped(capture: dict[str, Any]) -> None:
    table, _ = _table_with_capture(capture)
    reply = decode_reply(bytes.fromhex(capture["replies"][0]["reply_hex"]))
    assert isinstance(reply, NonceReply)
    assert table.resolve(reply) is not None
    assert table.resolve(reply) is None
    assert table.stats.duplicates == 1


def test_replies_for_retired_or_unknown_jobs_are_stale(capture: dict[str, Any]) -> None:
    table, _ = _table_with_capture(capture)
    assert table.resolve(NonceReply(1, 0, 0x08)) is None
    table.clear()
    assert table.resolve(NonceReply(2, 0, 0x28)) is None
    assert table.stats.stale == 2


def test_version_bits_outside_the_job_mask_are_refused(capture: dict[str, Any]) -> None:
    table = JobTable(BM1366)
    work = _capture_work(capture, mask=0x00006000)
    table.add(LiveJob(8, work, 0x20000000, 0x00006000, [0x20000000]))
    assert table.resolve(NonceReply(1, 0, 0x08, version_field=0x0004)) is None  # bit 15
    assert table.stats.bad_version == 1
    found = table.resolve(NonceReply(1, 0, 0x08, version_field=0x0003))
    assert found is not None and found.version == 0x20006000


def test_bm1397_replies_name_their_midstate(capture: dict[str, Any]) -> None:
    table = JobTable(BM1397)
    work = _capture_work(capture)
    versions = midstate_versions(work.version, work.version_mask)
    table.add(LiveJob(4, work, versions[0], 0, versions))
    found = table.resolve(NonceReply(7, 3, 0x07))
    assert found is not None and found.version == versions[3] and found.lane == 3
    single = JobTable(BM1397)
    single.add(LiveJob(4, work, work.version, 0, [work.version]))
    assert single.resolve(NonceReply(7, 2, 0x06)) is None
    assert single.stats.bad_version == 1


def test_job_ids_cycle_through_the_128_slots_in_chip_steps() -> None:
    for chip in (BM1366, BM1397):
        table = JobTable(chip)
        ids = [table.next_id() for _ in range(JOB_TABLE_SLOTS // chip.job_id_step + 1)]
        assert ids[0] == 0 and ids[-1] == 0
        assert ids[:-1] == list(range(0, JOB_TABLE_SLOTS, chip.job_id_step))


def test_bm1366_job_frame_is_what_the_chip_gets(capture: dict[str, Any]) -> None:
    job = bm1366_job(_capture_work(capture), 16, starting_nonce=0x1234)
    assert isinstance(job, Bm1366Job) and job.starting_nonce == 0x1234
