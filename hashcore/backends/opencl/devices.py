"""OpenCL device discovery: pyopencl, the platforms and devices here, which of them a
``device=`` option names, and whether a device can run the x86sha path."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from hashcore.errors import BackendUnavailable, ConfigError

log = logging.getLogger("hashcore.backends.opencl")

_POCL = "Portable Computing Language"
_NVIDIA_VENDOR_ID = 0x10DE
_FIX_PLATFORM = (
    "install an OpenCL driver: apt-get install ocl-icd-libopencl1 pocl-opencl-icd (OpenCL on the CPU), "
    "or your GPU vendor's OpenCL ICD (NVIDIA: the driver's libnvidia-compute package)"
)
_FIX_PYOPENCL = "pip install pyopencl (hashcore's dependencies include it: pip install -e .)"


def load_pyopencl() -> ModuleType:
    """pyopencl, or BackendUnavailable with the fix."""
    try:
        import pyopencl
    except ImportError as exc:
        raise BackendUnavailable(f"OpenCL backend: cannot import pyopencl ({exc}); fix: {_FIX_PYOPENCL}") from exc
    return pyopencl


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
    cl = load_pyopencl()
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
