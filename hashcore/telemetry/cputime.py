"""CPU time of this process, its worker processes, or chosen threads (psutil).

Used by the estimate (CPU time × watts per core) and to split one package counter
between CPU backends by the CPU time each used. Times are integer microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable

import psutil

from hashcore.errors import TelemetryError

US_PER_S = 1_000_000


def _us(seconds: float) -> int:
    return round(seconds * US_PER_S)


def process_tree_cpu_us(pid: int | None = None) -> int:
    """User + system time of a process (every thread), its live children and its reaped
    children, in microseconds. Backends that hold the GIL run in worker processes, so the
    children count as ours."""
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = _us(times.user + times.system + times.children_user + times.children_system)
        for child in proc.children(recursive=True):
            try:
                ct = child.cpu_times()
            except psutil.Error:
                continue  # exited between listing and reading; counted once reaped
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
