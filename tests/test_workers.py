"""Scanners for worker threads: in-process for GIL-releasing backends, a child process
per worker for the reference backend; the chunk sizer; the pickle framing to the child."""

from __future__ import annotations

import io
import os
import signal

import pytest

from hashcore.backends.base import open_backend
from hashcore.errors import BackendError, ConfigError
from hashcore.telemetry import process_tree_cpu_us
from hashcore.work import MAX_TARGET, NONCE_SPACE, Work, nbits_to_target, verify_nonce
from hashcore.workers import (
    MAX_RESULTS,
    ChunkSizer,
    ProcessScanner,
    default_threads,
    open_scanners,
    read_message,
    write_message,
)
from tests.conftest import load_vectors

GENESIS = next(v for v in load_vectors("stratum_jobs.json") if v["name"] == "block 0")
GENESIS_HEADER = bytes.fromhex(GENESIS["expected_header_hex"])
GENESIS_NONCE = int(GENESIS["submit_nonce"], 16)


def genesis_work(target: int = nbits_to_target(0x1D00FFFF)) -> Work:
    return Work.from_header(GENESIS_HEADER[:76], target)


def hashlib_hits(work: Work, start: int, count: int) -> list[int]:
    """Every nonce of the range meeting the work's target, checked one by one with hashlib."""
    return [n for n in range(start, start + count) if verify_nonce(work, n).meets_target]


@pytest.fixture
def reference_scanner():
    scanner = ProcessScanner("reference", {})
    yield scanner
    scanner.close()


# --- which scanner for which backend ---------------------------------------------------


def test_a_backend_that_releases_the_gil_scans_in_its_worker_threads():
    scanners = open_scanners("c", 3)
    try:
        assert len(scanners) == 3 and len({id(s) for s in scanners}) == 3
        assert all(s.name == "c" and not isinstance(s, ProcessScanner) for s in scanners)
        work = genesis_work()
        for scanner in scanners:
            result = scanner.scan(work, GENESIS_NONCE - 1000, 2000, MAX_RESULTS)
            assert (result.nonces, result.hashes_done) == ([GENESIS_NONCE], 2000)
    finally:
        for scanner in scanners:
            scanner.close()


def test_the_reference_backend_scans_in_child_processes_even_for_one_thread():
    for threads in (1, 2):
        scanners = open_scanners("reference", threads)
        try:
            assert len(scanners) == threads
            assert all(isinstance(s, ProcessScanner) and s.name == "reference" for s in scanners)
            result = scanners[-1].scan(genesis_work(), GENESIS_NONCE - 50, 100, MAX_RESULTS)
            assert (result.nonces, result.hashes_done) == ([GENESIS_NONCE], 100)
        finally:
            for scanner in scanners:
                scanner.close()


def test_an_unknown_backend_is_refused_before_anything_starts():
    with pytest.raises(ConfigError, match="unknown backend 'nonesuch'"):
        open_scanners("nonesuch", 2)


def test_default_threads():
    assert default_threads("opencl") == default_threads("asic") == 1
    assert default_threads("c") == default_threads("reference") == (os.cpu_count() or 1)


# --- scanning ranges in the child process ----------------------------------------------


def test_the_child_finds_what_hashlib_finds_over_a_range(reference_scanner):
    work = genesis_work(MAX_TARGET >> 7)  # about one nonce in 128
    start, count = 3_000_000, 3000
    expected = hashlib_hits(work, start, count)
    assert 10 < len(expected) < 60
    result = reference_scanner.scan(work, start, count, 1000)
    assert (result.nonces, result.hashes_done, result.versions) == (expected, count, None)
    in_process = open_backend("c").scan(work, start, count, 1000)
    assert (in_process.nonces, in_process.hashes_done) == (expected, count)


def test_hashes_done_stops_at_the_last_result_when_results_run_out(reference_scanner):
    work = genesis_work(MAX_TARGET)  # every nonce qualifies
    result = reference_scanner.scan(work, 100, 50, MAX_RESULTS)
    assert result.nonces == list(range(100, 100 + MAX_RESULTS))
    assert result.hashes_done == MAX_RESULTS
    sparse = genesis_work(MAX_TARGET >> 7)
    hits = hashlib_hits(sparse, 0, 4000)
    result = reference_scanner.scan(sparse, 0, 4000, 3)
    assert result.nonces == hits[:3] and result.hashes_done == hits[2] + 1


def test_the_last_nonces_of_the_space(reference_scanner):
    work = genesis_work(MAX_TARGET)
    result = reference_scanner.scan(work, NONCE_SPACE - 4, 4, MAX_RESULTS)
    assert (result.nonces, result.hashes_done) == (list(range(NONCE_SPACE - 4, NONCE_SPACE)), 4)


def test_a_scan_error_in_the_child_comes_back_as_itself_and_the_child_keeps_serving(reference_scanner):
    with pytest.raises(ValueError, match="runs past 2\\*\\*32-1"):
        reference_scanner.scan(genesis_work(), NONCE_SPACE - 4, 5, MAX_RESULTS)
    with pytest.raises(ValueError, match="max_results"):
        reference_scanner.scan(genesis_work(), 0, 5, 0)
    assert reference_scanner.scan(genesis_work(), GENESIS_NONCE, 1, 1).nonces == [GENESIS_NONCE]


def test_an_error_opening_the_backend_in_the_child_is_raised_here():
    with pytest.raises(ConfigError, match="unknown C code path 'nonsense'"):
        ProcessScanner("c", {"path": "nonsense"})
    with pytest.raises(ConfigError, match="unknown backend"):
        ProcessScanner("nonesuch", {})


def test_a_child_that_dies_is_a_backend_error(reference_scanner):
    os.kill(reference_scanner._child.pid, signal.SIGKILL)
    # The pipe closes as the child exits, a moment before it can be reaped: code -9 or not yet known.
    with pytest.raises(BackendError, match=r"reference worker process exited \(code (-9|None)\)"):
        reference_scanner.scan(genesis_work(), 0, 10, MAX_RESULTS)


def test_the_childs_cpu_time_counts_as_this_process(reference_scanner):
    before = process_tree_cpu_us()
    reference_scanner.scan(genesis_work(1), 0, 60_000, MAX_RESULTS)  # target 1: nothing found
    # The child did the hashing; its CPU time (well over 20 ms for 60k hashlib calls) shows here.
    assert process_tree_cpu_us() - before > 20_000


def test_close_ends_the_child():
    scanner = ProcessScanner("reference", {})
    child = scanner._child
    scanner.close()
    assert child.returncode == 0


# --- chunk sizes -----------------------------------------------------------------------


def test_chunks_aim_at_the_scan_time():
    sizer = ChunkSizer(seconds=0.25, initial=4096, minimum=256)
    assert sizer.count == 4096
    assert sizer.update(4096, 0.001) == 4096 * 8  # 4M H/s wants 1M, but grows at most 8x a scan
    assert sizer.update(32768, 0.008) == 262144
    assert sizer.update(262144, 0.0625) == 1_048_576  # 4M H/s: a quarter second
    assert sizer.update(1_048_576, 1.0) == 262144  # slower now: shrinks at once
    assert sizer.update(100, 1.0) == 256  # never below the minimum


def test_chunks_ignore_empty_scans_and_stay_in_the_nonce_space():
    sizer = ChunkSizer(seconds=1.0, initial=NONCE_SPACE // 2)
    assert sizer.update(0, 1.0) == NONCE_SPACE // 2
    assert sizer.update(1000, 0.0) == NONCE_SPACE // 2
    assert sizer.update(10**12, 1.0) == NONCE_SPACE


# --- the framing to the child ----------------------------------------------------------


def test_messages_round_trip_and_end_of_stream_is_none():
    stream = io.BytesIO()
    work = genesis_work()
    write_message(stream, {"path": "auto"})
    write_message(stream, (work, 5, 10, MAX_RESULTS))
    write_message(stream, ValueError("bad range"))
    stream.seek(0)
    assert read_message(stream) == {"path": "auto"}
    assert read_message(stream) == (work, 5, 10, MAX_RESULTS)
    error = read_message(stream)
    assert isinstance(error, ValueError) and str(error) == "bad range"
    assert read_message(stream) is None
    assert read_message(io.BytesIO(b"\x05\x00")) is None  # a header cut short: the child is gone
