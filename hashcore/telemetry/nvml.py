"""NVIDIA GPU energy through NVML (the nvidia-ml-py package, imported as ``pynvml``).

Volta and newer GPUs keep a total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded); older ones answer NOT_SUPPORTED there, and the meter
then integrates ``nvmlDeviceGetPowerUsage`` (milliwatts) on a background thread.

Every NVML call goes through :class:`Nvml`, the one place where ``NVMLError`` becomes
:class:`~hashcore.errors.TelemetryError` (or :class:`CounterUnsupported`).
"""

from __future__ import annotations

import functools
import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from hashcore.errors import ConfigError, TelemetryError
from hashcore.telemetry.base import CounterUnsupported
from hashcore.telemetry.poll import Clock, CountingMeter, Poller, PowerIntegrator

#: NVML error names (resolved against the loaded module) and what to tell the user.
_ERRORS = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": "libnvidia-ml.so not found: install the NVIDIA driver",
    "NVML_ERROR_DRIVER_NOT_LOADED": "the NVIDIA driver is not loaded (nvidia-smi must work first)",
    "NVML_ERROR_NO_PERMISSION": "permission denied (the user needs access to /dev/nvidia*)",
    "NVML_ERROR_NOT_SUPPORTED": "not supported by this GPU",
    "NVML_ERROR_INVALID_ARGUMENT": "no such GPU (bad index or PCI bus id)",
    "NVML_ERROR_NOT_FOUND": "no such GPU",
    "NVML_ERROR_GPU_IS_LOST": "the GPU has fallen off the bus",
    "NVML_ERROR_UNINITIALIZED": "NVML is not initialised",
}

_BUS_ID = re.compile(r"(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})(?:\.([0-7]))?", re.I)

P = ParamSpec("P")
R = TypeVar("R")


def pci_bus_id(domain: int, bus: int, device: int, function: int = 0) -> str:
    """A PCI address in NVML's own form (``00000000:3B:00.0``).

    OpenCL (``cl_khr_pci_bus_info``, or NVIDIA's ``CL_DEVICE_PCI_BUS_ID_NV`` and
    ``CL_DEVICE_PCI_SLOT_ID_NV``) and CUDA (``cudaDeviceGetPCIBusId``) give these parts.
    """
    return f"{domain:08X}:{bus:02X}:{device:02X}.{function:X}"


def normalize_bus_id(text: str) -> str:
    """``0000:3b:00.0``, ``3B:00.0`` or NVML's form, as NVML's form; ConfigError otherwise."""
    m = _BUS_ID.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{text!r} is not a PCI bus id (expected like 0000:3b:00.0)")
    domain, bus, device, function = (int(g, 16) if g else 0 for g in m.groups())
    return pci_bus_id(domain, bus, device, function)


def _text(value: str | bytes) -> str:
    # nvidia-ml-py decodes some strings and leaves ctypes char arrays as bytes.
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _translated(what: str) -> Callable[[Callable[Concatenate[Nvml, P], R]], Callable[Concatenate[Nvml, P], R]]:
    """Run an NVML call, turning NVMLError into TelemetryError raised from it."""

    def wrap(method: Callable[Concatenate[Nvml, P], R]) -> Callable[Concatenate[Nvml, P], R]:
        @functools.wraps(method)
        def call(self: Nvml, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(self, *args, **kwargs)
            except self.lib.NVMLError as exc:
                raise self.error(what, exc) from exc

        return call

    return wrap


class Nvml:
    """The few NVML calls hashcore makes, with vendor errors translated here and only here.

    ``lib`` is the ``pynvml`` module (imported when not given) or a stand-in of the same
    shape. Units are NVML's: millijoules for energy, milliwatts for power.
    """

    def __init__(self, lib: Any = None) -> None:
        if lib is None:
            try:
                lib = importlib.import_module("pynvml")
            except ImportError as exc:
                raise TelemetryError("no NVML: nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
        self.lib = lib

    def error(self, what: str, exc: Exception) -> TelemetryError:
        """The TelemetryError for an NVMLError raised while doing ``what``."""
        code = getattr(exc, "value", None)
        for name, message in _ERRORS.items():
            if code is not None and getattr(self.lib, name, object()) == code:
                cls = CounterUnsupported if name == "NVML_ERROR_NOT_SUPPORTED" else TelemetryError
                return cls(f"NVML {what}: {message}")
        return TelemetryError(f"NVML {what}: {exc} (error {code})")

    @_translated("init")
    def init(self) -> None:
        self.lib.nvmlInit()

    @_translated("shutdown")
    def shutdown(self) -> None:
        self.lib.nvmlShutdown()

    @_translated("device count")
    def count(self) -> int:
        return int(self.lib.nvmlDeviceGetCount())

    @_translated("device lookup")
    def handle(self, device: int | str) -> Any:
        """A device handle by index, or by PCI bus id (see :func:`normalize_bus_id`)."""
        if isinstance(device, int):
            return self.lib.nvmlDeviceGetHandleByIndex(device)
        return self.lib.nvmlDeviceGetHandleByPciBusId(normalize_bus_id(device))

    @_translated("device name")
    def name(self, handle: Any) -> str:
        return _text(self.lib.nvmlDeviceGetName(handle))

    @_translated("PCI info")
    def bus_id(self, handle: Any) -> str:
        return normalize_bus_id(_text(self.lib.nvmlDeviceGetPciInfo(handle).busId))

    @_translated("total energy")
    def total_energy_mj(self, handle: Any) -> int:
        """Energy since the driver loaded, in millijoules (Volta and newer)."""
        return int(self.lib.nvmlDeviceGetTotalEnergyConsumption(handle))

    @_translated("power usage")
    def power_mw(self, handle: Any) -> int:
        """Board power now, in milliwatts."""
        return int(self.lib.nvmlDeviceGetPowerUsage(handle))


def _device(device: int | str) -> int | str:
    """An index given as text ("0") is an index; anything else is a PCI bus id."""
    if isinstance(device, str) and device.strip().isdigit():
        return int(device)
    return device


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU NVML sees: index, name, PCI bus id, and whether it has an energy counter."""

    index: int
    name: str
    bus_id: str
    energy_counter: bool


def list_gpus(lib: Any = None) -> list[GpuInfo]:
    """Every GPU NVML sees; TelemetryError when NVML cannot be used at all."""
    nvml = Nvml(lib)
    nvml.init()
    try:
        gpus = []
        for index in range(nvml.count()):
            handle = nvml.handle(index)
            try:
                nvml.total_energy_mj(handle)
                counter = True
            except CounterUnsupported:
                counter = False
            gpus.append(GpuInfo(index, nvml.name(handle), nvml.bus_id(handle), counter))
        return gpus
    finally:
        nvml.shutdown()


class NvmlMeter(CountingMeter):
    """Energy of one NVIDIA GPU, chosen by index or PCI bus id.

    Uses the total-energy counter where the GPU has one; otherwise integrates power
    readings every ``poll_s`` seconds (still measured, so ``exact`` stays True).
    """

    source = "nvml"
    exact = True

    def __init__(
        self,
        device: int | str = 0,
        *,
        lib: Any = None,
        clock: Clock = time.monotonic_ns,
        poll_s: float = 0.1,
    ) -> None:
        super().__init__(clock)
        self._nvml = Nvml(lib)
        self._integrator: PowerIntegrator | None = None
        self._nvml.init()
        try:
            self._handle = self._nvml.handle(_device(device))
            self.gpu_name = self._nvml.name(self._handle)
            self.bus_id = self._nvml.bus_id(self._handle)
            try:
                self._start_mj = self._nvml.total_energy_mj(self._handle)
                how = "total-energy counter"
            except CounterUnsupported:
                self._integrator = PowerIntegrator(lambda: self._nvml.power_mw(self._handle), clock)
                self._poller = Poller(poll_s, self._integrator.update, "nvml-poll")
                how = f"power integrated every {poll_s * 1000:g} ms (no energy counter on this GPU)"
        except BaseException:
            self._nvml.shutdown()
            raise
        self._start_rate()
        self.note = f"NVML {self.gpu_name} at {self.bus_id}: {how}"

    def _energy_uj(self) -> int:
        if self._integrator is not None:
            return self._integrator.update()
        return (self._nvml.total_energy_mj(self._handle) - self._start_mj) * 1000

    def _release(self) -> None:
        if self._handle is not None:
            self._handle = None
            self._nvml.shutdown()
