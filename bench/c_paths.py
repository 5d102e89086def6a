"""Every code path of the C backend side by side, with hashlib as the yardstick.

Prints, per path: MH/s of one thread, MH/s of two threads, the two-thread scaling, and
the ratio ``MH/s per thread / hashlib SHA-256 compressions per second``. hashlib
(OpenSSL) is timed over a large buffer in the same process, interleaved with the
scans, so the ratio holds when the machine's speed drifts; figures are medians.

    python bench/c_paths.py [--seconds 0.5] [--repeats 5] [--paths shani,avx2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass

from hashcore.backends import cffi_c, pathchoice
from hashcore.work import NONCE_SPACE, Work

_BUFFER = bytes(16 << 20)


@dataclass(frozen=True, slots=True)
class PathFigures:
    path: str
    mhs_one_thread: float
    mhs_two_threads: float
    scaling: float
    ratio: float


def hashlib_compressions_per_second() -> float:
    """SHA-256 compressions per second of hashlib over a 16 MiB buffer (one core)."""
    start = time.perf_counter()
    hashlib.sha256(_BUFFER).digest()
    return len(_BUFFER) / 64 / (time.perf_counter() - start)


def _scan_rate(backend: cffi_c.CBackend, work: Work, start: int, count: int) -> float:
    began = time.perf_counter()
    backend.scan(work, start, count, 1)
    return count / (time.perf_counter() - began)


def _two_thread_rate(backend: cffi_c.CBackend, work: Work, count: int) -> float:
    barrier = threading.Barrier(3)

    def run(start: int) -> None:
        barrier.wait()
        backend.scan(work, start, count, 1)

    threads = [threading.Thread(target=run, args=(i * count,)) for i in range(2)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return 2 * count / (time.perf_counter() - began)


def measure(path: str, seconds: float, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Per-thread rates, two-thread rates and hashlib rates, one of each per repeat."""
    backend = cffi_c.CBackend(path)
    work = Work.from_header(bytes(range(76)), 1)  # target 1: nothing found, full scans
    warm = _scan_rate(backend, work, 0, 1 << 16)
    count = max(1 << 16, min(int(warm * seconds), NONCE_SPACE // 4))
    one, two, ref = [], [], []
    for _ in range(repeats):
        ref.append(hashlib_compressions_per_second())
        one.append(_scan_rate(backend, work, 0, count))
        two.append(_two_thread_rate(backend, work, count))
    return one, two, ref


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one scan (default 0.5)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the median is shown")
    parser.add_argument("--paths", default="", help="comma-separated paths (default: all this CPU has)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    supported = cffi_c.supported_paths()
    paths = [p for p in args.paths.split(",") if p] or supported
    missing = [p for p in paths if p not in supported]
    if missing:
        print(f"not available on this CPU: {', '.join(missing)}", file=sys.stderr)
        return 2

    rows: list[PathFigures] = []
    all_ref: list[float] = []
    for path in paths:
        one, two, ref = measure(path, args.seconds, args.repeats)
        all_ref += ref
        per_thread = statistics.median(one)
        both = statistics.median(two)
        ratio = statistics.median(o / r for o, r in zip(one, ref, strict=True))
        rows.append(PathFigures(path, per_thread / 1e6, both / 1e6, both / per_thread, ratio))

    cpu = pathchoice.cpu_label()
    hashlib_m = statistics.median(all_ref) / 1e6
    if args.json:
        report = {
            "cpu": cpu,
            "paths_supported": supported,
            "auto": cffi_c.auto_path(),
            "hashlib_mcompressions_per_s": hashlib_m,
            "paths": [asdict(r) for r in rows],
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"CPU: {cpu}; paths here: {', '.join(supported)}; auto: {cffi_c.auto_path()}")
    print(f"hashlib SHA-256: {hashlib_m:.1f} M compressions/s (one core, median)")
    print(f"{'path':8} {'MH/s 1 thread':>14} {'MH/s 2 threads':>15} {'scaling':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r.path:8} {r.mhs_one_thread:14.2f} {r.mhs_two_threads:15.2f} {r.scaling:8.2f} {r.ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
