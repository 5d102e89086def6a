"""Knobs and actuators that touch a real miner and real devices.

:class:`EngineKnobs` sets a running :class:`~hashcore.engine.Miner`'s duty, threads and
operating point; :class:`GpuPowerLimit` sets an NVIDIA GPU's board power limit through
NVML. :func:`live_chain` is the throttle core's actuator chain
(:func:`hashcore.throttle.actuators.make_chain`) with the GPU's power limit in it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hashcore.control import MinerControl
from hashcore.errors import ConfigError, TelemetryError
from hashcore.telemetry.nvml import Nvml
from hashcore.throttle.actuators import Actuator, Knobs, make_chain
from hashcore.throttle.devices import Mix
from hashcore.throttle.model import BackendModel

#: The engine's workers sleep ``scan × (1 - duty) / duty`` after each scan without
#: looking at their duty again, so a small duty leaves them deaf to a change for a long
#: time; 0.2 bounds that at four scans (a second with the default quarter-second scans).
ENGINE_MIN_DUTY = 0.2


class EngineKnobs:
    """The throttle's knobs on a running miner, through its control boundary."""

    def __init__(self, miner: MinerControl, min_duty: float = ENGINE_MIN_DUTY) -> None:
        self.miner = miner
        self.min_duty = min_duty

    def max_threads(self, backend: str) -> int:
        """The worker threads the miner opened for ``backend`` (the most a chain may run)."""
        return self.miner.max_threads(backend)

    def set_duty(self, backend: str, duty: float) -> None:
        self.miner.set_duty(backend, duty)

    def set_threads(self, backend: str, threads: int) -> None:
        self.miner.set_threads(backend, threads)

    def duty(self, backend: str) -> float:
        return float(self.miner.duty(backend))

    def active_threads(self, backend: str) -> int:
        return int(self.miner.active_threads(backend))

    def set_operating_point(self, backend: str, mix: Mix) -> None:
        """One chain runs at one clock: the mix's average frequency, the voltage following
        the chip's V/f table (the driver sets it before a rise, after a fall)."""
        self.miner.set_operating_point(backend, mix.freq_mhz)


class GpuPowerLimit:
    """An NVIDIA GPU's board power limit through NVML, where the driver permits it.

    Setting a limit needs root (or the admin's ``nvidia-smi -pl`` permission); where it is
    refused, or there is no GPU or driver, the actuator says why in ``reason``, realises
    nothing (factor 1) and the chain falls back to duty. On close it restores the limit
    it found.

    Args:
        device: GPU index or PCI bus id.
        lib: the ``pynvml`` module, or a stand-in of the same shape (tests).
    """

    name = "gpu-power-limit"

    def __init__(self, device: int | str = 0, lib: Any = None) -> None:
        self.available = False
        self.reason = ""
        self._handle: Any = None
        self._original_mw: int | None = None
        self._min_mw = self._max_mw = 0
        self._current_mw: int | None = None
        self._initialised = False
        try:
            self._nvml = Nvml(lib)
            self._nvml.init()
        except TelemetryError as exc:
            self.reason = f"not permitted here: {exc}"
            return
        self._initialised = True
        try:
            self._handle = self._nvml.handle(device)
            low, high = self._call("power limit range", "nvmlDeviceGetPowerManagementLimitConstraints")
            self._min_mw, self._max_mw = int(low), int(high)
            self._original_mw = int(self._call("power limit", "nvmlDeviceGetPowerManagementLimit"))
            self.available = self._max_mw > 0
            self.reason = "" if self.available else "the GPU reports no power limit range"
        except (TelemetryError, ConfigError) as exc:
            self.reason = f"not permitted here: {exc}"
            self._shutdown()

    def _call(self, what: str, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml.lib, function)(self._handle, *args)
        except self._nvml.lib.NVMLError as exc:
            raise self._nvml.error(what, exc) from exc

    def apply(self, backend: str, fraction: float) -> float:
        if not self.available:
            return 1.0
        if fraction <= 0:
            return 0.0
        limit = min(self._max_mw, max(self._min_mw, round(fraction * self._max_mw)))
        if limit != self._current_mw:
            try:
                self._call("set power limit", "nvmlDeviceSetPowerManagementLimit", limit)
            except TelemetryError as exc:
                self.available = False
                self.reason = f"not permitted: {exc}; duty cycling instead"
                return 1.0
            self._current_mw = limit
        return limit / self._max_mw

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "active": self.available}
        if self.available:
            info.update(min_w=self._min_mw / 1000, max_w=self._max_mw / 1000,
                        limit_w=None if self._current_mw is None else self._current_mw / 1000)
        else:
            info["reason"] = self.reason
        return info

    def close(self) -> None:
        if self.available and self._original_mw is not None and self._current_mw not in (None, self._original_mw):
            with contextlib.suppress(TelemetryError):
                self._call("restore power limit", "nvmlDeviceSetPowerManagementLimit", self._original_mw)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(TelemetryError):
                self._nvml.shutdown()
        self._handle = None
        self.available = False


def live_chain(backend: BackendModel, knobs: Knobs, actuator: str = "duty",
               gpu_device: int | str | None = None) -> list[Actuator]:
    """The chain for a live miner: as the core's, with a GPU's NVML power limit first."""
    def power_limit() -> Actuator:
        return GpuPowerLimit(0 if gpu_device is None else gpu_device)

    return make_chain(backend, knobs, actuator, power_limit)
