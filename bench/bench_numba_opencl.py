"""The numba and opencl backends beside the C backend and hashlib, in one process.

As a script, each repeat measures hashlib's SHA-256 compressions per second (one core)
and then every configuration through ``hashcore.bench.bench`` (the same runner as
``hashcore bench``: worker threads, quarter-second-style scans sized by the engine's
ChunkSizer), interleaved so that a noisy neighbour hurts all alike; figures are
medians, with ratios taken within each repeat:

    python bench/bench_numba_opencl.py [--seconds 2] [--repeats 3] [--only numba,opencl] [--json]

As a pytest-benchmark suite, one scan per code path:

    pytest bench/bench_numba_opencl.py --benchmark-only
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from hashcore.backends import base, cffi_c, numba_cpu, opencl
from hashcore.bench import bench, hashlib_compressions_per_second
from hashcore.errors import BackendUnavailable
from hashcore.work import Work


@dataclass(frozen=True, slots=True)
class Config:
    label: str
    backend: str
    threads: int
    options: dict[str, Any]
    #: Worker threads behind the figure; "per thread" figures divide by this.
    cores: int


def configs() -> list[Config]:
    """What this machine can run: C (the yardstick), Numba's paths and modes, OpenCL's paths."""
    out = [Config("c auto, 1 thread", "c", 1, {}, 1), Config("c auto, 2 threads", "c", 2, {}, 2)]
    paths = numba_cpu.supported_paths()
    for path in paths:
        out.append(Config(f"numba {path}, 1 thread", "numba", 1, {"path": path}, 1))
        out.append(Config(f"numba {path}, 2 threads", "numba", 2, {"path": path}, 2))
    out.append(
        Config(f"numba {paths[0]}, prange (1 scanner, 2 cores)", "numba", 1, {"path": paths[0], "parallel": True}, 2)
    )
    out.append(Config("numba lanes x8, 1 thread", "numba", 1, {"path": "lanes", "lanes": 8}, 1))
    try:
        devices = opencl.select_devices("auto", opencl.list_devices())
    except BackendUnavailable:
        return out
    cores = sum(ref.compute_units for ref, _ in devices if ref.kind == "CPU") or 1
    for path in ("auto", "portable"):
        out.append(Config(f"opencl {path} ({', '.join(r.id for r, _ in devices)})", "opencl", 1, {"path": path}, cores))
    return out


def run(seconds: float, repeats: int, only: set[str]) -> dict[str, Any]:
    chosen = [c for c in configs() if not only or c.backend in only or c.backend == "c"]
    rates: dict[str, list[float]] = {c.label: [] for c in chosen}
    compressions: list[float] = []
    for _ in range(repeats):
        compressions.append(hashlib_compressions_per_second())
        for config in chosen:
            report = bench(config.backend, seconds, config.threads, options=config.options, baseline=False)
            rates[config.label].append(report.hashrate_hs)
    # Ratios against C on as many cores, from the same repeat: a busy neighbour on a
    # shared machine slows both alike.
    c_rates = {1: rates["c auto, 1 thread"], 2: rates["c auto, 2 threads"]}
    rows = []
    for config in chosen:
        values = rates[config.label]
        c_same = c_rates[min(config.cores, 2)]
        rows.append(
            {
                "config": config.label,
                "cores": config.cores,
                "mhs": statistics.median(values) / 1e6,
                "mhs_per_core": statistics.median(values) / config.cores / 1e6,
                "vs_c_same_cores": statistics.median(v / c for v, c in zip(values, c_same, strict=True)),
                "vs_hashlib_per_core": statistics.median(
                    v / config.cores / h for v, h in zip(values, compressions, strict=True)
                ),
            }
        )
    tunes = []
    if not only or "opencl" in only:
        for path in ("auto", "portable"):
            try:
                backend = base.open_backend("opencl", path=path)
            except BackendUnavailable:
                break
            assert isinstance(backend, opencl.OpenCLBackend)
            tunes += [
                {"device": ref.describe(), **asdict(s)}
                for ref, s in zip(backend.devices, backend.settings, strict=True)
            ]
            backend.close()
    return {
        "cpu": cffi_c._cpu_name(),
        "c_path": cffi_c.auto_path(),
        "hashlib_mcompressions_per_s": statistics.median(compressions) / 1e6,
        "seconds": seconds,
        "repeats": repeats,
        "rows": rows,
        "opencl_tune": tunes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per figure (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is shown")
    parser.add_argument("--only", default="", help="numba and/or opencl (the C rows always run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args.seconds, args.repeats, {b for b in args.only.split(",") if b})
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"CPU: {result['cpu']}; C path: {result['c_path']}; {result['repeats']} repeats of {result['seconds']} s")
    print(f"hashlib SHA-256: {result['hashlib_mcompressions_per_s']:.1f} M compressions/s (one core, median)")
    header = ("configuration", "cores", "MH/s", "MH/s/core", "vs C, same cores", "vs hashlib/core")
    print(f"{header[0]:48} {header[1]:>5} {header[2]:>7} {header[3]:>9} {header[4]:>16} {header[5]:>15}")
    for r in result["rows"]:
        print(
            f"{r['config']:48} {r['cores']:5} {r['mhs']:7.2f} {r['mhs_per_core']:9.2f} {r['vs_c_same_cores']:16.2f}"
            f" {r['vs_hashlib_per_core']:15.2f}"
        )
    for t in result["opencl_tune"]:
        print(
            f"OpenCL tune, {t['device']}: {t['path']} width {t['width']}, {t['nonces_per_item']} nonces/item, "
            f"work group {t['local_size']}, {t['launch_nonces']} nonces/launch, {t['rate_hs'] / 1e6:.1f} MH/s"
        )
    return 0


# --- pytest-benchmark: one scan per code path ------------------------------------------------

_WORK = Work.from_header(bytes(range(76)), 1)  # target 1: nothing found, full scans


@pytest.mark.parametrize("path", numba_cpu.PATHS)
def test_numba_scan(benchmark: Any, path: str) -> None:
    if path not in numba_cpu.supported_paths():
        pytest.skip(f"the numba {path} path needs SHA-NI; this CPU lacks it")
    backend = base.open_backend("numba", path=path)
    count = 1 << 22
    result = benchmark.pedantic(backend.scan, args=(_WORK, 0, count, 1), rounds=5, warmup_rounds=1)
    assert result.hashes_done == count
    benchmark.extra_info["mhs"] = count / benchmark.stats.stats.median / 1e6


@pytest.mark.parametrize("path", opencl.PATHS)
def test_opencl_scan(benchmark: Any, path: str) -> None:
    try:
        backend = base.open_backend("opencl", path=path)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    assert isinstance(backend, opencl.OpenCLBackend)
    count = max(1 << 22, 4 * backend.settings[0].launch_nonces)
    try:
        result = benchmark.pedantic(backend.scan, args=(_WORK, 0, count, 1), rounds=5, warmup_rounds=1)
    finally:
        backend.close()
    assert result.hashes_done == count
    benchmark.extra_info["mhs"] = count / benchmark.stats.stats.median / 1e6
    benchmark.extra_info["settings"] = asdict(backend.settings[0])


if __name__ == "__main__":
    sys.exit(main())
