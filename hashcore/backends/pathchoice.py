"""The measured choice of a backend's code path, made once per machine and cached.

Which path is fastest differs between CPU generations by up to 2x (SHA-NI against
AVX-512 lanes), so ``path="auto"`` never assumes: each backend with several paths (C:
avx512, avx2, shani, scalar; Numba: shani, lanes; OpenCL on PoCL: x86sha, portable)
hands :func:`choose` its paths and a way to run them, and gets back every path's rate and the
winner.

The measurement: each path is calibrated to a short slice (the backend's budget, about
two seconds, split over ``ROUNDS`` rounds and every path), then the slices run in
rounds, interleaved and rotated so that a busy neighbour hurts every path alike; each
path's rate is the median of its slices. A yardstick runs in every round too: hashlib's
SHA-256 compressions per second on one core. Backends measured at different times
(a neighbour busy for one, idle for the other) are compared by their rates over the
yardstick of their own measurement, not by raw rates. Measurements of different
backends never overlap (one lock), so they do not disturb each other.

A measurement also records the share of its cores it got (:mod:`cpushare`). Below its
threshold other programs took the cores and every rate reads low: such a choice holds
for this process only and is not cached.

The result is cached in ``path-choice.json`` beside the OpenCL tune cache (see
:func:`cache_dir`), one entry per backend, stored with the key it holds for: the CPU
(model, family, the flags that decide code paths), the build (hashcore's version and a
hash of the compiled module or kernel sources) and library versions. A different key
measures again and replaces the entry; an unreadable file is logged and measured over.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashcore.backends import cachefile, cpushare

log = logging.getLogger("hashcore.backends.pathchoice")

CACHE_NAME = "path-choice.json"
WHAT = "path-choice cache"
#: No device this measures comes near a petahash a second: a cached rate past it is damage.
MAX_RATE_HS = 1e15
#: Bumped when the file's layout or the measurement method changes.
FORMAT = 2
#: Seconds of measuring per backend, all its paths together.
BUDGET_SECONDS = 2.0
#: Slices per path; the median of them is the path's rate.
ROUNDS = 5
#: CPU flags that decide which code paths exist or how compilers schedule them.
RELEVANT_FLAGS = (
    "ssse3", "sse4_1", "avx", "avx2", "bmi2", "sha_ni", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    "avx512vbmi", "avx512_vbmi2", "gfni", "vaes", "amx_tile", "avx512_fp16",
)  # fmt: skip

#: ``(path, nonces) -> nonces hashed``: one scan of a path, timed by the caller.
Runner = Callable[[str, int], int]
#: Readies every path (compiles, checks, tunes) and returns the runner; called only
#: when a measurement is needed, so a cache hit costs no compile or tune.
Prepare = Callable[[], Runner]


def cache_file() -> Path:
    return cachefile.cache_dir() / CACHE_NAME


@functools.cache
def cpu_identity() -> dict[str, str]:
    """What identifies this CPU for the choice: vendor, family, model, stepping, model
    name, the relevant flags, the machine type and the core count."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor's block describes them all
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    return {
        "model_name": fields.get("model name") or platform.processor() or platform.machine() or "unknown",
        "vendor": fields.get("vendor_id", ""),
        "family": fields.get("cpu family", ""),
        "model": fields.get("model", ""),
        "stepping": fields.get("stepping", ""),
        "flags": " ".join(f for f in RELEVANT_FLAGS if f in flags),
        "machine": platform.machine(),
        "cores": str(os.cpu_count() or 1),
    }


def cpu_label() -> str:
    """The CPU as figures should name it: model name, family/model, the SIMD it has."""
    cpu = cpu_identity()
    where = f"family {cpu['family']} model {cpu['model']}, " if cpu["family"] else ""
    return f"{cpu['model_name']} ({where}{cpu['cores']} cores; {cpu['flags'] or 'no SIMD flags read'})"


@dataclass(frozen=True, slots=True)
class Choice:
    """The measured choice for one backend (or one OpenCL device).

    Attributes:
        entry: the cache entry's name (``c``, ``numba``, ``opencl <device>``).
        chosen: the fastest path.
        rates_hs: every measured path's median rate, nonces per second.
        cores: cores behind each rate: 1 (one thread) or the device's compute units.
        seconds: how long the measurement took.
        measured_at: when (Unix time).
        yardstick_hs: hashlib SHA-256 compressions per second on one core, measured
            in the same rounds (0 where unknown).
        key: what the measurement holds for.
        cached: True when read from the file rather than measured by this process.
        cpu_share: the share of its cores the measurement got (see ``cpushare``);
            None where the work ran off the CPU (a GPU) or was not recorded.
    """

    entry: str
    chosen: str
    rates_hs: dict[str, float]
    cores: int
    seconds: float
    measured_at: float
    yardstick_hs: float = 0.0
    key: dict[str, str] = field(default_factory=dict)
    cached: bool = False
    cpu_share: float | None = None

    @property
    def best_hs(self) -> float:
        return self.rates_hs[self.chosen]

    @property
    def busy(self) -> bool:
        """Measured while other programs took the cores: the rates read low."""
        return self.cpu_share is not None and self.cpu_share < cpushare.threshold()

    @property
    def ratio(self) -> float:
        """The best rate over the yardstick: comparable between measurements (0 if unknown)."""
        return self.best_hs / self.yardstick_hs if self.yardstick_hs > 0 else 0.0

    def describe(self) -> str:
        """``avx512 24.6, shani 22.0 MH/s per thread`` (fastest first)."""
        unit = "per thread" if self.cores == 1 else f"on {self.cores} cores"
        ranked = sorted(self.rates_hs.items(), key=lambda item: -item[1])
        busy = f" (measured while busy: {self.cpu_share:.0%} of the cores; not cached)" if self.busy else ""
        return ", ".join(f"{p} {r / 1e6:.1f}" for p, r in ranked) + f" MH/s {unit}{busy}"

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "rates_hs": {p: round(r, 1) for p, r in self.rates_hs.items()},
            "cores": self.cores,
            "seconds": self.seconds,
            "measured_at": self.measured_at,
            "yardstick_hs": round(self.yardstick_hs, 1),
            "cpu_share": None if self.cpu_share is None else round(self.cpu_share, 3),
            "cached": self.cached,
            "key": self.key,
            "cache_file": str(cache_file()),
        }


# --- measuring ----------------------------------------------------------------------------


def _calibrate(run: Runner, path: str, slice_seconds: float) -> int:
    """Nonces that take about ``slice_seconds`` on ``path`` (the first runs warm it up)."""
    count = 1 << 12
    while True:
        began = time.perf_counter()
        done = run(path, count)
        elapsed = time.perf_counter() - began
        if elapsed >= slice_seconds / 4 or count >= 1 << 30:
            return max(1 << 10, min(1 << 31, int(done / max(elapsed, 1e-9) * slice_seconds)))
        count *= 4


_YARDSTICK_BUFFER = bytes(4 << 20)


def yardstick() -> float:
    """hashlib (OpenSSL) SHA-256 compressions per second on one core, over 4 MiB."""
    began = time.perf_counter()
    hashlib.sha256(_YARDSTICK_BUFFER).digest()
    return len(_YARDSTICK_BUFFER) / 64 / max(time.perf_counter() - began, 1e-9)


def measure(
    paths: Sequence[str],
    run: Runner,
    budget_seconds: float = BUDGET_SECONDS,
    rounds: int = ROUNDS,
    threads: int | None = 1,
    in_caller: bool = True,
) -> tuple[dict[str, float], float, float | None]:
    """Every path's median rate (nonces per second) over ``rounds`` interleaved slices,
    the median yardstick (:func:`yardstick`) of the same rounds, and the share of its
    ``threads`` cores the timed slices got (None when ``threads`` is None: the work ran
    off the CPU; ``in_caller``: the scans run in the calling thread, not in workers)."""
    paths = list(paths)
    slice_seconds = budget_seconds / (rounds * len(paths))
    counts = {p: _calibrate(run, p, slice_seconds) for p in paths}
    samples: dict[str, list[float]] = {p: [] for p in paths}
    sticks = []
    cpu = cpushare.clock(in_caller)
    wall_total = cpu_total = 0.0
    for r in range(rounds):
        sticks.append(yardstick())
        # Rotated, so no path always runs right after the same one.
        for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
            began, cpu_began = time.perf_counter(), cpu()
            done = run(path, counts[path])
            wall = max(time.perf_counter() - began, 1e-9)
            wall_total += wall
            cpu_total += cpu() - cpu_began
            samples[path].append(done / wall)
    share = cpushare.share(cpu_total, wall_total, threads) if threads else None
    return {p: statistics.median(s) for p, s in samples.items()}, statistics.median(sticks), share


# --- the cache ----------------------------------------------------------------------------

_lock = threading.RLock()
_memo: dict[str, Choice] = {}


def forget() -> None:
    """Drop what this process remembers (the file stays); the next choice reads it again."""
    with _lock:
        _memo.clear()


def discard() -> None:
    """Drop every cached choice, in this process and in the cache file, so that each
    backend measures its paths again: a measurement taken while the machine was busy
    would otherwise stand until the machine or the build changes."""
    with _lock:
        forget()
        cachefile.remove(cache_file(), WHAT)


def _read_file() -> dict[str, Any]:
    return _entries(cachefile.read(cache_file(), WHAT))


def _entries(data: Any) -> dict[str, Any]:
    """The entries of the file's JSON; none (logged) where it is no path-choice file of
    this format."""
    if data is None:
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        cachefile.warn_once(f"{WHAT} {cache_file()} is from another version or not one: ignored, measuring again")
        return {}
    return data["entries"]


def _number(raw: Any, field: str, low: float, high: float = math.inf) -> float:
    """``raw[field]``, a JSON number (not a boolean) from ``low`` to below ``high``."""
    value = raw[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < high:
        raise ValueError(f"{field} {value!r} is not a number from {low:g} to {high:g}")
    return float(value)


def _from_entry(name: str, raw: Any, key: dict[str, str], paths: Sequence[str]) -> Choice | None:
    """The cached choice when it holds for ``key`` and ``paths``; None (logged) otherwise."""
    where = f"the {name} entry of the {WHAT} {cache_file()}"
    if not isinstance(raw, dict):
        if raw is not None:
            cachefile.warn_once(f"{where} is not an object: ignored, measuring again")
        return None
    if raw.get("key") != key:
        stored = raw.get("key")
        old: dict[str, Any] = stored if isinstance(stored, dict) else {}
        changed = sorted(k for k in set(key) | set(old) if key.get(k) != old.get(k))
        log.info("%s: measured before for another machine or build (%s changed); measuring again",
                 name, ", ".join(changed))  # fmt: skip
        return None
    try:
        if not isinstance(raw["rates_hs"], dict) or sorted(raw["rates_hs"]) != sorted(paths):
            raise ValueError(f"its paths are not {', '.join(paths)}")
        rates = {str(p): _number(raw["rates_hs"], p, 1e-9, MAX_RATE_HS) for p in paths}
        chosen = raw["chosen"]
        if not isinstance(chosen, str) or chosen not in rates or rates[chosen] < max(rates.values()):
            raise ValueError(f"chosen {chosen!r} is not its fastest path")
        cores = _number(raw, "cores", 1, 1 << 16)
        # A share a hair over 1 is the clocks' jitter; a busy one was never to be cached.
        share = None if raw.get("cpu_share") is None else min(1.0, _number(raw, "cpu_share", 0, 1.05))
        if share is not None and share < cpushare.threshold():
            raise ValueError(f"it was measured while busy ({share:.0%} of the cores)")
        stick = _number(raw, "yardstick_hs", 0) if "yardstick_hs" in raw else 0.0
        return Choice(name, chosen, rates, int(cores), _number(raw, "seconds", 0),
                      _number(raw, "measured_at", 0), stick, key, cached=True, cpu_share=share)  # fmt: skip
    except (KeyError, ValueError) as exc:
        cachefile.warn_once(f"{where}: {exc}: ignored, measuring again")
        return None


def _write(choice: Choice) -> None:
    entry = {
        "chosen": choice.chosen,
        "rates_hs": choice.rates_hs,
        "cores": choice.cores,
        "seconds": choice.seconds,
        "measured_at": choice.measured_at,
        "yardstick_hs": choice.yardstick_hs,
        "cpu_share": choice.cpu_share,
        "key": choice.key,
    }
    cachefile.update(cache_file(), WHAT,
                     lambda data: {"format": FORMAT, "entries": {**_entries(data), choice.entry: entry}})  # fmt: skip


def cached(entry: str, paths: Sequence[str], key: Mapping[str, str]) -> Choice | None:
    """The choice remembered or cached for ``key`` (and this CPU), without measuring;
    None if there is none."""
    key = {**cpu_identity(), **{str(k): str(v) for k, v in key.items()}}
    with _lock:
        known = _memo.get(entry)
        if known is not None and known.key == key and sorted(known.rates_hs) == sorted(paths):
            return known
        choice = _from_entry(entry, _read_file().get(entry), key, paths)
        if choice is not None:
            _memo[entry] = choice
        return choice


def choose(
    entry: str,
    paths: Sequence[str],
    prepare: Prepare,
    key: Mapping[str, str],
    *,
    cores: int = 1,
    threads: int | None = 1,
    in_caller: bool = True,
    budget_seconds: float = BUDGET_SECONDS,
) -> Choice:
    """The fastest of ``paths``: from this process's memory, else the cache file when it
    holds for ``key``, else measured now with ``run`` and cached.

    Args:
        entry: the cache entry (one per backend, or per device).
        paths: the paths to choose between (each one already checked to be correct).
        prepare: readies the paths and returns the runner (scans ``n`` nonces on a
            path, returns how many it hashed); called only when measuring.
        key: what the measurement holds for (CPU, build, library versions); the CPU's
            identity is added here.
        cores: cores behind each rate (1 for one thread; a PoCL device's compute units).
        threads / in_caller: CPU threads the paths keep busy, and whether the scans run
            in the calling thread (``cpushare``); threads None: off the CPU (a GPU).
        budget_seconds: the measurement's length, every path together.
    """
    if not paths:
        raise ValueError("no code path to choose from")
    full_key = {**cpu_identity(), **{str(k): str(v) for k, v in key.items()}}
    with _lock:
        known = cached(entry, paths, key)
        if known is not None:
            return known
        # A warning, so a first start that pauses for seconds says why.
        log.warning("%s: measuring code paths %s once for this machine (about %.0f s)",
                    entry, ", ".join(paths), budget_seconds)  # fmt: skip
        run = prepare()
        began = time.perf_counter()
        rates, stick, share = measure(paths, run, budget_seconds, threads=threads, in_caller=in_caller)
        chosen = max(paths, key=rates.__getitem__)
        elapsed = round(time.perf_counter() - began, 3)
        choice = Choice(entry, chosen, rates, cores, elapsed, time.time(), stick, full_key, cpu_share=share)
        log.info("%s: %s; auto takes %s", entry, choice.describe(), chosen)
        if not choice.busy:
            _write(choice)
        else:
            log.warning("%s: the measurement got %.0f%% of its %d core(s), other programs busy: rates read low, "
                        "held for this run only", entry, 100 * (share or 0), threads or 1)  # fmt: skip
        _memo[entry] = choice
        return choice
