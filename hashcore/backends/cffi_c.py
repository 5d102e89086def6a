"""The C backend: SHA-256d nonce scanning in ``hashcore._sha256d`` through cffi.

This is the only module that touches the extension's ``lib``. The extension carries
every code path (``csrc/``: scalar, SHA-NI with three nonces interleaved, AVX2 with 8
lanes, AVX-512 with 16 lanes); which of them this CPU can run is read from CPUID at
run time. ``path="auto"`` takes the fastest, measured once per machine and build (every
path this CPU runs, interleaved short scans; see ``pathchoice``) and cached: which is
fastest differs between CPU generations (SHA-NI wins on AMD Zen 3, AVX-512 on Intel
Sapphire Rapids).

cffi releases the GIL around each call into C, so one scanning thread per core scales.
The C code reports exact results (each candidate that passes the cheap test on the top
hash word is re-hashed in full and compared on all 256 bits); the engine still
re-checks every nonce with hashlib before it submits anything.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from types import ModuleType
from typing import Any

from hashcore.backends import backendrank, known_answer, pathchoice
from hashcore.backends.base import BackendInfo, ScanResult, check_range, register
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import Work

#: Code paths by the number the C side uses for them (``HC_PATH_*``).
PATHS: tuple[str, ...] = ("scalar", "shani", "avx2", "avx512")
CHOICES: tuple[str, ...] = ("auto", "avx512", "avx2", "shani", "scalar")
_PATH_ID = {name: i for i, name in enumerate(PATHS)}
_FEATURES = {
    "scalar": "nothing beyond a C compiler",
    "shani": "the SHA extensions (SHA-NI) with SSSE3 and SSE4.1",
    "avx2": "AVX2 (and an OS that saves YMM registers)",
    "avx512": "AVX-512F and AVX-512BW (and an OS that saves ZMM registers)",
}
_FIX = "install a C compiler (gcc or clang) and reinstall hashcore: pip install -e ."
#: Results fetched per call into C; a scan with more loops, so memory stays bounded.
_BATCH = 4096


def _extension() -> ModuleType:
    """The compiled extension, or BackendUnavailable saying why it is missing."""
    try:
        return importlib.import_module("hashcore._sha256d")
    except ImportError as exc:
        raise BackendUnavailable(
            f"the C extension hashcore._sha256d is not built or cannot be loaded ({exc}); fix: {_FIX}"
        ) from exc


def _mask_to_paths(mask: int) -> list[str]:
    return [name for name in PATHS if mask & (1 << _PATH_ID[name])]


def _cpu_name() -> str:
    return pathchoice.cpu_identity()["model_name"]


def supported_paths() -> list[str]:
    """The code paths this build carries and this CPU can run (scalar always)."""
    return _mask_to_paths(int(_extension().lib.hc_paths_supported()))


def compiled_paths() -> list[str]:
    """The code paths compiled into this build (x86-64 builds carry them all)."""
    return _mask_to_paths(int(_extension().lib.hc_paths_compiled()))


def _target_words(target: int) -> list[int]:
    return [(target >> (32 * i)) & 0xFFFFFFFF for i in range(8)]


def _scan(ext: ModuleType, path_id: int, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
    ffi, lib = ext.ffi, ext.lib
    midstate = ffi.new("uint32_t[8]", list(work.midstate))
    tail = ffi.new("uint8_t[12]", work.tail)
    target = ffi.new("uint32_t[8]", _target_words(work.target))
    hashes = ffi.new("uint64_t *")
    batch = ffi.new("uint32_t[]", max(1, min(max_results, count, _BATCH)))
    found: list[int] = []
    done = 0
    while done < count and len(found) < max_results:
        capacity = min(max_results - len(found), len(batch))
        n = lib.hc_scan(path_id, midstate, tail, target, nonce_start + done, count - done, batch, capacity, hashes)
        if n < 0:
            raise BackendError(
                f"the C scanner rejected the call (code {n}) for range [{nonce_start + done}, {nonce_start + count})"
            )
        found.extend(ffi.unpack(batch, n))
        done += int(hashes[0])
    return ScanResult(found, done)


@functools.cache
def _known_answer_ok(path: str) -> bool:
    """Whether ``path`` finds the genesis nonce (checked once per process and path)."""
    ext, path_id = _extension(), _PATH_ID[path]
    return known_answer.wrong_answer(lambda *scan: _scan(ext, path_id, *scan)) is None


@functools.cache
def _build_hash() -> str:
    """A hash of the compiled extension: a rebuild (new code, compiler, flags) re-measures."""
    ext = _extension()
    try:
        with open(ext.__file__ or "", "rb") as module:
            return hashlib.sha256(module.read()).hexdigest()[:16]
    except OSError:
        return "unknown"


def path_choice() -> pathchoice.Choice:
    """Every path's measured rate (one thread) and the fastest: measured once per machine
    and build, then read from the cache."""
    from hashcore._version import __version__

    ext = _extension()
    paths = [p for p in supported_paths() if _known_answer_ok(p)]
    work = Work.from_header(bytes(range(76)), 1)  # target 1: nothing found, full scans

    def run(path: str, count: int) -> int:
        return _scan(ext, _PATH_ID[path], work, 0, min(count, 1 << 32), 1).hashes_done

    key = {"hashcore": __version__, "build": _build_hash()}
    return pathchoice.choose("c", paths, lambda: run, key)


def auto_path() -> str:
    """The path ``auto`` picks on this machine: the fastest measured."""
    return path_choice().chosen


def backend_rate() -> backendrank.BackendRate:
    return backendrank.threaded_rate("c", path_choice())


class CBackend:
    """SHA-256d in C on one code path; safe to share between threads."""

    name = "c"
    releases_gil = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._path_id = _PATH_ID[path]
        self._ext = _extension()

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        return _scan(self._ext, self._path_id, work, nonce_start, count, max_results)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"CBackend(path={self.path!r})"


def _open(*, path: str = "auto", **_options: Any) -> CBackend:
    """Open the C backend on ``path``: auto, avx512, avx2, shani or scalar."""
    if path not in CHOICES:
        raise ConfigError(f"unknown C code path {path!r} (choose from {', '.join(CHOICES)})")
    supported = supported_paths()
    chosen = auto_path() if path == "auto" else path
    if chosen not in supported:
        if chosen not in compiled_paths():
            reason = f"this build of hashcore has no {chosen} code (it exists only on x86-64)"
        else:
            reason = f"the {chosen} path needs {_FEATURES[chosen]}, which {_cpu_name()} lacks"
        raise BackendUnavailable(f"C backend: {reason}; fix: use path auto or one of {', '.join(supported)}")
    if not _known_answer_ok(chosen):
        raise known_answer.known_answer_error(f"C backend: the {chosen} path", "please report this with your CPU model")
    return CBackend(chosen)


def _probe() -> BackendInfo:
    supported = supported_paths()
    choice = path_choice()
    how = "cached" if choice.cached else "measured now"
    return BackendInfo(
        "c",
        True,
        f"cffi extension; code paths here: {choice.describe()} (auto: {choice.chosen}, {how})",
        extra={
            "paths": supported,
            "compiled": compiled_paths(),
            "auto": choice.chosen,
            "cpu": _cpu_name(),
            "path_choice": choice.to_json(),
        },
    )


register("c", _open, _probe, "C through cffi: SHA-NI, AVX-512, AVX2 or scalar, the fastest measured",
         rate=backend_rate)  # fmt: skip
