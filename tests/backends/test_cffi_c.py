"""The C backend (hashcore._sha256d through cffi) against hashlib, on every code path.

Paths this CPU cannot run are skipped with the missing feature named; where the
extension is not built at all, the path tests are skipped and the test of a build
without it still runs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import struct
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashcore.backends import base, cffi_c
from hashcore.errors import BackendUnavailable, ConfigError
from hashcore.work import MAX_NONCE, MAX_TARGET, Work, nbits_to_target

PATHS = ("scalar", "shani", "avx2", "avx512")
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "stratum_jobs.json"


def _supported() -> list[str]:
    try:
        return cffi_c.supported_paths()
    except BackendUnavailable:
        return []


@pytest.fixture(params=PATHS)
def backend(request: pytest.FixtureRequest) -> cffi_c.CBackend:
    path = request.param
    try:
        supported = cffi_c.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(f"C extension not built: {exc}")
    if path not in supported:
        pytest.skip(f"the {path} path needs {cffi_c._FEATURES[path]}; this CPU lacks it")
    backend = base.open_backend("c", path=path)
    assert isinstance(backend, cffi_c.CBackend)
    assert backend.path == path
    return backend


def hash_value(work: Work, nonce: int) -> int:
    digest = hashlib.sha256(hashlib.sha256(work.header(nonce)).digest()).digest()
    return int.from_bytes(digest, "little")


def expected(work: Work, start: int, count: int) -> list[int]:
    return [n for n in range(start, start + count) if hash_value(work, n) <= work.target]


# --- exactness against hashlib ---------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.binary(min_size=76, max_size=76),
    shift=st.integers(min_value=0, max_value=9),
    mantissa=st.integers(min_value=1, max_value=MAX_TARGET),
    start=st.one_of(st.integers(0, MAX_NONCE), st.integers(MAX_NONCE - 300, MAX_NONCE)),
    count=st.integers(0, 300),
)
def test_random_headers_and_targets_match_hashlib(
    backend: cffi_c.CBackend, header: bytes, shift: int, mantissa: int, start: int, count: int
) -> None:
    target = max(1, mantissa >> shift)
    count = min(count, MAX_NONCE + 1 - start)
    work = Work.from_header(header, target)
    result = backend.scan(work, start, count, max_results=1000)
    assert result.nonces == expected(work, start, count)
    assert result.hashes_done == count


def test_nonce_exactly_on_the_target_is_found_and_one_below_is_not(backend: cffi_c.CBackend) -> None:
    header = bytes(range(76))
    probe = Work.from_header(header, MAX_TARGET)
    nonce = 1_000_003
    value = hash_value(probe, nonce)
    on = backend.scan(Work.from_header(header, value), nonce, 1, 1)
    assert on.nonces == [nonce]
    below = backend.scan(Work.from_header(header, value - 1), nonce, 1, 1)
    assert below.nonces == []
    # Within a range, every nonce whose hash ties the target on the top words but not
    # below is decided on all 256 bits.
    work = Work.from_header(header, value)
    assert backend.scan(work, nonce - 40, 81, 100).nonces == expected(work, nonce - 40, 81)


def test_genesis_hash_exactly_on_the_target(backend: cffi_c.CBackend) -> None:
    header = cffi_c._KNOWN_HEADER
    nonce = cffi_c._KNOWN_NONCE
    value = hash_value(Work.from_header(header[:76], MAX_TARGET), nonce)
    assert value >> 216 == 0  # a real difficulty: the top 40 bits are zero
    assert backend.scan(Work.from_header(header[:76], value), nonce - 20, 40, 8).nonces == [nonce]
    assert backend.scan(Work.from_header(header[:76], value - 1), nonce - 20, 40, 8).nonces == []


# --- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 17, 1000])
def test_range_ending_at_the_last_nonce_does_not_wrap(backend: cffi_c.CBackend, count: int) -> None:
    start = MAX_NONCE + 1 - count
    every = backend.scan(Work.from_header(bytes(76), MAX_TARGET), start, count, count + 10)
    assert every.nonces == list(range(start, MAX_NONCE + 1))
    assert every.hashes_done == count
    work = Work.from_header(b"\x07" * 76, MAX_TARGET >> 2)
    some = backend.scan(work, start, count, count)
    assert some.nonces == expected(work, start, count)
    assert some.hashes_done == count


def test_range_starting_at_zero_and_empty_ranges(backend: cffi_c.CBackend) -> None:
    work = Work.from_header(bytes(76), MAX_TARGET >> 3)
    assert backend.scan(work, 0, 200, 200).nonces == expected(work, 0, 200)
    assert backend.scan(work, 0, 0, 1).nonces == []
    assert backend.scan(work, 0, 0, 1).hashes_done == 0
    assert backend.scan(work, MAX_NONCE, 0, 1).hashes_done == 0


def test_range_past_the_last_nonce_is_refused(backend: cffi_c.CBackend) -> None:
    work = Work.from_header(bytes(76), MAX_TARGET)
    with pytest.raises(ValueError):
        backend.scan(work, MAX_NONCE, 2, 1)
    with pytest.raises(ValueError):
        backend.scan(work, 0, 10, 0)


# --- max_results -----------------------------------------------------------------------


def test_easy_target_every_nonce_qualifies(backend: cffi_c.CBackend) -> None:
    work = Work.from_header(b"\xab" * 76, MAX_TARGET)
    result = backend.scan(work, 5000, 1000, 1000)
    assert result.nonces == list(range(5000, 6000))
    assert result.hashes_done == 1000


def test_max_results_stops_early_with_honest_hashes_done(backend: cffi_c.CBackend) -> None:
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


def test_more_results_than_one_batch(backend: cffi_c.CBackend) -> None:
    count = cffi_c._BATCH * 2 + 100
    work = Work.from_header(b"\x03" * 76, MAX_TARGET)
    result = backend.scan(work, 7, count, count - 50)
    assert result.nonces == list(range(7, 7 + count - 50))
    assert result.hashes_done == count - 50
    assert backend.scan(work, 7, count, count + 1).hashes_done == count


# --- real blocks -----------------------------------------------------------------------


def _vectors() -> list[dict[str, object]]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: str(v["name"]))
def test_mainnet_block_nonce_is_found_in_its_range(backend: cffi_c.CBackend, vector: dict[str, str]) -> None:
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


# --- threads ---------------------------------------------------------------------------


def test_concurrent_scans_from_threads_match_serial_scans(backend: cffi_c.CBackend) -> None:
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


# --- opening, paths, and a build without the extension ---------------------------------


def test_auto_picks_a_supported_path_and_reports_it() -> None:
    supported = _supported()
    if not supported:
        pytest.skip("C extension not built")
    backend = base.open_backend("c")
    assert isinstance(backend, cffi_c.CBackend)
    assert backend.name == "c"
    assert backend.releases_gil is True
    assert backend.path in supported
    assert backend.path == cffi_c.auto_path()
    info = base.probe("c")
    assert info.available
    assert info.extra["paths"] == supported


@pytest.mark.parametrize("path", [p for p in PATHS if p != "scalar"])
def test_path_the_cpu_lacks_is_unavailable_with_the_reason(path: str) -> None:
    supported = _supported()
    if not supported:
        pytest.skip("C extension not built")
    if path in supported:
        pytest.skip(f"this CPU has the {path} path; nothing to refuse")
    with pytest.raises(BackendUnavailable, match=r"needs .*lacks.*fix"):
        base.open_backend("c", path=path)


def test_unknown_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sse9"):
        base.open_backend("c", path="sse9")


def test_missing_extension_leaves_package_importable_and_other_backends_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes "import hashcore._sha256d" raise ImportError, as when
    # the extension was never compiled.
    monkeypatch.setitem(sys.modules, "hashcore._sha256d", None)
    monkeypatch.delitem(sys.modules, "hashcore.backends.cffi_c", raising=False)
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    module = importlib.import_module("hashcore.backends.cffi_c")
    with pytest.raises(BackendUnavailable, match=r"not built.*pip install"):
        base.open_backend("c")
    info = base.probe("c")
    assert not info.available
    assert "not built" in info.detail
    assert module.CHOICES[0] == "auto"
    reference = base.open_backend("reference")
    work = Work.from_header(bytes(76), MAX_TARGET >> 1)
    assert reference.scan(work, 0, 50, 100).nonces == expected(work, 0, 50)
