"""The numba backend against hashlib, on each code path, and its typing and opening rules.

Kernels are compiled once and cached on disk beside the module, so only a cold cache
pays the compile (a few seconds per path); the paths this CPU cannot run are skipped
with the missing feature named.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends import base, numba_cpu
from hashcore.backends._precompute import P_SIZE
from hashcore.errors import BackendUnavailable, ConfigError
from hashcore.work import MAX_TARGET, Work
from tests.backends.scan_contract import ScanContract, expected


def _open(path: str, **options: Any) -> numba_cpu.NumbaBackend:
    if path not in numba_cpu.supported_paths():
        pytest.skip(f"the {path} path needs SHA-NI, which LLVM does not target on this CPU")
    backend = base.open_backend("numba", path=path, **options)
    assert isinstance(backend, numba_cpu.NumbaBackend)
    assert backend.path == path
    return backend


class TestShaNiPath(ScanContract):
    @pytest.fixture
    def backend(self) -> numba_cpu.NumbaBackend:
        return _open("shani")


class TestLanesPath(ScanContract):
    @pytest.fixture
    def backend(self) -> numba_cpu.NumbaBackend:
        return _open("lanes")


# --- other lane counts and prange: the same results as the default path ------------------


@pytest.mark.parametrize(("path", "lanes", "parallel"), [("lanes", 4, False), ("lanes", 8, False), ("lanes", 16, False),
                                                         ("lanes", 32, False),
                                                         ("shani", 8, True), ("lanes", 8, True)])  # fmt: skip
def test_other_lane_counts_and_parallel_scans_match_hashlib(path: str, lanes: int, parallel: bool) -> None:
    backend = _open(path, lanes=lanes, parallel=parallel)
    for shift in (2, 5):
        work = Work.from_header(bytes([lanes + shift]) * 76, MAX_TARGET >> shift)
        assert backend.scan(work, 1000, 997, 1000).nonces == expected(work, 1000, 997)
    every = Work.from_header(bytes(76), MAX_TARGET)
    result = backend.scan(every, 2**32 - 301, 301, 7)
    assert result.nonces == list(range(2**32 - 301, 2**32 - 294))
    assert result.hashes_done == 7


# --- uint32 stays uint32 -------------------------------------------------------------------


def test_hash_arithmetic_is_typed_as_uint32_vectors_never_wider_integers() -> None:
    k = importlib.import_module("hashcore.backends._numba_kernels")
    import numpy as np
    from numba import njit

    # Small callers compile the kernels' (un-cached) pieces here, so their type
    # annotations exist in this process without compiling whole scan kernels.
    @njit
    def lanes(w: Any, offsets: Any) -> Any:
        v = k.vfrom_tuple(offsets)
        k._schedule(w, 16, 64, v)
        return k.vlane(k._rounds((v, v, v, v, v, v, v, v), w, 0, 64)[0], 0)

    @njit
    def shani(prep: Any) -> Any:
        z = k.v4(0, 0, 0, 0)
        r = k._first_hash3(prep, z, z, z, z, z)
        return k.vlane(k._second_hash3(r[0], r[1], r[2], r[3], r[4], r[5], z, z, z, z)[0], 0)

    lanes(np.zeros(64 * 8, dtype=np.uint32), tuple(np.uint32(i) for i in range(8)))
    pieces = [k._rounds, k._schedule]
    if "shani" in numba_cpu.supported_paths():
        shani(np.zeros(P_SIZE, dtype=np.uint32))
        pieces += [k._first_hash3, k._second_hash3]
    state_names = ("a", "b", "c", "d", "e", "f", "g", "h", "t1", "t2")
    for overload in k._rounds.overloads.values():
        typemap = overload.type_annotation.typemap
        state = [name for name in typemap if name.split(".")[0] in state_names]
        assert state and all(isinstance(typemap[name], k.Lanes) for name in state), typemap
    for fn in pieces:
        for overload in fn.overloads.values():
            for name, ty in overload.type_annotation.typemap.items():
                assert str(ty) not in ("uint64", "float64"), f"{fn.__name__}: {name} widened to {ty}"
    for fn in pieces[2:]:
        for overload in fn.overloads.values():
            typemap = overload.type_annotation.typemap
            hashing = {name: ty for name, ty in typemap.items() if name.split(".")[0][0] in "xyuvzkw"}
            assert hashing and all(ty == k.lanes_type(4) for ty in hashing.values()), f"{fn.__name__}: {hashing}"


# --- opening, probing, and machines without Numba or SHA-NI ------------------------------


def test_auto_picks_the_measured_path_and_reports_the_compile_time() -> None:
    backend = base.open_backend("numba")
    assert isinstance(backend, numba_cpu.NumbaBackend)
    assert backend.name == "numba" and backend.releases_gil is True
    assert backend.path == numba_cpu.auto_path()
    assert backend.path in numba_cpu.supported_paths()
    info = base.probe("numba")
    assert info.available
    assert info.extra["auto"] == backend.path
    assert sorted(info.extra["path_choice"]["rates_hs"]) == sorted(numba_cpu.candidates())
    path, lanes = numba_cpu.config(info.extra["path_choice"]["chosen"])
    assert (info.extra["auto"], info.extra["lanes"]) == (path, lanes if path == "lanes" else None)
    assert base.backend_path(backend) == info.extra["path_choice"]["chosen"]  # reports name the lane count
    assert info.extra["compile_seconds"] >= 0
    assert "compiled" in info.detail or "loaded from the disk cache" in info.detail


def test_without_sha_ni_auto_takes_lanes_and_shani_is_unavailable_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(numba_cpu, "has_sha_ni", lambda: False)
    assert numba_cpu.auto_path() == "lanes"
    assert _open("lanes").path == "lanes"
    assert base.open_backend("numba").path == "lanes"  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match=r"SHA-NI.*fix: use path auto or lanes"):
        base.open_backend("numba", path="shani")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"path": "avx9"}, "avx9"),
        ({"lanes": 12}, "lanes"),
        ({"lanes": True}, "lanes"),
        ({"parallel": "yes"}, "parallel"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        base.open_backend("numba", **options)


def test_missing_numba_leaves_the_module_importable_and_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import numba" raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "hashcore.backends._numba_kernels", raising=False)
    monkeypatch.delitem(sys.modules, "hashcore.backends.numba_cpu", raising=False)
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    module = importlib.import_module("hashcore.backends.numba_cpu")
    with pytest.raises(BackendUnavailable, match=r"cannot import Numba.*pip install numba"):
        base.open_backend("numba")
    info = base.probe("numba")
    assert not info.available and "pip install numba" in info.detail
    assert module.CHOICES[0] == "auto"


def test_the_work_prepared_once_is_reused_for_the_next_range() -> None:
    backend = base.open_backend("numba")
    assert isinstance(backend, numba_cpu.NumbaBackend)
    work = Work.from_header(b"\x05" * 76, MAX_TARGET >> 4)
    backend.scan(work, 0, 100, 10)
    prepared = backend._prepared
    backend.scan(work, 100, 100, 10)
    assert backend._prepared is prepared


OPEN_LANES8 = "from hashcore.backends import base; print(base.open_backend('numba', path='lanes', lanes=8))"


def _open_in_child(numba_cache: Path, hashcore_cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache), "HASHCORE_CACHE_DIR": str(hashcore_cache)}
    return subprocess.run([sys.executable, "-c", OPEN_LANES8], env=env, capture_output=True, text=True, timeout=120)


def test_a_damaged_disk_cache_is_compiled_over_and_a_fifo_in_it_does_not_hang_the_start(tmp_path: Path) -> None:
    numba_cache, hashcore_cache = tmp_path / "numba", tmp_path / "hashcore"
    first = _open_in_child(numba_cache, hashcore_cache)
    assert first.returncode == 0, first.stderr
    data = next(numba_cache.rglob("_numba_kernels.scan_lanes-*.nbc"))
    data.write_bytes(os.urandom(4096))  # what a disk that filled up mid-write, or a stray copy, leaves
    damaged = _open_in_child(numba_cache, hashcore_cache)
    assert damaged.returncode == 0, damaged.stderr
    assert "NumbaBackend(path='lanes', lanes=8" in damaged.stdout
    assert "disk cache of scan_lanes could not be loaded" in damaged.stderr and "compiling again" in damaged.stderr
    index = next(numba_cache.rglob("_numba_kernels.scan_lanes-*.nbi"))
    index.unlink()
    os.mkfifo(index)  # no writer ever comes: opening it would block for ever
    fifo = _open_in_child(numba_cache, hashcore_cache)
    assert fifo.returncode == 0, fifo.stderr
    assert f"{index} in Numba's disk cache is no regular file; removing it" in fifo.stderr
    assert index.is_file()  # written again by the compile
    index.unlink()
    index.mkdir()  # an empty folder in its place
    folder = _open_in_child(numba_cache, hashcore_cache)
    assert folder.returncode == 0, folder.stderr
    assert index.is_file()


def test_numba_without_a_writable_disk_cache_is_unavailable_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_locator(name: str) -> Any:
        # Numba's own words when neither the package folder nor the user's cache is writable.
        raise RuntimeError("cannot cache function 'scan_lanes': no locator available for file '/x/_numba_kernels.py'")

    monkeypatch.setattr(numba_cpu.importlib, "import_module", no_locator)
    with pytest.raises(BackendUnavailable, match=r"no locator available.*NUMBA_CACHE_DIR"):
        numba_cpu._kernels()
