"""The OpenCL backend: SHA-256d nonce scanning on GPUs, or on the CPU through PoCL.

Kernels live in ``kernels/`` (hashcat's layout: ``hc_portability.h`` maps what differs
between implementations, ``hc_sha256.cl`` holds the SHA-256 primitives, and
``hc_sha256d_scan.cl`` the thin entry kernels). The host chooses everything
device-specific and passes it as ``-D`` options; the kernels carry no vendor checks.

Code paths, per device:

* ``portable``: ``width`` nonces per vector (1 on GPUs; 8 or 16 on CPUs, where the
  lanes fill SIMD registers), any OpenCL 1.2 device;
* ``x86sha``: ``width`` nonces in flight through the x86 SHA extensions, on PoCL's CPU
  device where the CPU has them (PoCL compiles with clang, whose builtins reach them).

``path="auto"`` on a device where both run: each is tuned, then the two are timed
against each other on all the device's cores (see ``pathchoice``) once per device,
driver and kernel source, and the faster wins (x86sha on AMD Zen 3; portable, 2x
faster, on AVX-512 Intel). Elsewhere auto is portable.

One backend object drives every selected device (``device="auto"``: every GPU, else
the first CPU device; ``"all"``; or ``"P:D"`` platform and device indices,
comma-separated). A scan splits its range between devices in proportion to their
tuned rates, runs them at once and merges the results in nonce order.

Each device, before real work: the kernels are built (a failure raises
BackendUnavailable with the build log), a known answer is checked (hash kernel against
hashlib; the genesis nonce found by the scan kernel; an every-nonce range at the top of
the nonce space), and work size, nonces per work item and vector width are tuned once
per device and driver and cached on disk (``~/.cache/hashcore/opencl-tune.json``).

Per scan: launches of about ``launch_seconds`` each, two queued at a time (while the
host reads one launch's results the device runs the next), found nonces counted by an
atomic counter into a small buffer, every one re-checked here with hashlib.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from hashcore.backends import pathchoice, tuning
from hashcore.backends._precompute import OFFSETS, P_SIZE, precompute
from hashcore.backends.base import BackendInfo, ScanResult, check_range, register
from hashcore.backends.pathchoice import cache_dir
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import MAX_NONCE, MAX_TARGET, Work, nbits_to_target, verify_nonce

log = logging.getLogger("hashcore.backends.opencl")

PATHS: tuple[str, ...] = ("x86sha", "portable")
CHOICES: tuple[str, ...] = ("auto", *PATHS)
#: Widths each path's kernels are written for: vector lanes, or SHA streams in flight.
WIDTHS: dict[str, tuple[int, ...]] = {"portable": (1, 2, 4, 8, 16), "x86sha": (2, 3, 4, 5, 6, 7, 8)}
ENTRY = "hc_sha256d_scan.cl"
_KERNELS = {
    "portable": ("hc_sha256d_scan", "hc_sha256d_hash"),
    "x86sha": ("hc_sha256d_scan_x86sha", "hc_sha256d_hash_x86sha"),
}
_POCL = "Portable Computing Language"
_NVIDIA_VENDOR_ID = 0x10DE
_FIX_PLATFORM = (
    "install an OpenCL driver: apt-get install ocl-icd-libopencl1 pocl-opencl-icd (OpenCL on the CPU), "
    "or your GPU vendor's OpenCL ICD (NVIDIA: the driver's libnvidia-compute package)"
)
_FIX_PYOPENCL = "pip install pyopencl (hashcore's dependencies include it: pip install -e .)"
#: Launches at most this many nonces, so offsets inside one launch fit in 32 bits.
_MAX_LAUNCH = 1 << 31

# The genesis block: the known answer each device must find before it is used.
_KNOWN_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd"
    "7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
_KNOWN_NONCE = 0x7C2BAC1D


def _cl() -> ModuleType:
    try:
        import pyopencl
    except ImportError as exc:
        raise BackendUnavailable(f"OpenCL backend: cannot import pyopencl ({exc}); fix: {_FIX_PYOPENCL}") from exc
    return pyopencl


# --- kernel sources ----------------------------------------------------------------------


def default_kernel_dir() -> Path:
    """Where the kernels are: ``kernels/`` beside the package in a source checkout or
    an editable install, else ``share/hashcore/kernels`` under the install prefix."""
    for candidate in (Path(__file__).resolve().parents[2] / "kernels", Path(sys.prefix) / "share/hashcore/kernels"):
        if (candidate / ENTRY).is_file():
            return candidate
    raise BackendUnavailable(
        f"OpenCL backend: the kernel sources ({ENTRY}) are missing from this installation; "
        "fix: reinstall hashcore (pip install -e . from a source checkout)"
    )


_INCLUDE = re.compile(r'\s*#\s*include\s+"([^"]+)"\s*$')


def load_source(directory: Path, name: str = ENTRY, _seen: tuple[str, ...] = ()) -> str:
    """The kernel source with our own ``#include "..."`` lines expanded in place.

    Expanded here rather than by the OpenCL compiler, so that the binary caches keyed by
    the source text (pyopencl's, PoCL's) see every change of an included file; ``#line``
    keeps build-log line numbers pointing into the right file.
    """
    if name in _seen:
        raise BackendUnavailable(f"OpenCL backend: {name} includes itself (through {' -> '.join(_seen)})")
    try:
        text = (directory / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendUnavailable(f"OpenCL backend: cannot read kernel source {directory / name}: {exc}") from exc
    lines = [f'#line 1 "{name}"']
    for number, line in enumerate(text.splitlines(), 1):
        match = _INCLUDE.match(line)
        if match:
            lines.append(load_source(directory, match.group(1), (*_seen, name)))
            lines.append(f'#line {number + 1} "{name}"')
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


# --- devices --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """One OpenCL device as ``hashcore devices`` lists it.

    Attributes:
        id: ``"P:D"``, the platform and device indices (what ``device=`` takes).
        platform / platform_version: the platform's name and version.
        name / vendor / vendor_id / driver: the device's.
        kind: GPU, CPU, accelerator or other.
        compute_units: cores (CPU) or multiprocessors (GPU).
        pci_bus_id: the PCI address in NVML's form where the driver tells it, else None.
    """

    id: str
    platform: str
    platform_version: str
    name: str
    vendor: str
    vendor_id: int
    driver: str
    kind: str
    compute_units: int
    pci_bus_id: str | None

    @property
    def is_nvidia_gpu(self) -> bool:
        return self.kind == "GPU" and (self.vendor_id == _NVIDIA_VENDOR_ID or "NVIDIA" in self.vendor.upper())

    def describe(self) -> str:
        return f"{self.id} {self.name} ({self.platform}, {self.kind}, {self.compute_units} compute units)"


def _kind(cl: ModuleType, device: Any) -> str:
    if device.type & cl.device_type.GPU:
        return "GPU"
    if device.type & cl.device_type.CPU:
        return "CPU"
    if device.type & cl.device_type.ACCELERATOR:
        return "accelerator"
    return "other"


def _pci_bus_id(cl: ModuleType, device: Any) -> str | None:
    """The PCI address from NVIDIA's (cl_nv_device_attribute_query) or AMD's
    (cl_amd_device_attribute_query) extension, in NVML's form; None where neither."""
    extensions = device.extensions.split()
    with contextlib.suppress(cl.Error, AttributeError, ValueError):
        if "cl_nv_device_attribute_query" in extensions:
            bus = int(device.get_info(cl.device_info.PCI_BUS_ID_NV))
            slot = int(device.get_info(cl.device_info.PCI_SLOT_ID_NV))
            domain = 0
            with contextlib.suppress(cl.Error, AttributeError, ValueError):
                domain = int(device.get_info(cl.device_info.PCI_DOMAIN_ID_NV))
            # The slot id packs device (high 5 bits) and function (low 3 bits).
            return f"{domain:08X}:{bus & 0xFF:02X}:{(slot >> 3) & 0x1F:02X}.{slot & 7:X}"
        if "cl_amd_device_attribute_query" in extensions:
            topology = device.get_info(cl.device_info.TOPOLOGY_AMD)
            return f"{0:08X}:{topology.bus & 0xFF:02X}:{topology.device & 0x1F:02X}.{topology.function & 7:X}"
    return None


def _platforms(cl: ModuleType) -> list[Any]:
    try:
        platforms = list(cl.get_platforms())
    except cl.Error as exc:
        # No ICD loader configuration at all reads as PLATFORM_NOT_FOUND_KHR here.
        raise BackendUnavailable(
            f"OpenCL backend: no OpenCL platform is installed ({exc}); fix: {_FIX_PLATFORM}"
        ) from exc
    if not platforms:
        raise BackendUnavailable(f"OpenCL backend: no OpenCL platform is installed; fix: {_FIX_PLATFORM}")
    return platforms


def _describe(cl: ModuleType, p: int, d: int, platform: Any, device: Any) -> DeviceRef:
    return DeviceRef(
        id=f"{p}:{d}",
        platform=platform.name.strip(),
        platform_version=platform.version.strip(),
        name=device.name.strip(),
        vendor=device.vendor.strip(),
        vendor_id=int(device.vendor_id),
        driver=device.driver_version.strip(),
        kind=_kind(cl, device),
        compute_units=int(device.max_compute_units),
        pci_bus_id=_pci_bus_id(cl, device),
    )


def list_devices() -> list[tuple[DeviceRef, Any]]:
    """Every OpenCL device on every platform, with its pyopencl handle."""
    cl = _cl()
    found: list[tuple[DeviceRef, Any]] = []
    for p, platform in enumerate(_platforms(cl)):
        try:
            devices = platform.get_devices()
        except cl.Error as exc:  # a platform without devices answers DEVICE_NOT_FOUND
            log.debug("OpenCL platform %s has no usable device: %s", platform.name, exc)
            continue
        for d, device in enumerate(devices):
            try:
                ref = _describe(cl, p, d, platform, device)
            except cl.Error as exc:
                log.warning("OpenCL device %d:%d of %s cannot be queried: %s", p, d, platform.name, exc)
                continue
            found.append((ref, device))
    if not found:
        names = ", ".join(p.name.strip() for p in cl.get_platforms())
        raise BackendUnavailable(
            f"OpenCL backend: the OpenCL platforms here ({names}) offer no device; fix: {_FIX_PLATFORM}"
        )
    return found


_DEVICE_ID = re.compile(r"\d+:\d+")


def select_devices(spec: str, available: list[tuple[DeviceRef, Any]]) -> list[tuple[DeviceRef, Any]]:
    """The devices ``spec`` names: auto, all, or ``P:D`` ids separated by commas."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"OpenCL device must be auto, all or PLATFORM:DEVICE indices, got {spec!r}")
    spec = spec.strip().lower()
    if spec == "all":
        return list(available)
    if spec == "auto":
        gpus = [entry for entry in available if entry[0].kind == "GPU"]
        if gpus:
            return gpus
        cpus = [entry for entry in available if entry[0].kind == "CPU"]
        # Two CPU runtimes (PoCL and a vendor's) would drive the same cores twice.
        return cpus[:1] or available[:1]
    wanted = [part.strip() for part in spec.split(",")]
    for part in wanted:
        if not _DEVICE_ID.fullmatch(part):
            raise ConfigError(f"OpenCL device {part!r} is not auto, all or PLATFORM:DEVICE (like 0:1)")
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"OpenCL device listed twice in {spec!r}")
    by_id = {ref.id: (ref, device) for ref, device in available}
    missing = [part for part in wanted if part not in by_id]
    if missing:
        choices = "; ".join(ref.describe() for ref, _ in available)
        raise BackendUnavailable(f"OpenCL backend: no device {', '.join(missing)} here; fix: choose from {choices}")
    return [by_id[part] for part in wanted]


def _host_has_sha_ni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return "sha_ni" in line.split()
    except OSError:
        pass
    return False


def x86sha_possible(ref: DeviceRef) -> bool:
    """Whether the x86sha path can run on this device: PoCL's CPU device (clang) on a CPU
    with the SHA extensions (PoCL's CPU device is this machine's CPU)."""
    return ref.platform == _POCL and ref.kind == "CPU" and _host_has_sha_ni()


# --- settings and the tuning cache -----------------------------------------------------------


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


def _tune_file() -> Path:
    return cache_dir() / "opencl-tune.json"


def _tune_key(ref: DeviceRef, path: str, source: str, build_options: Sequence[str]) -> str:
    """Tuning results hold for one device, driver, kernel source, path and grid."""
    grid = tuning.OPENCL_TUNE_GRID[_grid_name(ref, path)]
    parts = [
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
    try:
        data = json.loads(_tune_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_tune_cache(key: str, ref: DeviceRef, settings: Settings) -> None:
    path = _tune_file()
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
    entry = _read_tune_cache().get(_tune_key(ref, path, source, build_options))
    if not isinstance(entry, dict):
        return None
    try:
        return Settings(**entry["settings"])
    except (KeyError, TypeError):
        return None


def _grid_name(ref: DeviceRef, path: str) -> str:
    return "x86sha" if path == "x86sha" else ("cpu" if ref.kind == "CPU" else "gpu")


def default_settings(ref: DeviceRef, path: str) -> Settings:
    width, per_item, local = tuning.OPENCL_TUNE_GRID[_grid_name(ref, path)]["start"]
    return Settings(path, width, per_item, local)


# --- one device ---------------------------------------------------------------------------


class _Device:
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

    def _enqueue(self, slot: int, start: int, count: int, settings: Settings) -> Any:
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
            self._enqueue(2, start + offset, size, settings).wait()
            nonces.extend(self._collect(2, start + offset, size, settings, need - len(nonces)))
            if len(nonces) >= need:
                break
        return nonces

    def scan(self, work: Work, start: int, count: int, need: int, settings: Settings) -> tuple[list[int], int]:
        """Scan ``[start, start + count)``: (nonces found, in order, at most ``need``;
        nonces done). Two launches are queued at any time."""
        self.set_work(work)
        step = max(settings.granule, min(settings.launch_nonces, _MAX_LAUNCH))
        launches = deque((s, min(step, start + count - s)) for s in range(start, start + count, step))
        pending: deque[tuple[int, int, int, Any]] = deque()
        free = [1, 0]
        found: list[int] = []
        while launches or pending:
            while launches and len(pending) < 2:
                s, c = launches.popleft()
                slot = free.pop()
                pending.append((slot, s, c, self._enqueue(slot, s, c, settings)))
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
        while elapsed < seconds / 4 and count < _MAX_LAUNCH:
            count = min(_MAX_LAUNCH, count * 4)
            elapsed = self._time(count, settings)
        count = min(_MAX_LAUNCH, max(count, int(count * seconds / max(elapsed, 1e-6))))
        count = -(-count // settings.granule) * settings.granule
        best = min(self._time(count, settings) for _ in range(2))  # best of two: others share the machine
        return count / best

    def _time(self, count: int, settings: Settings) -> float:
        began = time.perf_counter()
        self._enqueue(0, 0, count, settings).wait()
        return time.perf_counter() - began

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.queue.finish()
        self._programs.clear()


def _build_log(exc: Exception) -> str:
    text = str(exc).strip()
    return text if len(text) <= 8000 else text[:2000] + "\n[...]\n" + text[-6000:]


# --- known answer and tuning --------------------------------------------------------------


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def known_answer(dev: _Device, settings: Settings) -> None:
    """Raise BackendUnavailable unless ``dev`` hashes and scans the genesis block right."""
    genesis = Work.from_header(_KNOWN_HEADER[:76], nbits_to_target(0x1D00FFFF))
    base = _KNOWN_NONCE - 24
    digests = dev.hashes(genesis, base, 48, settings)
    wrong = [base + i for i, d in enumerate(digests) if d != _sha256d(genesis.header(base + i))]
    problems = []
    if wrong:
        problems.append(f"hash kernel wrong for {len(wrong)} of 48 nonces")
    check = replace(settings, launch_nonces=settings.granule)
    found, done = dev.scan(genesis, _KNOWN_NONCE - 500, 1000, 8, check)
    if found != [_KNOWN_NONCE] or done != 1000:
        problems.append(f"scan found {found[:4]} instead of the genesis nonce")
    every = Work.from_header(_KNOWN_HEADER[:76], MAX_TARGET)
    found, done = dev.scan(every, MAX_NONCE - 99, 100, 200, check)
    if found != list(range(MAX_NONCE - 99, MAX_NONCE + 1)):
        problems.append(f"scan of an every-nonce target found {len(found)} of the last 100 nonces")
    if problems:
        raise BackendUnavailable(
            f"OpenCL backend: device {dev.ref.describe()} failed its known-answer test on the {settings.path} path "
            f"({'; '.join(problems)}); do not mine with it; fix: update the OpenCL driver or choose another device"
        )


def autotune(dev: _Device, path: str, fixed: dict[str, Any] | None = None) -> Settings:
    """Time the grid of settings for ``path`` on ``dev`` one dimension at a time (vector
    width, then nonces per item, then work-group size) and keep the fastest; settings
    in ``fixed`` are held."""
    fixed = fixed or {}
    grid = tuning.OPENCL_TUNE_GRID[_grid_name(dev.ref, path)]
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
            if candidate in rates or candidate.local_size > dev.max_local_size(path, candidate.width):
                continue
            rates[candidate] = dev.rate(candidate, tuning.OPENCL_TUNE_SECONDS)
            log.debug("OpenCL tune %s: %s -> %.2f MH/s", dev.ref.id, candidate.describe(), rates[candidate] / 1e6)
            best = max(rates, key=rates.__getitem__)
    if best not in rates:  # every candidate was too large a work group for this kernel
        best = replace(best, local_size=min(best.local_size, dev.max_local_size(path, best.width)))
        rates[best] = dev.rate(best, tuning.OPENCL_TUNE_SECONDS)
    return replace(best, rate_hs=rates[best], tuned=True)


def _launch_nonces(settings: Settings, launch_seconds: float) -> int:
    wanted = settings.rate_hs * launch_seconds if settings.rate_hs > 0 else 1 << 20
    granules = max(1, math.ceil(wanted / settings.granule))
    return int(min(granules * settings.granule, _MAX_LAUNCH // settings.granule * settings.granule))


# --- the backend ---------------------------------------------------------------------------


class OpenCLBackend:
    """SHA-256d on one or more OpenCL devices; safe to share between threads (scans of
    one backend run one at a time: the devices are its to keep busy).

    Attributes:
        devices: the devices driven, in the order their shares of a range go.
        settings: per device, how it runs (path, widths, sizes, tuned rate).
        path: the code path(s), for reports (``x86sha``, ``portable``, or both).
        energy_kind: ``gpu`` where the devices are GPUs (each gets its own meter), else
            ``cpu`` (PoCL runs on the CPU cores the CPU meter measures).
    """

    name = "opencl"
    releases_gil = True

    def __init__(self, devices: list[_Device], settings: list[Settings]) -> None:
        self._devices = devices
        self.devices = [d.ref for d in devices]
        self.settings = settings
        self.path = "+".join(sorted({s.path for s in settings}))
        self.energy_kind = "gpu" if all(ref.kind == "GPU" for ref in self.devices) else "cpu"
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(len(devices), "hashcore-opencl") if len(devices) > 1 else None
        self.rejected = 0  # nonces a device reported that hashlib did not confirm

    def energy_options(self) -> dict[str, Any]:
        """The GPU for NVML: the first device's PCI bus id (NVIDIA), where known."""
        for ref in self.devices:
            if ref.kind == "GPU" and ref.pci_bus_id is not None:
                return {"gpu": ref.pci_bus_id}
        return {}

    def _shares(self, start: int, count: int) -> list[tuple[int, int]]:
        """Consecutive parts of the range, one per device, in proportion to their rates."""
        rates = [max(s.rate_hs, 1.0) for s in self.settings]
        total = sum(rates)
        shares, at = [], start
        for i, rate in enumerate(rates):
            size = start + count - at if i == len(rates) - 1 else int(count * rate / total)
            shares.append((at, size))
            at += size
        return shares

    def _verified(self, work: Work, nonces: list[int], ref: DeviceRef) -> list[int]:
        good = []
        for nonce in nonces:
            if verify_nonce(work, nonce).value <= work.target:
                good.append(nonce)
            else:
                self.rejected += 1
                log.warning("OpenCL device %s reported nonce %d, which does not meet the target", ref.id, nonce)
        return good

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        if count == 0:
            return ScanResult([], 0)
        shares = self._shares(nonce_start, count)
        with self._lock:
            try:
                if self._pool is None:
                    parts = [self._devices[0].scan(work, nonce_start, count, max_results, self.settings[0])]
                else:
                    runs = zip(self._devices, self.settings, shares, strict=True)
                    futures = [self._pool.submit(dev.scan, work, s, c, max_results, st) for dev, st, (s, c) in runs]
                    parts = [f.result() for f in futures]
            except self._cl_error() as exc:
                raise BackendError(
                    f"OpenCL backend: a device failed mid-scan ({exc}); the device may be lost or reset; "
                    "fix: check the driver (dmesg, clinfo) and restart hashcore"
                ) from exc
            # Shares in range order: complete up to the first one that stopped early.
            found: list[int] = []
            for dev, (share_start, size), (nonces, done) in zip(self._devices, shares, parts, strict=True):
                found.extend(self._verified(work, nonces, dev.ref))
                if len(found) >= max_results:
                    found = found[:max_results]
                    return ScanResult(found, found[-1] + 1 - nonce_start)
                if done < size:  # stopped at its own max_results, some of which hashlib refused
                    return ScanResult(found, share_start + done - nonce_start)
            return ScanResult(found, count)

    def _cl_error(self) -> type[Exception]:
        return self._devices[0].cl.Error

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for dev in self._devices:
            dev.close()

    def __repr__(self) -> str:
        devices = ", ".join(f"{ref.id}: {s.describe()}" for ref, s in zip(self.devices, self.settings, strict=True))
        return f"OpenCLBackend({devices})"


def _option_int(name: str, value: Any, allowed: Sequence[int] | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"OpenCL {name} must be a positive integer, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ConfigError(f"OpenCL {name} must be one of {', '.join(map(str, allowed))}, got {value}")
    return value


def _open(
    *,
    device: str = "auto",
    path: str = "auto",
    tune: bool = True,
    width: int | None = None,
    nonces_per_item: int | None = None,
    local_size: int | None = None,
    launch_seconds: float = tuning.OPENCL_LAUNCH_SECONDS,
    build_options: Sequence[str] = (),
    kernel_dir: str | None = None,
    **_options: Any,
) -> OpenCLBackend:
    """Open the OpenCL backend.

    Args:
        device: auto (every GPU, else the first CPU device), all, or ``P:D`` ids
            separated by commas (``hashcore devices`` lists them).
        path: auto (the faster of x86sha and portable where both run, measured once;
            else portable), portable or x86sha.
        tune: time the settings grid once per device and driver (cached on disk);
            False uses the defaults of ``tuning``.
        width / nonces_per_item / local_size: fix a setting (the tune then leaves it
            alone); width is vector lanes (portable) or nonces in flight (x86sha).
        launch_seconds: target duration of one kernel launch.
        build_options: extra options for the OpenCL compiler (``-D...``).
        kernel_dir: a directory holding the kernels instead of the installed ones.
    """
    if path not in CHOICES:
        raise ConfigError(f"unknown OpenCL code path {path!r} (choose from {', '.join(CHOICES)})")
    width = _option_int("width", width, sorted(set(WIDTHS["portable"]) | set(WIDTHS["x86sha"])))
    per_item = _option_int("nonces_per_item", nonces_per_item)
    local = _option_int("local_size", local_size)
    if not isinstance(launch_seconds, (int, float)) or not 0 < launch_seconds <= 10:
        raise ConfigError(f"OpenCL launch_seconds must be between 0 and 10, got {launch_seconds!r}")
    if isinstance(build_options, str) or not all(isinstance(o, str) for o in build_options):
        raise ConfigError("OpenCL build_options must be a list of strings")
    import numpy as np

    cl = _cl()
    source = load_source(Path(kernel_dir) if kernel_dir else default_kernel_dir())
    chosen = select_devices(device, list_devices())
    fixed = {k: v for k, v in (("width", width), ("nonces_per_item", per_item), ("local_size", local)) if v is not None}
    devices: list[_Device] = []
    settings: list[Settings] = []
    try:
        for ref, handle in chosen:
            dev = _Device(cl, np, ref, handle, source, build_options)
            devices.append(dev)
            settings.append(_prepare_device(dev, path, tune, fixed, launch_seconds))
    except BaseException:
        for dev in devices:
            dev.close()
        raise
    backend = OpenCLBackend(devices, settings)
    log.info("OpenCL backend ready: %r", backend)
    return backend


def _prepare_device(dev: _Device, path: str, tune: bool, fixed: dict[str, Any], launch_seconds: float) -> Settings:
    """Choose the path, build, check the known answer, and tune (or load the tune)."""
    ref = dev.ref
    if path == "x86sha" and not x86sha_possible(ref):
        raise BackendUnavailable(
            f"OpenCL backend: the x86sha path needs PoCL's CPU device on a CPU with the SHA extensions; "
            f"{ref.describe()} is not one; fix: use path auto or portable"
        )
    if path != "auto":
        settings = _ready(dev, path, tune, fixed)
    else:
        candidates = _auto_paths(ref, fixed)
        ready: dict[str, Settings] = {}
        for candidate in candidates:
            try:
                ready[candidate] = _ready(dev, candidate, tune, fixed)
            except BackendUnavailable as exc:
                if candidate == candidates[-1] and not ready:
                    raise
                log.warning("OpenCL %s: the %s path is unusable (%s)", ref.id, candidate, exc)
        if len(ready) == 1:
            settings = next(iter(ready.values()))
        else:
            choice = path_choice(dev, ready)
            settings = replace(ready[choice.chosen], rate_hs=choice.best_hs)
    return replace(settings, launch_nonces=_launch_nonces(settings, launch_seconds))


def _auto_paths(ref: DeviceRef, fixed: dict[str, Any]) -> list[str]:
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
    cl = _cl()
    return {
        "platform": f"{ref.platform} {ref.platform_version}",
        "device": ref.name,
        "driver": ref.driver,
        "pyopencl": str(getattr(cl, "VERSION_TEXT", "")),
        "source": hashlib.sha256(source.encode()).hexdigest()[:16],
        "build_options": " ".join(build_options),
        **{f"settings_{p}": f"w{s.width} n{s.nonces_per_item} l{s.local_size}" for p, s in settings.items()},
    }


def path_choice(dev: _Device, ready: dict[str, Settings]) -> pathchoice.Choice:
    """The faster of the ready paths on ``dev``, timed on all its cores (cached)."""

    def run(path: str, count: int) -> int:
        settings = ready[path]
        count = min(_MAX_LAUNCH // settings.granule, max(1, -(-count // settings.granule))) * settings.granule
        dev._enqueue(0, 0, count, settings).wait()
        return count

    def prepare() -> pathchoice.Runner:
        dev.set_work(Work.from_header(bytes(range(76)), 1))  # target 1: nothing found, full scans
        return run

    key = _choice_key(dev.ref, dev.source, ready, dev.build_options)
    return pathchoice.choose(_choice_entry(dev.ref), list(ready), prepare, key, cores=dev.ref.compute_units)


def _known_choice(ref: DeviceRef, source: str) -> pathchoice.Choice | None:
    """The cached path choice of a device, found without touching it (tune and choice
    both cached); None when it would take a build, a tune or a measurement."""
    ready = {}
    for path in _auto_paths(ref, {}):
        tuned = cached_settings(ref, path, source)
        if tuned is None:
            return None
        ready[path] = tuned
    if len(ready) == 1:
        return None
    return pathchoice.cached(_choice_entry(ref), list(ready), _choice_key(ref, source, ready, ()))


def backend_rate() -> pathchoice.BackendRate:
    """OpenCL with its defaults (the devices auto selects): from the caches where they
    hold, else opened, tuned and measured once."""
    entries = [ref for ref, _ in select_devices("auto", list_devices())]
    source = load_source(default_kernel_dir())
    known = _known_rates(entries, source)
    if known is None:
        backend = _open()  # builds, tunes and measures what the caches lack
        backend.close()
        known = _known_rates(entries, source) or [
            (ref, s.path, s.rate_hs, 0.0) for ref, s in zip(backend.devices, backend.settings, strict=True)
        ]
    total = sum(rate for _, _, rate, _ in known)
    paths = "+".join(sorted({path for _, path, _, _ in known}))
    sticks = [stick for _, _, _, stick in known]
    stick = min(sticks) if all(sticks) else 0.0
    cpu_cores = sum(ref.compute_units for ref, _, _, _ in known if ref.kind == "CPU")
    if all(ref.kind == "CPU" for ref, _, _, _ in known):
        return pathchoice.BackendRate("opencl", paths, total / max(cpu_cores, 1), total,
                                      f"measured on {cpu_cores} cores", stick)  # fmt: skip
    return pathchoice.BackendRate("opencl", paths, None, total, f"measured on {len(known)} device(s)", stick)


def _known_rates(refs: list[DeviceRef], source: str) -> list[tuple[DeviceRef, str, float, float]] | None:
    """(device, path, rate, yardstick) of each device from the caches; None if one lacks it."""
    known = []
    for ref in refs:
        choice = _known_choice(ref, source)
        tuned = cached_settings(ref, "portable", source) if len(_auto_paths(ref, {})) == 1 else None
        if choice is not None:
            known.append((ref, choice.chosen, choice.best_hs, choice.yardstick_hs))
        elif tuned is not None:
            known.append((ref, "portable", tuned.rate_hs, 0.0))
        else:
            return None
    return known


def _ready(dev: _Device, path: str, tune: bool, fixed: dict[str, Any]) -> Settings:
    if "width" in fixed and fixed["width"] not in WIDTHS[path]:
        raise ConfigError(f"OpenCL width {fixed['width']} is not one the {path} kernels take ({WIDTHS[path]})")
    start = replace(default_settings(dev.ref, path), **fixed)
    known_answer(dev, start)  # builds first: a build error surfaces here, with its log
    if not tune or len(fixed) == 3:
        return replace(start, rate_hs=dev.rate(start, tuning.OPENCL_TUNE_SECONDS))
    key = _tune_key(dev.ref, path, dev.source, dev.build_options)
    settings = cached_settings(dev.ref, path, dev.source, dev.build_options) if not fixed else None
    if settings is None:
        began = time.perf_counter()
        settings = autotune(dev, path, fixed)
        log.info("OpenCL %s tuned in %.1f s: %s", dev.ref.id, time.perf_counter() - began, settings.describe())
        if not fixed:
            _write_tune_cache(key, dev.ref, settings)
    if settings.width != start.width:
        known_answer(dev, settings)  # another width is another build: check it too
    return settings


def _probe() -> BackendInfo:
    entries = list_devices()  # BackendUnavailable (no pyopencl, no platform) is the answer
    chosen = {ref.id for ref, _ in select_devices("auto", entries)}
    try:
        source = load_source(default_kernel_dir())
    except BackendUnavailable:
        source = ""
    lines, extra_devices = [], []
    for ref, _ in entries:
        choice = _known_choice(ref, source) if source else None
        paths = _auto_paths(ref, {})
        path = choice.chosen if choice else paths[0]
        tuned = cached_settings(ref, path, source) if source else None
        if tuned is not None:
            tuned = replace(tuned, launch_nonces=_launch_nonces(tuned, tuning.OPENCL_LAUNCH_SECONDS))
        note = f"tuned: {tuned.describe()}" if tuned else "not tuned yet (the first open tunes it)"
        if choice is not None:
            note += f"; measured: {choice.describe()}"
        elif len(paths) > 1:
            note += f"; {' or '.join(paths)}, measured on first open"
            path = "auto"
        mark = ", picked by auto" if ref.id in chosen else ""  # no brackets: the CLI prints rich markup
        lines.append(f"{ref.describe()}{mark}, path {path}, {note}")
        extra_devices.append(
            {
                **asdict(ref),
                "auto": ref.id in chosen,
                "path": path,
                "tuned": asdict(tuned) if tuned else None,
                "path_choice": choice.to_json() if choice else None,
            }
        )
    return BackendInfo(
        "opencl", True, "; ".join(lines), extra={"devices": extra_devices, "tune_cache": str(_tune_file())}
    )


register("opencl", _open, _probe, "OpenCL: GPUs, or the CPU through PoCL (SHA extensions or lanes, measured)",
         rate=backend_rate)  # fmt: skip
