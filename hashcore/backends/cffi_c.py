"""The C backend: SHA-256d nonce scanning in ``hashcore._sha256d`` through cffi.

This is the only module that touches the extension's ``lib``. The extension carries
every code path (``csrc/``: scalar, SHA-NI with three nonces interleaved, AVX2 with 8
lanes, AVX-512 with 16 lanes); which of them this CPU can run is read from CPUID at
run time. ``path="auto"`` takes the fastest: SHA-NI where it exists, except that on a
CPU with both SHA-NI and AVX-512 the two are timed once per process and the faster
one wins (which is faster differs between CPU generations).

cffi releases the GIL around each call into C, so one scanning thread per core scales.
The C code reports exact results (each candidate that passes the cheap test on the top
hash word is re-hashed in full and compared on all 256 bits); the engine still
re-checks every nonce with hashlib before it submits anything.
"""

from __future__ import annotations

import functools
import importlib
import platform
import time
from types import ModuleType
from typing import Any

from hashcore.backends.base import BackendInfo, ScanResult, check_range, register
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import Work, nbits_to_target

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
#: Preference when only one of the fast paths exists (measured on AMD Zen 3: SHA-NI
#: about 2.2x AVX2, AVX2 about 5x scalar).
_PREFERENCE = ("shani", "avx512", "avx2", "scalar")
_FIX = "install a C compiler (gcc or clang) and reinstall hashcore: pip install -e ."
#: Results fetched per call into C; a scan with more loops, so memory stays bounded.
_BATCH = 4096

# The genesis block header: a known answer each path must find before it is used.
_KNOWN_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd"
    "7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
_KNOWN_NONCE = 0x7C2BAC1D


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
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "this CPU"


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
    work = Work.from_header(_KNOWN_HEADER[:76], nbits_to_target(0x1D00FFFF))
    result = _scan(_extension(), _PATH_ID[path], work, _KNOWN_NONCE - 40, 80, 4)
    return result.nonces == [_KNOWN_NONCE] and result.hashes_done == 80


def _rate(path: str, count: int) -> float:
    """Nonces per second of one short scan (for choosing between fast paths)."""
    work = Work.from_header(bytes(76), 1)
    start = time.perf_counter()
    _scan(_extension(), _PATH_ID[path], work, 0, count, 1)
    return count / (time.perf_counter() - start)


@functools.cache
def auto_path() -> str:
    """The path ``auto`` picks on this machine (timed once where the choice is close)."""
    supported = supported_paths()
    contenders = [p for p in ("shani", "avx512") if p in supported]
    if len(contenders) == 2:
        # Best of three short runs each, alternated, so a busy neighbour hurts both alike.
        best = dict.fromkeys(contenders, 0.0)
        for _ in range(3):
            for p in contenders:
                best[p] = max(best[p], _rate(p, 1 << 17))
        return max(contenders, key=lambda p: best[p])
    return next(p for p in _PREFERENCE if p in supported)


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
        raise BackendError(
            f"C backend: the {chosen} path failed its known-answer test (the genesis block); "
            "do not mine with it; please report this with your CPU model"
        )
    return CBackend(chosen)


def _probe() -> BackendInfo:
    supported = supported_paths()
    auto = auto_path()
    return BackendInfo(
        "c",
        True,
        f"cffi extension; code paths here: {', '.join(supported)} (auto: {auto})",
        extra={"paths": supported, "compiled": compiled_paths(), "auto": auto, "cpu": _cpu_name()},
    )


register("c", _open, _probe, "C through cffi: SHA-NI, AVX-512, AVX2 or scalar, chosen from CPUID")
