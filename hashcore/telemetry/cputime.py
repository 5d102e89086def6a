"""CPU time of this process, its worker processes, or chosen threads (psutil).

Used by the estimate (CPU time × watts per core) and to split one package counter
between CPU backends by the CPU time each used. Times are integer microseconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

import psutil

from hashcore.errors import TelemetryError

US_PER_S = 1_000_000


def _us(seconds: float) -> int:
    return round(seconds * US_PER_S)


_tracked: dict[int, psutil.Process] = {}
_tracked_lock = threading.Lock()


def track_child(pid: int) -> None:
    """Count a worker process's CPU time as this process's while it runs.

    Worker processes are named here by whoever starts them, rather than found by
    scanning /proc: a scan reads a file per process on the machine, and each read can
    wait out a GIL-holding thread's whole switch interval, stalling the event loop.
    """
    with _tracked_lock:
        _tracked[pid] = psutil.Process(pid)


def untrack_child(pid: int) -> None:
    """Stop counting a worker once it has been reaped (its time is then in os.times())."""
    with _tracked_lock:
        _tracked.pop(pid, None)


def process_tree_cpu_us(pid: int | None = None) -> int:
    """User + system time of a process (every thread) and its children, in microseconds.

    For this process: its own time and its reaped children's (one ``times()`` call) plus
    the live worker processes registered with :func:`track_child`; backends that hold
    the GIL run in such workers, so their time counts as ours. For another process: its
    time and its descendants' from psutil."""
    try:
        if pid is None or pid == os.getpid():
            own = os.times()
            total = _us(own.user + own.system + own.children_user + own.children_system)
            with _tracked_lock:
                workers = list(_tracked.values())
        else:
            process = psutil.Process(pid)
            times = process.cpu_times()
            total = _us(times.user + times.system + times.children_user + times.children_system)
            workers = process.children(recursive=True)
        for worker in workers:
            try:
                ct = worker.cpu_times()
            except psutil.Error:
                continue  # exited: counted once reaped
            total += _us(ct.user + ct.system)
        return total
    except psutil.Error as exc:
        raise TelemetryError(f"cannot read CPU time of process {pid or 'self'}: {exc}") from exc


def threads_cpu_us(thread_ids: Iterable[int]) -> int:
    """User + system time of some threads of this process (``threading.get_native_id()``
    values), in microseconds; threads that have ended count as zero."""
    wanted = set(thread_ids)
    try:
        threads = psutil.Process().threads()
    except psutil.Error as exc:
        raise TelemetryError(f"cannot read thread CPU times: {exc}") from exc
    return sum(_us(t.user_time + t.system_time) for t in threads if t.id in wanted)
