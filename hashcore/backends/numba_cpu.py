"""The numba backend: SHA-256d nonce scanning compiled at run time by Numba (LLVM).

Two code paths, both in ``_numba_kernels`` (imported only when the backend opens, so
that importing this module stays cheap and works without Numba):

* ``shani``: three nonces in flight through the SHA extensions, where the CPU has them
  (on AMD Zen 3, one thread: about 0.86 of the C backend's SHA-NI path);
* ``lanes``: ``lanes`` nonces side by side in SIMD vectors (AVX2 on Zen 3), anywhere
  (there about 0.42 of C's SHA-NI path and 0.9 of C's AVX2 path).

``path="auto"`` takes the fastest of the paths LLVM can target here, the lanes path at
each count of ``tuning.NUMBA_LANE_CANDIDATES`` (unless ``lanes`` is given), measured
once per machine, build and Numba version (short interleaved scans, see
``pathchoice``) and cached: SHA-NI wins on AMD Zen 3, the lanes on AVX-512 Intel (2x
there), 32 lanes on Zen 5 (1.6x 16 lanes, 1.7x SHA-NI there). Kernels are
compiled once and cached on disk beside the module (Numba's ``cache=True``); the first
open in a process loads or compiles them and runs a
known-answer test (the genesis block), and ``hashcore devices`` shows how long that
took, so compile time never lands inside a benchmark interval.

Parallel scans: the kernels release the GIL, so the engine runs one scanning thread
per core (``releases_gil``). That measured a little faster than Numba's ``prange`` on
two cores (48.2 against 46.6 MH/s on Zen 3), and keeps the per-thread CPU time (the
energy split between backends) and the thread-count actuator exact. The
``parallel=True`` option splits each scan over Numba's threads instead (one scanner
driving every core, each part in its own result slot, merged in order; no atomics).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from hashcore.backends import backendrank, known_answer, pathchoice, tuning
from hashcore.backends.base import BackendInfo, ScanResult, check_range, register
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import Work

log = logging.getLogger("hashcore.backends.numba")

PATHS: tuple[str, ...] = ("shani", "lanes")
CHOICES: tuple[str, ...] = ("auto", *PATHS)
LANE_CHOICES: tuple[int, ...] = (4, 8, 16, 32)
#: The lane count of a backend built without one (the shani path does not use it).
DEFAULT_LANES = 16
_FIX = "pip install numba (hashcore's dependencies include it: pip install -e .)"
#: Results fetched per kernel call; a scan with more loops, so memory stays bounded.
_BATCH = 4096


def _kernels() -> ModuleType:
    """The kernel module, or BackendUnavailable saying why Numba cannot be used."""
    try:
        return importlib.import_module("hashcore.backends._numba_kernels")
    except ImportError as exc:
        raise BackendUnavailable(f"numba backend: cannot import Numba ({exc}); fix: {_FIX}") from exc
    except RuntimeError as exc:  # Numba finds no folder it may write its disk cache to
        raise BackendUnavailable(
            f"numba backend: {exc}; fix: set NUMBA_CACHE_DIR to a folder this user may write"
        ) from exc


def _sound_disk_cache(kernel: Any) -> None:
    """Remove what stands in place of ``kernel``'s disk cache files and is no regular
    file: Numba opens them without a bound, and a FIFO there would hang the start."""
    folder = getattr(getattr(kernel, "_cache", None), "_cache_path", None)
    if not folder:
        return
    prefix = f"{_kernels().__name__.rsplit('.', 1)[-1]}.{kernel.__name__}-"
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith((".nbi", ".nbc")) and not entry.is_file():
                log.warning("numba backend: %s in Numba's disk cache is no regular file; removing it", entry.path)
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry.path)


def _first_call(kernel: Any, check: Callable[[], None]) -> None:
    """``check`` (the first call of ``kernel``), with a disk cache that cannot be loaded
    (a file cut short or overwritten) dropped and the kernel compiled again."""
    _sound_disk_cache(kernel)
    try:
        check()
    except BackendError:
        raise
    except Exception as exc:  # what unpickling a damaged cache file raises has no bound
        cache = getattr(kernel, "_cache", None)
        if cache is None:
            raise
        log.warning("numba backend: Numba's disk cache of %s could not be loaded (%s: %s); compiling again",
                    kernel.__name__, type(exc).__name__, exc)  # fmt: skip
        try:
            cache.flush()
            check()
        except BackendError:
            raise
        except Exception as again:
            folder = getattr(cache, "_cache_path", "its folder")
            raise BackendUnavailable(
                f"numba backend: {kernel.__name__} neither loads from nor compiles into Numba's disk cache in "
                f"{folder} ({type(again).__name__}: {again}); fix: clear that folder or set NUMBA_CACHE_DIR"
            ) from again


def has_sha_ni() -> bool:
    """Whether the code Numba generates here may use the SHA extensions.

    Asks what LLVM compiles for (``NUMBA_CPU_FEATURES`` when set, else the host), not
    only what the CPU has: a cache built for a generic CPU must not take this path.
    """
    _kernels()
    import llvmlite.binding as llvm
    from numba.core import config

    features = getattr(config, "CPU_FEATURES", None) or llvm.get_host_cpu_features().flatten()
    return "+sha" in features.split(",")


def supported_paths() -> list[str]:
    return [p for p in PATHS if p != "shani" or has_sha_ni()]


@functools.cache
def _kernel_hash() -> str:
    """A hash of the kernels' source: a changed kernel measures again."""
    source = _kernels().__file__ or ""
    try:
        with open(source, "rb") as kernel:
            return hashlib.sha256(kernel.read()).hexdigest()[:16]
    except OSError:
        return "unknown"


def candidates(lanes: int | None = None) -> list[str]:
    """What ``auto`` measures: ``shani`` where it runs, and the lanes path at ``lanes``
    or, unset, at each count of ``tuning.NUMBA_LANE_CANDIDATES`` (``lanes32`` ...)."""
    counts = tuning.NUMBA_LANE_CANDIDATES if lanes is None else (lanes,)
    return [*(["shani"] if has_sha_ni() else []), *(f"lanes{n}" for n in counts)]


def config(candidate: str, lanes: int | None = None) -> tuple[str, int]:
    """(path, lanes) of a measured candidate: ``lanes32`` is ("lanes", 32); shani takes
    ``lanes`` or the default, which it does not use."""
    if candidate.startswith("lanes"):
        return "lanes", int(candidate.removeprefix("lanes"))
    return candidate, lanes or DEFAULT_LANES


def path_choice(lanes: int | None = None) -> pathchoice.Choice:
    """Every candidate's measured rate (one thread) and the fastest: measured once per
    machine, kernel source and Numba version, then read from the cache."""
    import llvmlite
    import llvmlite.binding as llvm
    import numba
    from numba.core import config as numba_config

    from hashcore._version import __version__

    names = candidates(lanes)

    def prepare() -> pathchoice.Runner:
        backends: dict[str, NumbaBackend] = {}
        for name in names:
            path, count = config(name, lanes)
            _ready(path, count, False)  # compiled and checked before anything is timed
            backends[name] = NumbaBackend(path, count)
        work = Work.from_header(bytes(range(76)), 1)  # target 1: nothing found, full scans

        def run(name: str, count: int) -> int:
            return backends[name].scan(work, 0, min(count, 1 << 32), 1).hashes_done

        return run

    key = {
        "hashcore": __version__,
        "kernels": _kernel_hash(),
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "llvm_cpu": getattr(numba_config, "CPU_NAME", None) or llvm.get_host_cpu_name(),
        "llvm_features": os.environ.get("NUMBA_CPU_FEATURES", "host"),
        "lanes": ",".join(map(str, tuning.NUMBA_LANE_CANDIDATES)) if lanes is None else str(lanes),
    }
    entry = "numba" if lanes is None else f"numba lanes={lanes}"
    return pathchoice.choose(entry, names, prepare, key)


def auto_config(lanes: int | None = None) -> tuple[str, int]:
    """The (path, lanes) ``auto`` takes on this machine: the fastest measured."""
    return config(path_choice(lanes).chosen, lanes)


def auto_path(lanes: int | None = None) -> str:
    """The path ``auto`` picks on this machine."""
    return auto_config(lanes)[0]


def fastest_lanes() -> int:
    """The lane count the lanes path runs fastest at here (measured with ``auto``)."""
    rates = path_choice().rates_hs
    return config(max((n for n in rates if n.startswith("lanes")), key=rates.__getitem__))[1]


def backend_rate() -> backendrank.BackendRate:
    return backendrank.threaded_rate("numba", path_choice())


def _lane_offsets(lanes: int) -> tuple[Any, ...]:
    import numpy as np

    # The tuple's type (lanes x uint32) picks the kernel's vector width at compile time.
    return tuple(np.uint32(i) for i in range(lanes))


class NumbaBackend:
    """SHA-256d in Numba-compiled code on one path; safe to share between threads."""

    name = "numba"
    releases_gil = True

    def __init__(self, path: str, lanes: int = DEFAULT_LANES, parallel: bool = False) -> None:
        import numpy as np

        self.path = path
        self.lanes = lanes
        self.parallel = parallel
        self._np = np
        self._k = _kernels()
        self._offsets = _lane_offsets(lanes)
        # (header76, target) -> prepared array: the nonce-independent work of one Work.
        self._prepared: tuple[bytes, int, Any] | None = None

    @property
    def path_label(self) -> str:
        """The path as the path choice names it: ``lanes32``, ``shani``."""
        return f"lanes{self.lanes}" if self.path == "lanes" else self.path

    def _prepare(self, work: Work) -> Any:
        cached = self._prepared
        if cached is not None and cached[0] == work.header76 and cached[1] == work.target:
            return cached[2]
        prep = self._k.prepare(work)
        self._prepared = (work.header76, work.target, prep)
        return prep

    def _run(self, prep: Any, start: int, count: int, capacity: int) -> tuple[list[int], int]:
        """One kernel call: (nonces in order, hashes done), at most ``capacity`` nonces."""
        np, k = self._np, self._k
        if not self.parallel:
            out = np.empty(capacity, dtype=np.uint32)
            if self.path == "shani":
                found, done = k.scan_shani(prep, start, count, out)
            else:
                found, done = k.scan_lanes(prep, start, count, out, self._offsets)
            return out[:found].tolist(), int(done)
        parts = max(1, min(k.parallel_parts(), count))
        out2 = np.empty((parts, capacity), dtype=np.uint32)
        found2 = np.zeros(parts, dtype=np.int64)
        done2 = np.zeros(parts, dtype=np.int64)
        if self.path == "shani":
            k.scan_shani_parallel(prep, start, count, out2, found2, done2)
        else:
            k.scan_lanes_parallel(prep, start, count, out2, found2, done2, self._offsets)
        nonces: list[int] = []
        for i in range(parts):
            nonces.extend(out2[i, : found2[i]].tolist())
            if len(nonces) >= capacity:
                nonces = nonces[:capacity]
                return nonces, nonces[-1] + 1 - start
        return nonces, count

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        prep = self._prepare(work)
        found: list[int] = []
        done = 0
        while done < count and len(found) < max_results:
            capacity = min(max_results - len(found), _BATCH, count - done)
            nonces, hashed = self._run(prep, nonce_start + done, count - done, capacity)
            found.extend(nonces)
            done += hashed
        return ScanResult(found, done)

    def close(self) -> None:
        self._prepared = None

    def __repr__(self) -> str:
        return f"NumbaBackend(path={self.path!r}, lanes={self.lanes}, parallel={self.parallel})"


@functools.cache
def _ready(path: str, lanes: int, parallel: bool) -> tuple[float, bool]:
    """Load (or compile) the kernels of one configuration and check the known answer.

    Returns (seconds it took, whether every kernel came from the disk cache). Cached
    per process, so only the first open pays.
    """
    backend = NumbaBackend(path, lanes, parallel)
    k = backend._k
    kernel = {
        ("shani", False): k.scan_shani,
        ("lanes", False): k.scan_lanes,
        ("shani", True): k.scan_shani_parallel,
        ("lanes", True): k.scan_lanes_parallel,
    }[path, parallel]
    hits_before = sum(kernel.stats.cache_hits.values())
    started = time.perf_counter()
    _first_call(kernel, lambda: known_answer.check_known_answer(
        backend.scan, f"numba backend: the {path} path", "please report this with your CPU model and Numba version"
    ))  # fmt: skip
    seconds = time.perf_counter() - started
    from_cache = sum(kernel.stats.cache_hits.values()) > hits_before
    return seconds, from_cache


def _check_options(path: str, lanes: int | None, parallel: bool) -> None:
    if path not in CHOICES:
        raise ConfigError(f"unknown numba code path {path!r} (choose from {', '.join(CHOICES)})")
    if lanes is not None and (isinstance(lanes, bool) or lanes not in LANE_CHOICES):
        raise ConfigError(f"numba lanes must be one of {', '.join(map(str, LANE_CHOICES))}, got {lanes!r}")
    if not isinstance(parallel, bool):
        raise ConfigError(f"numba parallel must be true or false, got {parallel!r}")


def _open(*, path: str = "auto", lanes: int | None = None, parallel: bool = False, **_options: Any) -> NumbaBackend:
    """Open the numba backend on ``path`` (auto, shani or lanes).

    Args:
        path: the code path; ``auto`` takes the fastest measured here.
        lanes: nonces per SIMD vector on the lanes path (4, 8, 16 or 32); unset, the
            fastest measured here.
        parallel: split each scan over Numba's threads (prange) instead of relying on
            one engine thread per core.
    """
    _check_options(path, lanes, parallel)
    _kernels()
    if path == "auto":
        path, lanes = auto_config(lanes)
    elif path == "lanes" and lanes is None:
        lanes = fastest_lanes()
    if path not in supported_paths():
        raise BackendUnavailable(
            "numba backend: the shani path needs the SHA extensions (SHA-NI), which LLVM does not "
            "target here (the CPU lacks them, or NUMBA_CPU_FEATURES leaves them out); fix: use path auto or lanes"
        )
    lanes = lanes or DEFAULT_LANES
    _ready(path, lanes, parallel)
    return NumbaBackend(path, lanes, parallel)


def _probe() -> BackendInfo:
    _kernels()  # BackendUnavailable here when Numba is missing
    import numba

    try:
        choice = path_choice()
        path, lanes = config(choice.chosen)
        seconds, from_cache = _ready(path, lanes, False)
    except BackendError as exc:  # a failed known answer: listed as unavailable, with why
        return BackendInfo("numba", False, str(exc))
    how = "loaded from the disk cache" if from_cache else "compiled (cached on disk for next time)"
    measured = "cached" if choice.cached else "measured now"
    return BackendInfo(
        "numba",
        True,
        f"Numba {numba.__version__}; code paths here: {choice.describe()} (auto: {choice.chosen}, {measured}); "
        f"kernels {how} in {seconds:.1f} s",
        extra={
            "paths": supported_paths(),
            "auto": path,
            "path_choice": choice.to_json(),
            "lanes": lanes if path == "lanes" else None,  # shani runs no lanes
            "numba": numba.__version__,
            "compile_seconds": round(seconds, 3),
            "from_cache": from_cache,
        },
    )


register("numba", _open, _probe, "Numba (LLVM) on the CPU: SHA-NI or SIMD lanes, the fastest measured",
         rate=backend_rate)  # fmt: skip
