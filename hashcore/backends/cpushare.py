"""How much of its cores a measurement got: the busy check of path choices and tunes.

A rate measured while other programs held the cores reads low, and a cached low rate
would stand until the machine or the build changes. CPU time over wall time shows it:
the measuring thread's own clock where the scan runs in the caller (C, Numba), the
whole process's where workers of this process do the hashing (PoCL). The share is
taken against the cores this process may really use: its CPU affinity and a cgroup
CPU quota (a container given 2 of 16 cores) cap what it can get.

Idle, one thread gets 0.99-1.00 of its core and a 2-unit PoCL device 0.98-0.99 of its
two; beside one busy program on 2 cores they got 0.54-0.63. Below the threshold
(``HASHCORE_BUSY_SHARE``, default 0.85; 0 caches every measurement, as a machine that
is always shared may want) a measurement holds for its run only.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("hashcore.backends.cpushare")

DEFAULT_THRESHOLD = 0.85
#: cgroup v2's CPU quota of this process's group ("max 100000": no quota).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def threshold() -> float:
    """The least share a measurement must get to be cached: ``HASHCORE_BUSY_SHARE`` when it
    is a number from 0 to 1, else (logged) the default."""
    raw = os.environ.get("HASHCORE_BUSY_SHARE")
    if raw is None:
        return DEFAULT_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        log.warning("HASHCORE_BUSY_SHARE=%r is not a number from 0 to 1; using %s", raw, DEFAULT_THRESHOLD)
        return DEFAULT_THRESHOLD
    return value


def _quota(cpu_max: Path) -> float | None:
    try:
        quota, period = cpu_max.read_text(encoding="utf-8").split()[:2]
        return None if quota == "max" else max(int(quota) / int(period), 0.01)
    except (OSError, ValueError):
        return None


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> float:
    """The CPUs this process can keep busy: the fewest of the machine's, its affinity's
    and its cgroup quota's."""
    cpus: float = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cpus = min(cpus, len(os.sched_getaffinity(0)) or cpus)
    quota = _quota(cpu_max)
    return min(cpus, quota) if quota is not None else cpus


def clock(in_caller: bool) -> Callable[[], float]:
    """This thread's CPU clock when the scan runs in the calling thread, else the
    process's (workers of this process do the hashing)."""
    return time.thread_time if in_caller else time.process_time


def share(cpu_seconds: float, wall_seconds: float, threads: int) -> float:
    """The share of ``threads`` cores (no more than this process can use) that
    ``cpu_seconds`` of CPU time over ``wall_seconds`` amount to."""
    cores = min(float(threads), usable_cpus())
    # The two clocks tick apart by a hair: all of the cores is the most there is.
    return min(1.0, cpu_seconds / max(wall_seconds * cores, 1e-9))
