"""How one OpenCL device runs the kernels (:class:`Settings`), the defaults per kind of
device, and the on-disk cache of tuned settings (``~/.cache/hashcore/opencl-tune.json``),
keyed by device, driver, kernel source, path and tuning grid."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hashcore.backends import tuning
from hashcore.backends.opencl.devices import DeviceRef
from hashcore.backends.pathchoice import cache_dir, read_cache

log = logging.getLogger("hashcore.backends.opencl")

#: The code paths, and what ``path=`` takes.
PATHS: tuple[str, ...] = ("x86sha", "portable")
CHOICES: tuple[str, ...] = ("auto", *PATHS)
#: Widths each path's kernels are written for: vector lanes, or SHA streams in flight.
WIDTHS: dict[str, tuple[int, ...]] = {"portable": (1, 2, 4, 8, 16, 32), "x86sha": (2, 3, 4, 5, 6, 7, 8)}
#: Launches at most this many nonces, so offsets inside one launch fit in 32 bits.
MAX_LAUNCH = 1 << 31
#: Bounds of a tune read back from the cache (the tune grids stay far inside them).
MAX_PER_ITEM = 1 << 20
MAX_LOCAL_SIZE = 4096


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
    return cache_dir() / "opencl-tune.json"


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


def _read_tune_cache() -> dict[str, Any]:
    data = read_cache(tune_file(), "OpenCL tune cache")
    return data if isinstance(data, dict) else {}


def write_tune_cache(key: str, ref: DeviceRef, settings: Settings) -> None:
    path = tune_file()
    data = _read_tune_cache()
    data[key] = {"device": ref.describe(), "driver": ref.driver, "settings": asdict(settings), "when": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot save OpenCL tuning to %s (%s); the next start tunes again", path, exc)


def cached_settings(ref: DeviceRef, path: str, source: str, build_options: Sequence[str] = ()) -> Settings | None:
    entry = _read_tune_cache().get(tune_key(ref, path, source, build_options))
    if not isinstance(entry, dict):
        return None
    try:
        settings = Settings(**entry["settings"])
        problem = settings_problem(settings, path)
    except (KeyError, TypeError):
        problem = "not a tune entry"
    if problem:
        log.warning("ignoring the cached OpenCL tune of %s (%s): %s; tuning again", ref.id, path, problem)
        return None
    return settings


def settings_problem(settings: Settings, path: str) -> str | None:
    """What makes ``settings`` unusable for ``path`` (None when nothing): a tune read
    back from a file someone edited must not build an unknown width or launch past the
    32-bit nonce offsets."""
    values = (settings.width, settings.nonces_per_item, settings.local_size, settings.launch_nonces)
    if settings.path != path or not all(type(v) is int for v in values) or not isinstance(settings.tuned, bool):
        return "fields of the wrong kind"
    if settings.width not in WIDTHS[path]:
        return f"width {settings.width} is not one the {path} kernels take"
    if not (1 <= settings.nonces_per_item <= MAX_PER_ITEM and 1 <= settings.local_size <= MAX_LOCAL_SIZE):
        return f"{settings.nonces_per_item} nonces per item in work groups of {settings.local_size}"
    if not 1 <= settings.granule <= MAX_LAUNCH:
        return "a work group spans more nonces than a launch"
    if not (isinstance(settings.rate_hs, int | float) and 0 <= settings.rate_hs < math.inf):
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
