"""One OpenCL device at work: its context and queue, the kernels built for a path and
width, the buffers, and scans of a nonce range with two launches queued at a time.

Per scan: launches of about ``launch_seconds`` each, two queued at a time (while the
host reads one launch's results the device runs the next), found nonces counted by an
atomic counter into a small buffer.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from hashcore.backends import cpushare, tuning
from hashcore.backends._precompute import OFFSETS, P_SIZE, precompute
from hashcore.backends.opencl.devices import DeviceRef
from hashcore.backends.opencl.settings import MAX_LAUNCH, Settings
from hashcore.errors import BackendUnavailable
from hashcore.work import Work

log = logging.getLogger("hashcore.backends.opencl")

#: (scan kernel, hash kernel) of each path.
_KERNELS = {
    "portable": ("hc_sha256d_scan", "hc_sha256d_hash"),
    "x86sha": ("hc_sha256d_scan_x86sha", "hc_sha256d_hash_x86sha"),
}


class DeviceRunner:
    """Context, queue, built kernels and buffers of one device; used under the backend's lock."""

    def __init__(
        self, cl: ModuleType, np: ModuleType, ref: DeviceRef, device: Any, source: str, build_options: Sequence[str]
    ) -> None:
        self.cl, self.np, self.ref, self.device = cl, np, ref, device
        self.source = source
        self.build_options = list(build_options)
        self._programs: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        try:
            self.context = cl.Context([device])
            self.queue = cl.CommandQueue(self.context, device)
            mf = cl.mem_flags
            self._pre = cl.Buffer(self.context, mf.READ_ONLY, 4 * P_SIZE)
            words = 1 + tuning.OPENCL_RESULT_SLOTS
            # Slots 0 and 1 alternate (double buffering); slot 2 serves rescans.
            self._results = [cl.Buffer(self.context, mf.READ_WRITE, 4 * words) for _ in range(3)]
            self._host = [np.zeros(words, dtype=np.uint32) for _ in range(3)]
        except cl.Error as exc:
            raise BackendUnavailable(
                f"OpenCL backend: device {ref.describe()} cannot be used ({exc}); fix: check that the driver "
                "sees the device (clinfo), or choose another with device=P:D"
            ) from exc
        self._zero = np.zeros(1, dtype=np.uint32)
        self._pre_key: tuple[bytes, int] | None = None
        #: Wall and process CPU seconds of the launches ``rate`` timed (see ``cpu_share``).
        self.timed_wall = 0.0
        self.timed_cpu = 0.0

    # -- building

    def options(self, path: str, width: int) -> list[str]:
        x86sha = path == "x86sha"
        return [
            *(f"-DHC_{name}={value}" for name, value in OFFSETS.items()),
            f"-DHC_RESULT_SLOTS={tuning.OPENCL_RESULT_SLOTS}",
            f"-DHC_X86_SHA={int(x86sha)}",
            f"-DHC_X86_STREAMS={width}" if x86sha else f"-DHC_VECTOR_WIDTH={width}",
            *self.build_options,
        ]

    def kernels(self, path: str, width: int) -> tuple[Any, Any]:
        """(scan kernel, hash kernel) for a path and vector width, built once."""
        key = (path, width)
        if key not in self._programs:
            cl = self.cl
            options = self.options(*key)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    program = cl.Program(self.context, self.source).build(options=options, devices=[self.device])
                for warning in caught:
                    log.debug("OpenCL build log for %s: %s", self.ref.id, warning.message)
            except cl.Error as exc:
                raise BackendUnavailable(
                    f"OpenCL backend: the kernels do not build for {self.ref.describe()} "
                    f"(path {key[0]}, options {' '.join(options)}); build log:\n{_build_log(exc)}\n"
                    "fix: update the OpenCL driver or choose another device with device=P:D, "
                    "and report this build log"
                ) from exc
            scan_name, hash_name = _KERNELS[key[0]]
            self._programs[key] = (program, cl.Kernel(program, scan_name), cl.Kernel(program, hash_name))
        _, scan, digest = self._programs[key]
        return scan, digest

    def max_local_size(self, path: str, width: int) -> int:
        scan, _ = self.kernels(path, width)
        limit = scan.get_work_group_info(self.cl.kernel_work_group_info.WORK_GROUP_SIZE, self.device)
        return int(min(limit, self.device.max_work_group_size))

    # -- running

    def set_work(self, work: Work) -> None:
        key = (work.header76, work.target)
        if key != self._pre_key:
            words = self.np.array(precompute(work), dtype=self.np.uint32)
            self.cl.enqueue_copy(self.queue, self._pre, words, is_blocking=True)
            self._pre_key = key

    def enqueue(self, slot: int, start: int, count: int, settings: Settings) -> Any:
        """Reset the counter, launch the scan kernel, read the results back: all queued."""
        cl, np = self.cl, self.np
        scan, _ = self.kernels(settings.path, settings.width)
        items = -(-count // settings.nonces_per_item)
        global_size = -(-items // settings.local_size) * settings.local_size
        cl.enqueue_copy(self.queue, self._results[slot], self._zero, is_blocking=False)
        scan.set_args(
            self._pre, np.uint32(start), np.uint32(count), np.uint32(settings.nonces_per_item), self._results[slot]
        )
        cl.enqueue_nd_range_kernel(self.queue, scan, (global_size,), (settings.local_size,))
        return cl.enqueue_copy(self.queue, self._host[slot], self._results[slot], is_blocking=False)

    def _collect(self, slot: int, start: int, count: int, settings: Settings, need: int) -> list[int]:
        """The nonces of a finished launch, in order (at least the first ``need``); when
        more were found than the buffer holds (only with very easy targets), the launch
        is rescanned in parts small enough not to overflow, until ``need`` are known."""
        host = self._host[slot]
        found = int(host[0])
        if found <= tuning.OPENCL_RESULT_SLOTS:
            return sorted(int(n) for n in host[1 : 1 + found])
        part = max(1, count * tuning.OPENCL_RESULT_SLOTS // (2 * found))
        nonces: list[int] = []
        for offset in range(0, count, part):
            size = min(part, count - offset)
            self.enqueue(2, start + offset, size, settings).wait()
            nonces.extend(self._collect(2, start + offset, size, settings, need - len(nonces)))
            if len(nonces) >= need:
                break
        return nonces

    def scan(self, work: Work, start: int, count: int, need: int, settings: Settings) -> tuple[list[int], int]:
        """Scan ``[start, start + count)``: (nonces found, in order, at most ``need``;
        nonces done). Two launches are queued at any time."""
        self.set_work(work)
        step = max(settings.granule, min(settings.launch_nonces, MAX_LAUNCH))
        launches = deque((s, min(step, start + count - s)) for s in range(start, start + count, step))
        pending: deque[tuple[int, int, int, Any]] = deque()
        free = [1, 0]
        found: list[int] = []
        while launches or pending:
            while launches and len(pending) < 2:
                s, c = launches.popleft()
                slot = free.pop()
                pending.append((slot, s, c, self.enqueue(slot, s, c, settings)))
            slot, s, c, event = pending.popleft()
            event.wait()
            found.extend(self._collect(slot, s, c, settings, need - len(found)))
            free.append(slot)
            if len(found) >= need:
                self.queue.finish()  # the launch still queued finishes; its results are not needed
                found = found[:need]
                return found, found[-1] + 1 - start
        return found, count

    def hashes(self, work: Work, start: int, count: int, settings: Settings) -> list[bytes]:
        """Full digests of ``count`` nonces from ``start`` by the hash kernel (known answer)."""
        cl, np = self.cl, self.np
        per_item = settings.width
        items = -(-count // per_item)
        out = cl.Buffer(self.context, cl.mem_flags.WRITE_ONLY, 4 * 8 * items * per_item)
        self.set_work(work)
        _, digest = self.kernels(settings.path, settings.width)
        digest.set_args(self._pre, np.uint32(start), out)
        cl.enqueue_nd_range_kernel(self.queue, digest, (items,), (1,))
        words = np.empty(8 * items * per_item, dtype=np.uint32)
        cl.enqueue_copy(self.queue, words, out, is_blocking=True)
        return [words[8 * i : 8 * i + 8].astype(">u4").tobytes() for i in range(count)]

    def rate(self, settings: Settings, seconds: float) -> float:
        """Nonces per second of this device at ``settings`` (no results: target 1)."""
        self.set_work(Work.from_header(bytes(range(76)), 1))
        count = settings.granule * max(1, 4 * self.ref.compute_units)
        self._time(count, settings)  # warm-up: first launch pays lazy setup
        elapsed = self._time(count, settings)
        while elapsed < seconds / 4 and count < MAX_LAUNCH:
            count = min(MAX_LAUNCH, count * 4)
            elapsed = self._time(count, settings)
        count = min(MAX_LAUNCH, max(count, int(count * seconds / max(elapsed, 1e-6))))
        count = -(-count // settings.granule) * settings.granule
        timed = []
        cpu = cpushare.clock(in_caller=False)  # PoCL's workers hash, not this thread
        for _ in range(2):  # best of two: others share the machine
            cpu_began = cpu()
            wall = self._time(count, settings)
            timed.append((wall, cpu() - cpu_began))
        # The share is the best launch's too: PoCL builds a kernel again the first time a
        # launch outgrows its small-grid build, on one thread inside the launch, which
        # would read as a busy machine.
        wall, cpu_seconds = min(timed)
        self.timed_wall += wall
        self.timed_cpu += cpu_seconds
        return count / wall

    @property
    def cpu_threads(self) -> int | None:
        """The CPU threads this device keeps busy: a CPU device's compute units, whose
        workers run in this process; None for a device that is not the CPU."""
        return max(self.ref.compute_units, 1) if self.ref.kind == "CPU" else None

    def cpu_share(self, since: tuple[float, float]) -> float | None:
        """The share of its compute units a CPU device's timed launches got since
        ``since`` (``(timed_wall, timed_cpu)`` taken before): other programs busy on the
        cores show as a share under 1. None off the CPU, or when nothing was timed."""
        wall = self.timed_wall - since[0]
        if self.cpu_threads is None or wall <= 0:
            return None
        return cpushare.share(self.timed_cpu - since[1], wall, self.cpu_threads)

    def _time(self, count: int, settings: Settings) -> float:
        began = time.perf_counter()
        self.enqueue(0, 0, count, settings).wait()
        return time.perf_counter() - began

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.queue.finish()
        self._programs.clear()


def _build_log(exc: Exception) -> str:
    text = str(exc).strip()
    return text if len(text) <= 8000 else text[:2000] + "\n[...]\n" + text[-6000:]
