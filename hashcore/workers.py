"""Scanners the engine and the benchmark drive from worker threads.

A backend that releases the GIL is scanned directly in its worker thread. One that
holds it (the reference backend) would serialise every thread behind the GIL, so each
of its workers scans in a child process of its own and the thread only waits.
:class:`ChunkSizer` sizes nonce ranges so one scan takes about ``seconds`` (a quarter
of a second by default: a clean job stops stale work within that time).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any, Protocol

from hashcore.backends.base import ScanResult, open_backend
from hashcore.errors import BackendError
from hashcore.telemetry.cputime import track_child, untrack_child
from hashcore.work import NONCE_SPACE, Work

MAX_RESULTS = 16


class Scanner(Protocol):
    name: str

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult: ...

    def close(self) -> None: ...


class ProcessScanner:
    """Scans in a child process of its own (for backends that hold the GIL).

    The child is ``python -m hashcore._scan_child NAME`` speaking length-prefixed pickles
    over its stdin/stdout: a plain subprocess rather than multiprocessing, whose spawn
    mode re-imports the caller's ``__main__`` (breaking scripts without a main guard).
    """

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self._child = subprocess.Popen(
            [sys.executable, "-m", "hashcore._scan_child", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lock = threading.Lock()
        track_child(self._child.pid)  # its CPU time is this miner's (the energy estimate)
        try:
            self._call(options)  # the child opens the backend; an error comes back here
        except BaseException:
            self.close()
            raise

    def _call(self, request: Any) -> Any:
        assert self._child.stdin is not None and self._child.stdout is not None
        with self._lock:
            write_message(self._child.stdin, request)
            reply = read_message(self._child.stdout)
        if reply is None:
            raise BackendError(f"{self.name} worker process exited (code {self._child.poll()})")
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        result: ScanResult = self._call((work, nonce_start, count, max_results))
        return result

    def close(self) -> None:
        if self._child.stdin is not None:
            with contextlib.suppress(OSError):
                self._child.stdin.close()
        try:
            self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        untrack_child(self._child.pid)


def write_message(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack("<I", header)
    return pickle.loads(stream.read(size))


def open_scanners(name: str, threads: int, options: dict[str, Any] | None = None) -> list[Scanner]:
    """One scanner per worker thread. Raises BackendUnavailable before anything starts.

    A backend that holds the GIL scans in worker processes even for one thread: in this
    process it would make every blocking call of the event loop (each socket or /proc
    read) wait out the interpreter's switch interval, stalling the pool connection."""
    options = dict(options or {})
    first = open_backend(name, **options)
    if first.releases_gil:
        scanners: list[Scanner] = [first]
        try:
            scanners += [open_backend(name, **options) for _ in range(threads - 1)]
        except Exception:
            for scanner in scanners:
                scanner.close()
            raise
        return scanners
    first.close()
    return [ProcessScanner(name, options) for _ in range(threads)]


def default_threads(name: str) -> int:
    """One worker per core for CPU backends; devices bring their own parallelism."""
    return 1 if name in ("opencl", "asic") else (multiprocessing.cpu_count() or 1)


class ChunkSizer:
    """Nonce-range sizes that make one scan take about ``seconds``."""

    def __init__(self, seconds: float = 0.25, initial: int = 4096, minimum: int = 256) -> None:
        self.seconds = seconds
        self.count = initial
        self.minimum = minimum

    def update(self, hashes_done: int, elapsed: float) -> int:
        if hashes_done > 0 and elapsed > 0:
            wanted = int(hashes_done / elapsed * self.seconds)
            # Grow at most 8x per scan so one slow first call cannot overshoot wildly.
            self.count = max(self.minimum, min(wanted, self.count * 8, NONCE_SPACE))
        return self.count

