"""The work model against real mainnet data and a plain reference."""

from __future__ import annotations

import hashlib
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashcore import sha256
from hashcore.errors import WorkError
from hashcore.stratum.fields import job_from_notify, notify_params
from hashcore.work import (
    DIFF1_TARGET,
    MAX_TARGET,
    Job,
    Work,
    WorkOrigin,
    build_header76,
    difficulty_to_target,
    hash_difficulty,
    merkle_branch_for_coinbase,
    merkle_root,
    nbits_to_target,
    rolled_version,
    swap_words,
    target_to_difficulty,
    target_to_nbits,
    verify_nonce,
)
from tests import reference


def _notify_list(notify: dict) -> list:
    keys = ("job_id", "prevhash", "coinb1", "coinb2", "merkle_branch", "version", "nbits", "ntime", "clean_jobs")
    return [notify[k] for k in keys]


def test_every_stratum_vector_reproduces_merkle_root_header_and_block_hash(stratum_jobs):
    for vector in stratum_jobs:
        job = job_from_notify(_notify_list(vector["notify"]))
        extranonce1 = bytes.fromhex(vector["extranonce1"])
        extranonce2 = bytes.fromhex(vector["extranonce2"])
        assert len(extranonce2) == vector["extranonce2_size"]
        root = job.merkle_root(extranonce1, extranonce2)
        assert root.hex() == vector["expected_merkle_root_internal_hex"], vector["name"]
        header76 = job.header76(root, ntime=int(vector["submit_ntime"], 16))
        work = Work.from_header(header76, job.block_target)
        share = verify_nonce(work, int(vector["submit_nonce"], 16))
        assert work.header(share.nonce).hex() == vector["expected_header_hex"], vector["name"]
        assert sha256.display_hex(share.hash) == vector["expected_block_hash"], vector["name"]
        # Each of these is a real block: its hash meets its own nbits target.
        assert share.meets_target
        assert share.value <= nbits_to_target(job.nbits)


def test_vectors_agree_with_the_plain_string_reference(stratum_jobs):
    for vector in stratum_jobs:
        built = reference.header_hex(
            vector["notify"], vector["extranonce1"], vector["extranonce2"], vector["submit_ntime"],
            vector["submit_nonce"],
        )
        assert built == vector["expected_header_hex"]


def test_notify_round_trips_through_the_pool_encoder(stratum_jobs):
    for vector in stratum_jobs:
        params = _notify_list(vector["notify"])
        assert notify_params(job_from_notify(params)) == params


def test_merkle_root_of_real_blocks_from_their_transactions(raw_blocks):
    for block in raw_blocks:
        header, txids = reference.parse_block(bytes.fromhex(block["raw_block_hex"]))
        root = header[36:68]
        assert reference.merkle_root_of(txids) == root
        # The branch a pool would send folds the coinbase txid into the same root.
        branch = merkle_branch_for_coinbase(txids[1:])
        assert merkle_root(txids[0], branch) == root, block["name"]
        assert reference.block_hash_display(header).startswith("0000000000")


@pytest.mark.parametrize("count", range(0, 12))
def test_merkle_branch_matches_full_tree_for_any_transaction_count(count):
    txids = [hashlib.sha256(bytes([i])).digest() for i in range(count + 1)]
    assert merkle_root(txids[0], merkle_branch_for_coinbase(txids[1:])) == reference.merkle_root_of(txids)


def test_nbits_to_target_known_values():
    assert nbits_to_target(0x1D00FFFF) == 0xFFFF << 208  # genesis: difficulty 1
    assert nbits_to_target(0x1B04864C) == 0x04864C << (8 * (0x1B - 3))
    assert nbits_to_target(0x207FFFFF) == 0x7FFFFF << (8 * 29)  # regtest
    assert nbits_to_target(0x03123456) == 0x123456
    assert nbits_to_target(0x02123400) == 0x1234


@pytest.mark.parametrize("bad", [0x1D800000, 0x04923456, 0x00000000, 0x22FFFFFF, -1, 1 << 32])
def test_nbits_that_encode_no_target_are_refused(bad):
    with pytest.raises(WorkError):
        nbits_to_target(bad)


@given(st.integers(min_value=1, max_value=MAX_TARGET >> 1))
def test_target_to_nbits_rounds_down_and_round_trips(target):
    nbits = target_to_nbits(target)
    decoded = nbits_to_target(nbits)
    assert decoded <= target
    assert target_to_nbits(decoded) == nbits


def test_difficulty_targets_including_fractional():
    assert difficulty_to_target(1) == DIFF1_TARGET
    assert difficulty_to_target(2) == DIFF1_TARGET // 2
    assert difficulty_to_target(0.5) == DIFF1_TARGET * 2
    # 0.001 as the float a pool's JSON gives, computed exactly (no float rounding).
    assert difficulty_to_target(0.001) == int(Fraction(DIFF1_TARGET) / Fraction(0.001))
    assert difficulty_to_target(Fraction(1, 1000)) == DIFF1_TARGET * 1000
    assert difficulty_to_target(1e-80) == MAX_TARGET  # so easy that every hash qualifies
    assert target_to_difficulty(DIFF1_TARGET) == 1.0
    assert hash_difficulty(DIFF1_TARGET // 4) == pytest.approx(4.0)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1", True, None])
def test_bad_difficulties_are_refused(bad):
    with pytest.raises(WorkError):
        difficulty_to_target(bad)


def test_version_rolling_keeps_bits_outside_the_mask():
    assert rolled_version(0x20000000, 0x1FFFE000, 0x00006000) == 0x20006000
    assert rolled_version(0x20000000, 0x1FFFE000, 0xFFFFFFFF) == 0x3FFFE000
    assert rolled_version(0x3FFFFFFF, 0x1FFFE000, 0) == 0x20001FFF


def test_work_with_version_refuses_bits_outside_the_mask_and_updates_the_origin():
    origin = WorkOrigin("j", b"\x00" * 4, 0, 0)
    work = Work(build_header76(0x20000000, bytes(32), bytes(32), 0, 0x1D00FFFF), DIFF1_TARGET,
                origin=origin, version_mask=0x1FFFE000)
    rolled = work.with_version(0x20004000)
    assert rolled.version == 0x20004000
    assert rolled.origin is not None and rolled.origin.version_bits == 0x4000
    with pytest.raises(WorkError):
        work.with_version(0x20000001)


def test_bad_job_fields_are_refused():
    with pytest.raises(WorkError):
        Job("j", bytes(31), b"", b"", (), 1, 0x1D00FFFF, 0, True)
    with pytest.raises(WorkError):
        Job("j", bytes(32), b"", b"", (bytes(5),), 1, 0x1D00FFFF, 0, True)
    with pytest.raises(WorkError):
        Work.from_header(bytes(75), 1)


@given(st.binary(min_size=64, max_size=64), st.binary(min_size=0, max_size=100))
def test_midstate_continues_to_the_same_digest_as_hashlib(first, rest):
    state = sha256.midstate(first)
    assert sha256.sha256_from_state(state, rest, 64 + len(rest)) == hashlib.sha256(first + rest).digest()


@given(st.binary(min_size=76, max_size=76), st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_work_midstate_and_header_match_a_plain_reference(header76, nonce):
    work = Work.from_header(header76, MAX_TARGET)
    assert work.midstate == sha256.compress(sha256.IV, header76[:64])
    header = work.header(nonce)
    assert header == header76 + nonce.to_bytes(4, "little")
    tail = header[64:]
    assert sha256.sha256_from_state(work.midstate, tail, 80) == hashlib.sha256(header).digest()
    share = verify_nonce(work, nonce)
    assert share.hash == reference.dsha(header)
    assert share.meets_target


@given(
    st.integers(0, 0xFFFFFFFF), st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
    st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF),
)
def test_header_assembly_matches_the_byte_order_table(version, prev, root, ntime, nbits):
    header = build_header76(version, prev, root, ntime, nbits)
    assert header == struct.pack("<I", version) + prev + root + struct.pack("<II", ntime, nbits)
    assert header[:4].hex() == reference.le32_hex(f"{version:08x}")


@given(st.binary(min_size=32, max_size=32))
def test_swap_words_is_its_own_inverse_and_matches_the_reference(data):
    assert swap_words(swap_words(data)) == data
    assert swap_words(data).hex() == reference.prevhash_to_header_hex(data.hex())


def test_verify_nonce_refuses_out_of_range_nonces():
    work = Work.from_header(bytes(76), MAX_TARGET)
    with pytest.raises(WorkError):
        verify_nonce(work, 1 << 32)
