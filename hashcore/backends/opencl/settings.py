"""How one OpenCL device runs the kernels (:class:`Settings`), the defaults per kind of
device, and the on-disk cache of tuned settings (``~/.cache/hashcore/opencl-tune.json``),
keyed by device, driver, kernel source, path and tuning grid."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hashcore.backends import cachefile, tuning
from hashcore.backends.opencl.devices import DeviceRef
from hashcore.backends.pathchoice import MAX_RATE_HS

log = logging.getLogger("hashcore.backends.opencl")
WHAT = "OpenCL tune cache"

#: The code paths, and what ``path=`` takes.
PATHS: tuple[str, ...] = ("x86sha", "portable")
CHOICES: tuple[str, ...] = ("auto", *PATHS)
#: Widths each path's kernels are written for: vector lanes, or SHA streams in flight.
WIDTHS: dict[str, tuple[int, ...]] = {"portable": (1, 2, 4, 8, 16, 32), "x86sha": (2, 3, 4, 5, 6, 7, 8)}
#: Launches at most this many nonces, so offsets inside one launch fit in 32 bits.
MAX_LAUNCH = 1 << 31


@dataclass(frozen=True, slots=True)
class Settings:
    """How one device runs the kernels.

    Attributes:
        path: portable or x86sha.
        width: nonces side by side: vector lanes (portable) or nonces in flight (x86sha).
        nonces_per_item: nonces each work item checks.
        local_size: work-group size.
        rate_hs: nonces per second measured by the tune (0 when not tuned).
        launch_nonces: nonces per launch (about ``launch_seconds`` at ``rate_hs``).
        tuned: whether these came from a tune (else defaults or explicit options).
    """

    path: str
    width: int
    nonces_per_item: int
    local_size: int
    rate_hs: float = 0.0
    launch_nonces: int = 1 << 20
    tuned: bool = False

    @property
    def granule(self) -> int:
        """Nonces in one work group."""
        return self.local_size * self.nonces_per_item

    def describe(self) -> str:
        width = f" x{self.width}"
        rate = f", {self.rate_hs / 1e6:.1f} MH/s tuned" if self.tuned else ""
        return (
            f"{self.path}{width}, {self.nonces_per_item} nonces/item, work group {self.local_size}, "
            f"{self.launch_nonces} nonces/launch{rate}"
        )


def tune_file() -> Path:
    return cachefile.cache_dir() / "opencl-tune.json"


#: Part of every tune's key, changed with the way tunes are taken: tunes from before a CPU
#: device's busy check (version 2) may have been taken beside busy programs, so they are
#: not read.
TUNE_METHOD = "2"


def tune_key(ref: DeviceRef, path: str, source: str, build_options: Sequence[str]) -> str:
    """Tuning results hold for one device, driver, kernel source, path and grid, taken
    the current way (``TUNE_METHOD``)."""
    grid = tuning.OPENCL_TUNE_GRID[grid_name(ref, path)]
    parts = [
        f"method {TUNE_METHOD}",
        ref.platform,
        ref.platform_version,
        ref.name,
        ref.vendor,
        ref.driver,
        path,
        hashlib.sha256(source.encode()).hexdigest(),
        json.dumps(grid, sort_keys=True),
        *build_options,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _tune_entries(data: Any) -> dict[str, Any]:
    if data is not None and not isinstance(data, dict):
        cachefile.warn_once(f"{WHAT} {tune_file()} is not a JSON object: ignored, tuning again")
    return data if isinstance(data, dict) else {}


def write_tune_cache(key: str, ref: DeviceRef, settings: Settings) -> None:
    entry = {"device": ref.describe(), "driver": ref.driver, "settings": asdict(settings), "when": time.time()}
    cachefile.update(tune_file(), WHAT, lambda data: {**_tune_entries(data), key: entry})


def discard_tunes() -> None:
    """Drop every cached tune, so that each device tunes again at its next open."""
    cachefile.remove(tune_file(), WHAT)


def cached_settings(ref: DeviceRef, path: str, source: str, build_options: Sequence[str] = ()) -> Settings | None:
    """The tune of ``path`` on ``ref`` read from the cache; None (logged when the entry
    is there but unusable) where there is none."""
    entry = _tune_entries(cachefile.read(tune_file(), WHAT)).get(tune_key(ref, path, source, build_options))
    if entry is None:
        return None
    try:
        if not isinstance(entry["settings"], dict) or set(entry["settings"]) != set(Settings.__dataclass_fields__):
            raise KeyError("settings")
        settings = Settings(**entry["settings"])
        problem = settings_problem(settings, ref, path)
    except (KeyError, TypeError):
        problem = "not a tune entry"
    if problem:
        cachefile.warn_once(f"the {path} tune of OpenCL device {ref.id} in the {WHAT} {tune_file()}: {problem}: "
                            "ignored, tuning again")  # fmt: skip
        return None
    return settings


def settings_problem(settings: Settings, ref: DeviceRef, path: str) -> str | None:
    """What makes a cached tune unusable for ``path`` on ``ref`` (None when nothing). A
    tune only ever takes values from its grid (which is part of its key), and no smaller
    work group than the grid's where the kernel allows less: a file someone edited must
    not build an unknown width, ask for a work group the driver cannot run, or launch
    billions of nonces at a time."""
    grid = tuning.OPENCL_TUNE_GRID[grid_name(ref, path)]
    width, per_item, local = grid["start"]
    numbers = (settings.width, settings.nonces_per_item, settings.local_size, settings.launch_nonces)
    if settings.path != path or not all(type(v) is int for v in numbers) or settings.tuned is not True:
        return "fields of the wrong kind"
    if settings.width not in {width, *grid["widths"]}:
        return f"width {settings.width} is not in the tune grid"
    if settings.nonces_per_item not in {per_item, *grid["nonces_per_item"]}:
        return f"{settings.nonces_per_item} nonces per item is not in the tune grid"
    # Below the grid: where the kernel runs no grid work group, the tune takes its limit.
    below_grid = 1 <= settings.local_size < min(grid["local_sizes"])
    if settings.local_size not in {local, *grid["local_sizes"]} and not below_grid:
        return f"work group {settings.local_size} is not in the tune grid"
    if type(settings.rate_hs) not in (int, float) or not 0 <= settings.rate_hs < MAX_RATE_HS:
        return f"rate {settings.rate_hs!r}"
    return None


def grid_name(ref: DeviceRef, path: str) -> str:
    return "x86sha" if path == "x86sha" else ("cpu" if ref.kind == "CPU" else "gpu")


def default_settings(ref: DeviceRef, path: str) -> Settings:
    width, per_item, local = tuning.OPENCL_TUNE_GRID[grid_name(ref, path)]["start"]
    return Settings(path, width, per_item, local)


def launch_nonces(settings: Settings, launch_seconds: float) -> int:
    """Nonces per launch: about ``launch_seconds`` at the tuned rate, whole work groups."""
    wanted = settings.rate_hs * launch_seconds if settings.rate_hs > 0 else 1 << 20
    granules = max(1, math.ceil(wanted / settings.granule))
    return int(min(granules * settings.granule, MAX_LAUNCH // settings.granule * settings.granule))
