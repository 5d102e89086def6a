"""pytest-benchmark suite of the C backend: one scan per code path, and hashlib's rate.

    pytest bench/bench_c.py --benchmark-only

Each benchmark records MH/s (or M compressions/s for hashlib) in its extra_info;
paths this CPU lacks are skipped with the reason.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hashcore.backends import cffi_c
from hashcore.errors import BackendUnavailable
from hashcore.work import Work

_COUNT = {"scalar": 1 << 18, "avx2": 1 << 21, "avx512": 1 << 22, "shani": 1 << 22}
_BUFFER = bytes(16 << 20)


@pytest.mark.parametrize("path", cffi_c.PATHS)
def test_scan(benchmark: Any, path: str) -> None:
    try:
        supported = cffi_c.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    if path not in supported:
        pytest.skip(f"the {path} path needs {cffi_c._FEATURES[path]}; this CPU lacks it")
    backend = cffi_c.CBackend(path)
    work = Work.from_header(bytes(range(76)), 1)
    count = _COUNT[path]
    result = benchmark.pedantic(backend.scan, args=(work, 0, count, 1), rounds=5, warmup_rounds=1)
    assert result.hashes_done == count
    benchmark.extra_info["path"] = path
    benchmark.extra_info["mhs"] = count / benchmark.stats.stats.median / 1e6


def test_hashlib_sha256_compressions(benchmark: Any) -> None:
    benchmark.pedantic(lambda: hashlib.sha256(_BUFFER).digest(), rounds=5, warmup_rounds=1)
    benchmark.extra_info["mcompressions_per_s"] = len(_BUFFER) / 64 / benchmark.stats.stats.median / 1e6
