"""Getting one OpenCL device ready: the known answer each build must give, the auto-tune
of work size, nonces per work item and vector width (cached on disk), and the measured
choice between the x86sha and portable paths where both run.

Each device, before real work: the kernels are built (a failure raises
BackendUnavailable with the build log), a known answer is checked (hash kernel against
hashlib; the genesis nonce found by the scan kernel; an every-nonce range at the top of
the nonce space), and the settings are tuned once per device and driver.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hashcore.backends import cpushare, pathchoice, tuning
from hashcore.backends.base import ScanResult
from hashcore.backends.known_answer import GENESIS_HEADER, GENESIS_NONCE, genesis_work, wrong_answer
from hashcore.backends.opencl.devices import DeviceRef, load_pyopencl, x86sha_possible
from hashcore.backends.opencl.runner import DeviceRunner
from hashcore.backends.opencl.settings import (
    MAX_LAUNCH,
    WIDTHS,
    Settings,
    cached_settings,
    default_settings,
    grid_name,
    launch_nonces,
    tune_key,
    write_tune_cache,
)
from hashcore.errors import BackendUnavailable, ConfigError
from hashcore.work import MAX_NONCE, MAX_TARGET, Work

log = logging.getLogger("hashcore.backends.opencl")

#: The genesis scan of the known answer: nonces around the genesis nonce, results asked.
_GENESIS_SPAN = 1000
_GENESIS_MAX_RESULTS = 8


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def known_answer(dev: DeviceRunner, settings: Settings) -> None:
    """Raise BackendUnavailable unless ``dev`` hashes and scans the genesis block right."""
    genesis = genesis_work()
    base = GENESIS_NONCE - 24
    digests = dev.hashes(genesis, base, 48, settings)
    wrong = [base + i for i, d in enumerate(digests) if d != _sha256d(genesis.header(base + i))]
    problems = []
    if wrong:
        problems.append(f"hash kernel wrong for {len(wrong)} of 48 nonces")
    check = replace(settings, launch_nonces=settings.granule)

    def scan(work: Work, start: int, count: int, max_results: int) -> ScanResult:
        return ScanResult(*dev.scan(work, start, count, max_results, check))

    missed = wrong_answer(scan, _GENESIS_SPAN, _GENESIS_MAX_RESULTS)
    if missed is not None:
        problems.append(f"scan found {missed.nonces[:4]} instead of the genesis nonce")
    every = Work.from_header(GENESIS_HEADER[:76], MAX_TARGET)
    found, _ = dev.scan(every, MAX_NONCE - 99, 100, 200, check)
    if found != list(range(MAX_NONCE - 99, MAX_NONCE + 1)):
        problems.append(f"scan of an every-nonce target found {len(found)} of the last 100 nonces")
    if problems:
        raise BackendUnavailable(
            f"OpenCL backend: device {dev.ref.describe()} failed its known-answer test on the {settings.path} path "
            f"({'; '.join(problems)}); do not mine with it; fix: update the OpenCL driver or choose another device"
        )


def autotune(dev: DeviceRunner, path: str, fixed: dict[str, Any] | None = None) -> Settings:
    """Time the grid of settings for ``path`` on ``dev`` one dimension at a time (vector
    width, then nonces per item, then work-group size) and keep the fastest; settings
    in ``fixed`` are held."""
    fixed = fixed or {}
    grid = tuning.OPENCL_TUNE_GRID[grid_name(dev.ref, path)]
    best = replace(default_settings(dev.ref, path), **fixed)
    rates: dict[Settings, float] = {}
    for field, values in (
        ("width", grid["widths"]),
        ("nonces_per_item", grid["nonces_per_item"]),
        ("local_size", grid["local_sizes"]),
    ):
        for value in [fixed[field]] if field in fixed else values:
            change: dict[str, Any] = {field: value}
            candidate = replace(best, **change)
            if candidate in rates:
                continue
            try:
                limit = dev.max_local_size(path, candidate.width)  # builds the width first
            except BackendUnavailable as exc:
                if field in fixed:
                    raise
                # A width this compiler does not build (32 lanes need clang) is left out;
                # the start width was built and checked before the tune.
                log.info("OpenCL tune %s: width %d left out: %s", dev.ref.id, candidate.width,
                         str(exc).splitlines()[0])  # fmt: skip
                continue
            if candidate.local_size > limit:
                continue
            rates[candidate] = dev.rate(candidate, tuning.OPENCL_TUNE_SECONDS)
            log.debug("OpenCL tune %s: %s -> %.2f MH/s", dev.ref.id, candidate.describe(), rates[candidate] / 1e6)
            best = max(rates, key=rates.__getitem__)
    if best not in rates:  # every candidate was too large a work group for this kernel
        best = replace(best, local_size=min(best.local_size, dev.max_local_size(path, best.width)))
        rates[best] = dev.rate(best, tuning.OPENCL_TUNE_SECONDS)
    return replace(best, rate_hs=rates[best], tuned=True)


def ready_path(dev: DeviceRunner, path: str, tune: bool, fixed: dict[str, Any]) -> Settings:
    """The settings of ``path`` on ``dev``, its known answer checked: tuned (or the tune
    read from the cache), or the defaults with ``fixed`` applied when not tuning."""
    if "width" in fixed and fixed["width"] not in WIDTHS[path]:
        raise ConfigError(f"OpenCL width {fixed['width']} is not one the {path} kernels take ({WIDTHS[path]})")
    start = replace(default_settings(dev.ref, path), **fixed)
    known_answer(dev, start)  # builds first: a build error surfaces here, with its log
    if not tune or len(fixed) == 3:
        return replace(start, rate_hs=dev.rate(start, tuning.OPENCL_TUNE_SECONDS))
    key = tune_key(dev.ref, path, dev.source, dev.build_options)
    settings = cached_settings(dev.ref, path, dev.source, dev.build_options) if not fixed else None
    if settings is not None and settings.local_size > dev.max_local_size(path, settings.width):
        log.warning("OpenCL %s: the cached %s tune's work group of %d is more than this driver runs; tuning again",
                    dev.ref.id, path, settings.local_size)  # fmt: skip
        settings = None
    if settings is None:
        began, since = time.perf_counter(), (dev.timed_wall, dev.timed_cpu)
        settings = autotune(dev, path, fixed)
        log.info("OpenCL %s tuned in %.1f s: %s", dev.ref.id, time.perf_counter() - began, settings.describe())
        share = dev.cpu_share(since)
        if share is not None and share < cpushare.threshold():
            # Every candidate ran slow and uneven: keep the tune for this run, tune again next start.
            log.warning("OpenCL %s: the tune got %.0f%% of the device's %d cores: other programs are busy; "
                        "its settings hold for this run only", dev.ref.id, 100 * share,
                        dev.ref.compute_units)  # fmt: skip
        elif not fixed:
            write_tune_cache(key, dev.ref, settings)
    if (settings.width, settings.nonces_per_item, settings.local_size) != (start.width, start.nonces_per_item,
                                                                           start.local_size):
        known_answer(dev, settings)  # another width is another build, another grid another split: check them
    return settings


def prepare_device(dev: DeviceRunner, path: str, tune: bool, fixed: dict[str, Any], launch_seconds: float) -> Settings:
    """Choose the path, build, check the known answer, and tune (or load the tune)."""
    ref = dev.ref
    if path == "x86sha" and not x86sha_possible(ref):
        raise BackendUnavailable(
            f"OpenCL backend: the x86sha path needs PoCL's CPU device on a CPU with the SHA extensions; "
            f"{ref.describe()} is not one; fix: use path auto or portable"
        )
    if path != "auto":
        settings = ready_path(dev, path, tune, fixed)
    else:
        candidates = auto_paths(ref, fixed)
        ready: dict[str, Settings] = {}
        for candidate in candidates:
            try:
                ready[candidate] = ready_path(dev, candidate, tune, fixed)
            except BackendUnavailable as exc:
                if candidate == candidates[-1] and not ready:
                    raise
                log.warning("OpenCL %s: the %s path is unusable (%s)", ref.id, candidate, exc)
        if len(ready) == 1:
            settings = next(iter(ready.values()))
        else:
            choice = path_choice(dev, ready)
            settings = replace(ready[choice.chosen], rate_hs=choice.best_hs)
    return replace(settings, launch_nonces=launch_nonces(settings, launch_seconds))


def auto_paths(ref: DeviceRef, fixed: dict[str, Any]) -> list[str]:
    """The paths ``auto`` chooses between on a device (those taking a fixed width)."""
    paths = ["x86sha", "portable"] if x86sha_possible(ref) else ["portable"]
    usable = [p for p in paths if "width" not in fixed or fixed["width"] in WIDTHS[p]]
    return usable or paths


def _choice_entry(ref: DeviceRef) -> str:
    return f"opencl {ref.platform} / {ref.name}"


def _choice_key(
    ref: DeviceRef, source: str, settings: dict[str, Settings], build_options: Sequence[str]
) -> dict[str, str]:
    """What the path choice of one device holds for: the device and driver, the kernel
    source and options, and the settings each path was measured at."""
    cl = load_pyopencl()
    return {
        "platform": f"{ref.platform} {ref.platform_version}",
        "device": ref.name,
        "driver": ref.driver,
        "pyopencl": str(getattr(cl, "VERSION_TEXT", "")),
        "source": hashlib.sha256(source.encode()).hexdigest()[:16],
        "build_options": " ".join(build_options),
        **{f"settings_{p}": f"w{s.width} n{s.nonces_per_item} l{s.local_size}" for p, s in settings.items()},
    }


def path_choice(dev: DeviceRunner, ready: dict[str, Settings]) -> pathchoice.Choice:
    """The faster of the ready paths on ``dev``, timed on all its cores (cached)."""

    def run(path: str, count: int) -> int:
        settings = ready[path]
        count = min(MAX_LAUNCH // settings.granule, max(1, -(-count // settings.granule))) * settings.granule
        dev.enqueue(0, 0, count, settings).wait()
        return count

    def prepare() -> pathchoice.Runner:
        dev.set_work(Work.from_header(bytes(range(76)), 1))  # target 1: nothing found, full scans
        return run

    key = _choice_key(dev.ref, dev.source, ready, dev.build_options)
    return pathchoice.choose(_choice_entry(dev.ref), list(ready), prepare, key, cores=dev.ref.compute_units,
                             threads=dev.cpu_threads, in_caller=False)  # fmt: skip


def known_choice(ref: DeviceRef, source: str) -> pathchoice.Choice | None:
    """The cached path choice of a device, found without touching it (tune and choice
    both cached); None when it would take a build, a tune or a measurement."""
    ready = {}
    for path in auto_paths(ref, {}):
        tuned = cached_settings(ref, path, source)
        if tuned is None:
            return None
        ready[path] = tuned
    if len(ready) == 1:
        return None
    return pathchoice.cached(_choice_entry(ref), list(ready), _choice_key(ref, source, ready, ()))
