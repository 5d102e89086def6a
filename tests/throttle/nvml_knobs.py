"""The shared NVML stand-in (:mod:`tests.telemetry.fake_nvml`) with the knobs the throttle
and the sweep set: the board power limit and locked graphics clocks, in NVML's units
(milliwatts, MHz) and with its errors."""

from __future__ import annotations

from types import SimpleNamespace

from tests.telemetry.fake_nvml import (
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    FakeGpu,
    FakeNvml,
    NVMLError,
)


class KnobNvml(FakeNvml):
    """One GPU whose power limit (100-400 W, 300 W as found) and clocks may be set, unless
    ``permitted`` is False (a non-root user), ``supported`` False (no limit range) or
    ``present`` False (no driver)."""

    def __init__(self, *, permitted: bool = True, supported: bool = True, present: bool = True) -> None:
        super().__init__([FakeGpu("NVIDIA RTX A4000", "00000000:01:00.0", 0, 90_000)],
                         init_error=None if present else NVML_ERROR_LIBRARY_NOT_FOUND)
        self.permitted = permitted
        self.supported = supported
        self.limit_mw = 300_000
        self.sets: list[int] = []
        self.locked: list[int] = []
        self.resets = 0

    def _may_set(self, handle: SimpleNamespace) -> None:
        self._gpu(handle)
        if not self.permitted:
            raise NVMLError(NVML_ERROR_NO_PERMISSION)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: SimpleNamespace) -> tuple[int, int]:
        self._gpu(handle)
        if not self.supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return 100_000, 400_000

    def nvmlDeviceGetPowerManagementLimit(self, handle: SimpleNamespace) -> int:
        self._gpu(handle)
        return self.limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: SimpleNamespace, limit_mw: int) -> None:
        self._may_set(handle)
        self.limit_mw = limit_mw
        self.sets.append(limit_mw)

    def nvmlDeviceGetSupportedMemoryClocks(self, handle: SimpleNamespace) -> list[int]:
        self._gpu(handle)
        return [5001, 810]

    def nvmlDeviceGetSupportedGraphicsClocks(self, handle: SimpleNamespace, memory: int) -> list[int]:
        self._gpu(handle)
        return list(range(210, 1981, 15))

    def nvmlDeviceSetGpuLockedClocks(self, handle: SimpleNamespace, low: int, high: int) -> None:
        self._may_set(handle)
        self.locked.append(low)

    def nvmlDeviceResetGpuLockedClocks(self, handle: SimpleNamespace) -> None:
        self._gpu(handle)
        self.resets += 1
