"""The Backend scan contract, checked against hashlib; shared by the backends' tests.

A test module subclasses :class:`ScanContract` and provides a ``backend`` fixture; every
test here then runs against it, the reference backend's included (every range here is
small enough for hashlib in pure Python). What is proved: exact results on random headers and
targets, a hash exactly on the target (and one below it excluded), ranges that end at
the last nonce, ``max_results`` with an honest ``hashes_done``, an easy target where
every nonce qualifies, more results than one result batch, the mainnet vectors, and
scans from several threads at once.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashcore.backends.known_answer import GENESIS_HEADER, GENESIS_NONCE
from hashcore.work import MAX_NONCE, MAX_TARGET, Work, nbits_to_target

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "stratum_jobs.json"
GENESIS = GENESIS_HEADER


def hash_value(work: Work, nonce: int) -> int:
    digest = hashlib.sha256(hashlib.sha256(work.header(nonce)).digest()).digest()
    return int.from_bytes(digest, "little")


def expected(work: Work, start: int, count: int) -> list[int]:
    return [n for n in range(start, start + count) if hash_value(work, n) <= work.target]


def vectors() -> list[dict[str, Any]]:
    return list(json.loads(VECTORS.read_text(encoding="utf-8")))


class ScanContract:
    """Tests every backend passes; subclasses define the ``backend`` fixture."""

    #: A count that needs more than one batch of results (the backend's own batch).
    many_results = 2 * 4096 + 100

    # Each subclass runs this method; an example saved by one is a valid test of the others.
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(
        header=st.binary(min_size=76, max_size=76),
        shift=st.integers(min_value=0, max_value=9),
        mantissa=st.integers(min_value=1, max_value=MAX_TARGET),
        start=st.one_of(st.integers(0, MAX_NONCE), st.integers(MAX_NONCE - 300, MAX_NONCE)),
        count=st.integers(0, 300),
    )
    def test_random_headers_and_targets_match_hashlib(
        self, backend: Any, header: bytes, shift: int, mantissa: int, start: int, count: int
    ) -> None:
        target = max(1, mantissa >> shift)
        count = min(count, MAX_NONCE + 1 - start)
        work = Work.from_header(header, target)
        result = backend.scan(work, start, count, max_results=1000)
        assert result.nonces == expected(work, start, count)
        assert result.hashes_done == count

    def test_nonce_exactly_on_the_target_is_found_and_one_below_is_not(self, backend: Any) -> None:
        header = bytes(range(76))
        nonce = 1_000_003
        value = hash_value(Work.from_header(header, MAX_TARGET), nonce)
        assert backend.scan(Work.from_header(header, value), nonce, 1, 1).nonces == [nonce]
        assert backend.scan(Work.from_header(header, value - 1), nonce, 1, 1).nonces == []
        # Inside a range too, a tie on the top words is decided on all 256 bits.
        work = Work.from_header(header, value)
        assert backend.scan(work, nonce - 40, 81, 100).nonces == expected(work, nonce - 40, 81)
        below = Work.from_header(header, value - 1)
        assert nonce not in backend.scan(below, nonce - 40, 81, 100).nonces

    def test_genesis_hash_exactly_on_the_target(self, backend: Any) -> None:
        value = hash_value(Work.from_header(GENESIS[:76], MAX_TARGET), GENESIS_NONCE)
        assert value >> 216 == 0  # a real difficulty: the top 40 bits are zero
        on = Work.from_header(GENESIS[:76], value)
        assert backend.scan(on, GENESIS_NONCE - 20, 40, 8).nonces == [GENESIS_NONCE]
        below = Work.from_header(GENESIS[:76], value - 1)
        assert backend.scan(below, GENESIS_NONCE - 20, 40, 8).nonces == []

    @pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 17, 1000])
    def test_range_ending_at_the_last_nonce_does_not_wrap(self, backend: Any, count: int) -> None:
        start = MAX_NONCE + 1 - count
        every = backend.scan(Work.from_header(bytes(76), MAX_TARGET), start, count, count + 10)
        assert every.nonces == list(range(start, MAX_NONCE + 1))
        assert every.hashes_done == count
        work = Work.from_header(b"\x07" * 76, MAX_TARGET >> 2)
        some = backend.scan(work, start, count, count)
        assert some.nonces == expected(work, start, count)
        assert some.hashes_done == count

    def test_range_starting_at_zero_and_empty_ranges(self, backend: Any) -> None:
        work = Work.from_header(bytes(76), MAX_TARGET >> 3)
        assert backend.scan(work, 0, 200, 200).nonces == expected(work, 0, 200)
        assert backend.scan(work, 0, 0, 1).nonces == []
        assert backend.scan(work, 0, 0, 1).hashes_done == 0
        assert backend.scan(work, MAX_NONCE, 0, 1).hashes_done == 0

    def test_range_past_the_last_nonce_is_refused(self, backend: Any) -> None:
        work = Work.from_header(bytes(76), MAX_TARGET)
        with pytest.raises(ValueError):
            backend.scan(work, MAX_NONCE, 2, 1)
        with pytest.raises(ValueError):
            backend.scan(work, 0, 10, 0)

    def test_easy_target_every_nonce_qualifies(self, backend: Any) -> None:
        work = Work.from_header(b"\xab" * 76, MAX_TARGET)
        result = backend.scan(work, 5000, 1000, 1000)
        assert result.nonces == list(range(5000, 6000))
        assert result.hashes_done == 1000

    def test_max_results_stops_early_with_honest_hashes_done(self, backend: Any) -> None:
        every = backend.scan(Work.from_header(b"\x01" * 76, MAX_TARGET), 100, 1000, 5)
        assert every.nonces == [100, 101, 102, 103, 104]
        assert every.hashes_done == 5

        work = Work.from_header(b"\x02" * 76, MAX_TARGET >> 3)
        full = expected(work, 0, 2000)
        assert len(full) > 10
        result = backend.scan(work, 0, 2000, 3)
        assert result.nonces == full[:3]
        # Everything before hashes_done was examined: nothing was skipped in that prefix.
        assert result.hashes_done == full[2] + 1

    def test_more_results_than_one_batch(self, backend: Any) -> None:
        count = self.many_results
        work = Work.from_header(b"\x03" * 76, MAX_TARGET)
        result = backend.scan(work, 7, count, count - 50)
        assert result.nonces == list(range(7, 7 + count - 50))
        assert result.hashes_done == count - 50
        assert backend.scan(work, 7, count, count + 1).hashes_done == count

    @pytest.mark.parametrize("vector", vectors(), ids=lambda v: str(v["name"]))
    def test_mainnet_block_nonce_is_found_in_its_range(self, backend: Any, vector: dict[str, str]) -> None:
        header = bytes.fromhex(vector["expected_header_hex"])
        nonce = struct.unpack_from("<I", header, 76)[0]
        nbits = struct.unpack_from("<I", header, 72)[0]
        work = Work.from_header(header[:76], nbits_to_target(nbits))
        start = max(0, nonce - 3000)
        count = min(MAX_NONCE + 1, nonce + 3000) - start
        result = backend.scan(work, start, count, 16)
        assert nonce in result.nonces
        for found in result.nonces:
            assert hash_value(work, found) <= work.target
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        assert digest[::-1].hex() == vector["expected_block_hash"]

    def test_concurrent_scans_from_threads_match_serial_scans(self, backend: Any) -> None:
        works = [Work.from_header(bytes([i]) * 76, MAX_TARGET >> 4) for i in range(4)]
        serial = [backend.scan(w, 0, 3000, 1000) for w in works]
        results: list[object] = [None] * len(works)

        def run(i: int) -> None:
            results[i] = backend.scan(works[i], 0, 3000, 1000)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == serial

    def test_another_work_between_scans_is_not_confused_with_the_first(self, backend: Any) -> None:
        # Backends keep per-Work precomputation; a new header or target must replace it.
        a = Work.from_header(b"\x11" * 76, MAX_TARGET >> 3)
        b = Work.from_header(b"\x22" * 76, MAX_TARGET >> 3)
        c = Work.from_header(b"\x22" * 76, MAX_TARGET >> 5)
        for work in (a, b, c, a):
            assert backend.scan(work, 0, 500, 500).nonces == expected(work, 0, 500)
