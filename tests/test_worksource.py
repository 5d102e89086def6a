"""The work source: pool jobs turned into headers and nonce ranges for worker threads.

Every header is rebuilt by string concatenation in ``tests/reference.py`` (hashlib, plain
hex, nothing shared with ``hashcore.work``) and compared byte for byte; three real blocks
are found again through the source, one of them at an ntime rolled past a wrapped
extranonce2.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashcore.work import (
    NONCE_SPACE,
    Job,
    Work,
    difficulty_to_target,
    nbits_to_target,
    rolled_version,
    swap_words,
    verify_nonce,
)
from hashcore.worksource import Template, WorkSource
from tests import reference
from tests.conftest import load_vectors

SESSION = "pool-0"  # anything hashable names a connection
VECTORS = {vector["name"]: vector for vector in load_vectors("stratum_jobs.json")}
BLOCK_99960 = VECTORS["block 99960"]
TESTNET_ROLLED_NTIME = VECTORS["testnet block from the public Stratum protocol example (rolled ntime)"]

#: A job shaped like a mainnet one of 2023: BIP 9 version, a coinbase with a BIP 34 height
#: (800000) and 8 bytes of extranonce space, a merkle branch of 12 levels (~3000
#: transactions), a real mainnet nbits.
MODERN: dict[str, Any] = {
    "job_id": "6c9a1f",
    "prevhash": "6b6e3cb1c1e0a36a5ad29e2e6bd1e7bb5d6b3b4a0001f1ba0000000000000000",
    "coinb1": "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff3503"
              "00350c04c1e5c56408",
    "coinb2": "0d2f68617368636f72652d706f6f6c2fffffffff0240be4025000000001600148f2d6bd8b62ac5b5b5d3"
              "7a8bd4efd3cbd6ce5c6b0000000000000000266a24aa21a9ed0f3ba3e3a3e0b1aa5f42c0b8e10b2d5c8f"
              "2b6c0c3a5f4e9e1d2c3b4a5968778600000000",
    "merkle_branch": [hashlib.sha256(bytes([level])).hexdigest() for level in range(12)],
    "version": "20000000",
    "nbits": "17053894",
    "ntime": "64c5e5c1",
    "clean_jobs": True,
}


def notify(**changes: Any) -> dict[str, Any]:
    return {**MODERN, **changes}


def job_of(fields: dict[str, Any]) -> Job:
    """A Job from ``mining.notify`` fields (hex as the pool sends it)."""
    return Job(
        job_id=fields["job_id"],
        prev_hash=swap_words(bytes.fromhex(fields["prevhash"])),
        coinb1=bytes.fromhex(fields["coinb1"]),
        coinb2=bytes.fromhex(fields["coinb2"]),
        merkle_branch=tuple(bytes.fromhex(node) for node in fields["merkle_branch"]),
        version=int(fields["version"], 16),
        nbits=int(fields["nbits"], 16),
        ntime=int(fields["ntime"], 16),
        clean_jobs=fields["clean_jobs"],
    )


def template(
    fields: dict[str, Any] | None = None,
    *,
    extranonce1: str = "f8002c90",
    size: int = 4,
    difficulty: float = 65536,
    mask: int = 0,
    session: str = SESSION,
    **options: Any,
) -> Template:
    return Template(
        job_of(fields or MODERN), session, bytes.fromhex(extranonce1), size, difficulty_to_target(difficulty), mask,
        **options,
    )


def check_header(work: Work, fields: dict[str, Any], extranonce1: str, mask: int = 0) -> None:
    """The header rebuilt with plain strings and hashlib; the version rolled only under the mask."""
    origin = work.origin
    assert origin is not None and origin.job_id == fields["job_id"]
    job_version = int(fields["version"], 16)
    if mask:
        assert origin.version_bits is not None and origin.version_bits & ~mask == 0
        assert work.version == rolled_version(job_version, mask, origin.version_bits)
    else:
        assert origin.version_bits is None and work.version == job_version
    assert work.version_mask == mask
    expected = reference.header_hex(
        fields, extranonce1, origin.extranonce2.hex(), f"{origin.ntime:08x}", "00000000", version=f"{work.version:08x}"
    )
    assert work.header(0).hex() == expected
    share = verify_nonce(work, 0)
    assert share.hash == reference.dsha(bytes.fromhex(expected))


def headers(source: WorkSource, count: int) -> list[Work]:
    """The next ``count`` headers: one whole nonce span of each."""
    return [source.take(source.nonce_span, timeout=0).work for _ in range(count)]


# --- headers from real jobs ------------------------------------------------------------


def test_a_real_block_is_found_again_through_the_source():
    # Block 99960 was found with extranonce2 1b0119 behind extranonce1 044c8604. The pool
    # here gives "044c86041b01" and one byte of extranonce2: its 26th value (0x19) is the one.
    fields = BLOCK_99960["notify"]
    source = WorkSource(nonce_span=1 << 20)
    source.add(template(fields, extranonce1="044c86041b01", size=1, difficulty=1))
    works = headers(source, 26)
    assert [w.origin.extranonce2 for w in works] == [bytes([i]) for i in range(26)]
    for work in works:
        check_header(work, fields, "044c86041b01")
    nonce = int(BLOCK_99960["submit_nonce"], 16)
    share = verify_nonce(works[-1], nonce)
    assert works[-1].header(nonce).hex() == BLOCK_99960["expected_header_hex"]
    assert share.hash[::-1].hex() == BLOCK_99960["expected_block_hash"]
    assert share.meets_block_target and share.meets_target


def test_ntime_rolls_when_a_one_byte_extranonce2_wraps():
    # The testnet example's share was sent at ntime + 52 with extranonce2 00000001: 52
    # whole wraps of a one-byte extranonce2 behind extranonce1 "08000002000000", and one more.
    fields = TESTNET_ROLLED_NTIME["notify"]
    extranonce1 = "08000002000000"
    source = WorkSource(nonce_span=1)
    source.add(template(fields, extranonce1=extranonce1, size=1, difficulty=1))
    works = headers(source, 52 * 256 + 2)
    ntime = int(fields["ntime"], 16)
    assert [(w.origin.extranonce2, w.origin.ntime) for w in works[254:258]] == [
        (b"\xfe", ntime), (b"\xff", ntime), (b"\x00", ntime + 1), (b"\x01", ntime + 1),
    ]
    assert len({w.header76 for w in works}) == len(works)  # no header twice
    last = works[-1]
    assert (last.origin.extranonce2, last.origin.ntime) == (b"\x01", int(TESTNET_ROLLED_NTIME["submit_ntime"], 16))
    for work in (works[0], works[255], works[256], last):
        check_header(work, fields, extranonce1)
    nonce = int(TESTNET_ROLLED_NTIME["submit_nonce"], 16)
    assert last.header(nonce).hex() == TESTNET_ROLLED_NTIME["expected_header_hex"]
    assert verify_nonce(last, nonce).meets_block_target


def test_modern_job_headers_verify_and_the_merkle_root_matches_hashlib():
    source = WorkSource(nonce_span=1 << 24)
    source.add(template(mask=0x1FFFE000))
    work = headers(source, 1)[0]
    check_header(work, MODERN, "f8002c90", 0x1FFFE000)
    coinbase = bytes.fromhex(MODERN["coinb1"] + "f8002c90" + "00000000" + MODERN["coinb2"])
    root = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
    for node in MODERN["merkle_branch"]:
        root = hashlib.sha256(hashlib.sha256(root + bytes.fromhex(node)).digest()).digest()
    assert work.header76[36:68] == root
    assert work.header76[4:36] == swap_words(bytes.fromhex(MODERN["prevhash"]))
    assert work.header76[68:76] == bytes.fromhex(MODERN["ntime"])[::-1] + bytes.fromhex(MODERN["nbits"])[::-1]


# --- version rolling -------------------------------------------------------------------


def test_version_bits_roll_inside_the_mask_before_the_extranonce2():
    mask = 0x00006000  # two bits: four versions per coinbase
    source = WorkSource(nonce_span=1 << 16)
    source.add(template(mask=mask))
    works = headers(source, 9)
    assert [w.origin.version_bits for w in works] == [0, 0x2000, 0x4000, 0x6000] * 2 + [0]
    assert [w.origin.extranonce2 for w in works] == [bytes(4)] * 4 + [b"\x00\x00\x00\x01"] * 4 + [b"\x00\x00\x00\x02"]
    assert len({w.header76[36:68] for w in works}) == 3  # the merkle root is kept while versions roll
    for work in works:
        check_header(work, MODERN, "f8002c90", mask)


@settings(max_examples=60, deadline=None)
@given(
    mask=st.integers(0, 0xFFFFFFFF).filter(lambda m: bin(m).count("1") <= 6),
    version=st.integers(0, 0xFFFFFFFF),
    count=st.integers(1, 80),
)
def test_rolled_versions_stay_inside_any_mask(mask, version, count):
    fields = notify(version=f"{version:08x}")
    source = WorkSource(nonce_span=1)
    source.add(template(fields, mask=mask, size=2))
    works = headers(source, count)
    for work in works:
        assert work.version & ~mask == version & ~mask
        bits = work.origin.version_bits if mask else 0
        assert work.version == rolled_version(version, mask, bits)
    assert len({w.header76 for w in works}) == count
    check_header(works[-1], fields, "f8002c90", mask)


def test_a_new_version_mask_starts_a_fresh_extranonce2():
    source = WorkSource(nonce_span=1)
    source.add(template(mask=0x00006000))
    before = headers(source, 2)
    source.set_version_mask(SESSION, 0x00018000)
    after = headers(source, 5)
    assert [w.origin.extranonce2[-1] for w in before + after] == [0, 0, 1, 1, 1, 1, 2]
    assert [w.origin.version_bits for w in after] == [0, 0x8000, 0x10000, 0x18000, 0]
    for work in after:
        check_header(work, MODERN, "f8002c90", 0x00018000)
    assert len({w.header76 for w in before + after}) == 7
    source.set_version_mask(SESSION, 0)  # rolling withdrawn: the job's own version
    (plain,) = headers(source, 1)
    assert plain.origin.version_bits is None and plain.version == 0x20000000


# --- nonce ranges for worker threads ---------------------------------------------------


def test_ranges_cover_each_header_once_then_move_on():
    source = WorkSource(nonce_span=1000)
    source.add(template())
    units = [source.take(300, timeout=0) for _ in range(5)]
    assert [(u.nonce_start, u.count) for u in units] == [(0, 300), (300, 300), (600, 300), (900, 100), (0, 300)]
    assert units[0].work is units[3].work and units[4].work != units[0].work
    assert units[4].work.origin.extranonce2 == b"\x00\x00\x00\x01"
    assert source.take(0, timeout=0).count == 1  # never an empty range


def test_the_whole_nonce_space_is_the_default_span():
    source = WorkSource()
    source.add(template())
    first = source.take(NONCE_SPACE - 5, timeout=0)
    second = source.take(100, timeout=0)
    third = source.take(100, timeout=0)
    assert (second.nonce_start, second.count, second.work) == (NONCE_SPACE - 5, 5, first.work)
    assert (third.nonce_start, third.work.origin.extranonce2) == (0, b"\x00\x00\x00\x01")


@pytest.mark.parametrize("span", [0, NONCE_SPACE + 1])
def test_a_span_outside_the_nonce_space_is_refused(span):
    with pytest.raises(ValueError, match="nonce_span"):
        WorkSource(nonce_span=span)


def test_concurrent_workers_never_scan_a_nonce_twice():
    source = WorkSource(nonce_span=5000)
    source.add(template(mask=0x00006000, size=2))
    taken: list[list[Any]] = [[] for _ in range(4)]

    def worker(out: list[Any]) -> None:
        for index in range(300):
            out.append(source.take(97 + index % 13, timeout=1))

    threads = [threading.Thread(target=worker, args=(out,)) for out in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    units = [unit for out in taken for unit in out]
    assert None not in units and len(units) == 1200
    by_header: dict[bytes, set[int]] = {}
    for unit in units:
        nonces = set(range(unit.nonce_start, unit.nonce_start + unit.count))
        seen = by_header.setdefault(unit.work.header76, set())
        assert not seen & nonces, "a nonce of one header handed out twice"
        seen |= nonces
    origins = {unit.work.origin for unit in units}
    assert len(origins) == len(by_header) > 20  # each header its own extranonce2/version


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    span=st.integers(1, 64),
    size=st.integers(1, 2),
    mask=st.sampled_from([0, 0x2000, 0x00006000, 0x1FFFE000]),
    takes=st.lists(st.integers(1, 70), min_size=1, max_size=120),
)
def test_no_header_and_nonce_is_handed_out_twice(span, size, mask, takes):
    source = WorkSource(nonce_span=span)
    source.add(template(size=size, mask=mask))
    scanned: set[tuple[bytes, int]] = set()
    identities: dict[bytes, Any] = {}
    for count in takes:
        unit = source.take(count, timeout=0)
        assert 1 <= unit.count <= min(count, span) and unit.nonce_start + unit.count <= span
        pairs = {(unit.work.header76, n) for n in range(unit.nonce_start, unit.nonce_start + unit.count)}
        assert not pairs & scanned
        scanned |= pairs
        origin = unit.work.origin
        assert identities.setdefault(unit.work.header76, origin) == origin
    # One header per (extranonce2, ntime, version bits): what mining.submit sends.
    assert len(set(identities.values())) == len(identities)


def test_a_waiting_worker_wakes_when_a_job_arrives():
    source = WorkSource()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(source.take(10, timeout=30)), daemon=True)
    waiter.start()
    source.add(template())
    waiter.join(timeout=10)
    assert not waiter.is_alive() and got[0] is not None and got[0].key == (SESSION, MODERN["job_id"])


def test_no_work_without_a_job_and_none_after_stop():
    source = WorkSource()
    assert source.take(10, timeout=0.01) is None
    assert source.current_job is None
    source.add(template())
    assert source.current_job == job_of(MODERN)
    source.stop()
    assert source.take(10, timeout=0.01) is None


# --- jobs, staleness, serials ----------------------------------------------------------


def test_a_clean_job_makes_every_earlier_one_stale():
    source = WorkSource()
    source.add(template(notify(job_id="a")))
    old = source.take(100, timeout=0)
    source.add(template(notify(job_id="b", clean_jobs=False)))
    kept = source.take(100, timeout=0)
    assert source.template(old.key, old.serial) is not None  # not clean: late results still count
    source.add(template(notify(job_id="c", prevhash="00" * 32)))
    new = source.take(100, timeout=0)
    assert source.template(old.key, old.serial) is None
    assert source.template(kept.key, kept.serial) is None
    assert new.key == (SESSION, "c") and new.nonce_start == 0 and new.work.origin.job_id == "c"
    assert source.current_job.job_id == "c"


def test_another_connections_job_makes_the_old_connections_stale():
    source = WorkSource()
    source.add(template(notify(job_id="a")))
    first = source.take(10, timeout=0)
    source.add(template(notify(job_id="a", clean_jobs=False), session="pool-1", extranonce1="00000001"))
    assert source.template(first.key, first.serial) is None
    unit = source.take(10, timeout=0)
    assert unit.key == ("pool-1", "a")
    check_header(unit.work, notify(job_id="a"), "00000001")


def test_a_dropped_connection_leaves_no_work():
    source = WorkSource()
    source.add(template())
    unit = source.take(10, timeout=0)
    source.drop_session("pool-7")  # another connection: nothing changes
    assert source.template(unit.key) is not None
    source.drop_session(SESSION)
    assert source.template(unit.key) is None
    assert source.current_job is None and source.take(10, timeout=0.01) is None


def test_at_most_keep_jobs_jobs_stay_valid():
    source = WorkSource()
    assert source.keep_jobs == 64
    units = []
    for index in range(70):
        source.add(template(notify(job_id=f"{index:x}", clean_jobs=index == 0)))
        units.append(source.take(10, timeout=0))
    live = [source.template(u.key, u.serial) is not None for u in units]
    assert live == [False] * 6 + [True] * 64
    small = WorkSource(keep_jobs=2)
    for index in range(3):
        small.add(template(notify(job_id=str(index), clean_jobs=False)))
    assert [small.template((SESSION, str(i))) is not None for i in range(3)] == [False, True, True]


def test_serials_tell_a_reused_job_id_from_the_job_it_named_before():
    source = WorkSource()
    first, second = template(notify(job_id="7")), template(notify(job_id="7", clean_jobs=False, ntime="64c5e600"))
    source.add(first)
    old = source.take(10, timeout=0)
    source.add(second)
    new = source.take(10, timeout=0)
    assert 0 < first.serial < second.serial and (old.serial, new.serial) == (first.serial, second.serial)
    assert old.key == new.key
    assert source.template(old.key, old.serial) is None  # the id names another job now
    assert source.template(new.key, new.serial) is second
    assert source.template(new.key) is second
    assert new.work.origin.ntime == 0x64C5E600


# --- targets and block candidates ------------------------------------------------------


def test_targets_local_share_and_block():
    source = WorkSource()
    source.add(template(difficulty=1024))
    work = source.take(10, timeout=0).work
    block = nbits_to_target(0x17053894)
    assert (work.share_target, work.block_target) == (difficulty_to_target(1024), block)
    assert work.target == difficulty_to_target(1024)  # the share target is the easier one here
    # A new difficulty and a share-rate cap: work built from now on reports against the capped target.
    source.set_share_target(SESSION, difficulty_to_target(2048), difficulty_to_target(8192))
    work = source.take(10, timeout=0).work
    assert (work.share_target, work.target) == (difficulty_to_target(2048), difficulty_to_target(8192))
    live = source.template((SESSION, MODERN["job_id"]))
    assert live.local_target == difficulty_to_target(8192)
    source.set_share_target(SESSION, difficulty_to_target(4096), difficulty_to_target(16))  # a cap never eases
    assert source.take(10, timeout=0).work.target == difficulty_to_target(4096)
    source.set_share_target("pool-9", difficulty_to_target(1))  # another connection's difficulty
    assert source.take(10, timeout=0).work.share_target == difficulty_to_target(4096)


def test_one_block_candidate_per_job_below_the_share_difficulty():
    # Share difficulty above the block's (a solo pool, or a test chain): the work reports
    # against the easier block target until one block candidate has been sent.
    fields = notify(nbits="1d00ffff")  # block difficulty 1
    source = WorkSource()
    source.add(template(fields, difficulty=1000))
    work = source.take(10, timeout=0).work
    assert work.target == nbits_to_target(0x1D00FFFF) == work.block_target
    assert work.share_target == difficulty_to_target(1000)
    key = (SESSION, MODERN["job_id"])
    assert source.mark_block_candidate(key) is True
    assert source.mark_block_candidate(key) is False  # one per job
    after = source.take(10, timeout=0)
    assert after.nonce_start == 0 and after.work.target == difficulty_to_target(1000)
    assert source.mark_block_candidate((SESSION, "gone")) is False


def test_a_pool_that_refuses_block_candidates_gets_share_targets_only():
    source = WorkSource()
    source.add(template(notify(nbits="1d00ffff"), difficulty=1000))
    source.refuse_block_candidates(SESSION)
    assert source.take(10, timeout=0).work.target == difficulty_to_target(1000)
    refused = template(notify(nbits="1d00ffff"), difficulty=1000, block_candidates=False)
    assert refused.next_work().target == difficulty_to_target(1000)
