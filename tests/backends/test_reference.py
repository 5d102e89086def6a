"""The reference backend (hashlib, pure Python) under the same scan contract as the fast
backends, and the genesis known answer that every fast path is checked with at open."""

from __future__ import annotations

import hashlib

import pytest

from hashcore.backends import base, known_answer
from hashcore.backends.base import ScanResult
from hashcore.backends.reference import ReferenceBackend
from hashcore.errors import BackendError
from hashcore.work import Work
from tests.backends.scan_contract import ScanContract


class TestReferenceScanContract(ScanContract):
    """The scan contract on the reference backend."""

    #: The reference backend has no result batches; a few hundred results still prove
    #: that every one is returned.
    many_results = 300

    @pytest.fixture
    def backend(self) -> ReferenceBackend:
        opened = base.open_backend("reference")
        assert isinstance(opened, ReferenceBackend)
        return opened


def test_the_genesis_header_hashes_to_the_genesis_block_hash() -> None:
    digest = hashlib.sha256(hashlib.sha256(known_answer.GENESIS_HEADER).digest()).digest()
    assert digest[::-1].hex() == known_answer.GENESIS_HASH_HEX
    assert int.from_bytes(known_answer.GENESIS_HEADER[76:], "little") == known_answer.GENESIS_NONCE


def test_the_known_answer_passes_an_exact_scan_and_names_a_wrong_one() -> None:
    exact = ReferenceBackend()
    assert known_answer.wrong_answer(exact.scan) is None
    known_answer.check_known_answer(exact.scan, "reference backend", "no fix needed")

    def misses(work: Work, start: int, count: int, max_results: int) -> ScanResult:
        return ScanResult([], count)

    def stops_short(work: Work, start: int, count: int, max_results: int) -> ScanResult:
        result = exact.scan(work, start, count, max_results)
        return ScanResult(result.nonces, result.hashes_done - 1)

    def reports_extra(work: Work, start: int, count: int, max_results: int) -> ScanResult:
        return ScanResult([start, *exact.scan(work, start, count, max_results).nonces], count)

    for wrong in (misses, stops_short, reports_extra):
        assert known_answer.wrong_answer(wrong) is not None
        with pytest.raises(BackendError, match=r"^broken path failed its known-answer test \(the genesis block\); "
                                               r"do not mine with it; fix it$"):  # fmt: skip
            known_answer.check_known_answer(wrong, "broken path", "fix it")
