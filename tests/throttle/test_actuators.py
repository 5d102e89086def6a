"""Actuators: the NVML power limit where it is permitted, a clean refusal where not."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hashcore.app.actuators import GpuPowerLimit, live_chain
from hashcore.throttle.actuators import DutyActuator, apply_chain, default_chain
from hashcore.throttle.model import BackendModel
from hashcore.throttle.plant import SimulatedMiner

from .conftest import cpu_fleet


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class FakeNvml:
    """The ``pynvml`` calls of a GPU power limit, with NVML's milliwatts and errors."""

    NVMLError = NVMLError
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_NOT_SUPPORTED = 3

    def __init__(self, *, permitted: bool = True, supported: bool = True) -> None:
        self.permitted = permitted
        self.supported = supported
        self.limit_mw = 300_000
        self.sets: list[int] = []
        self.live = 0

    def nvmlInit(self) -> None:
        self.live += 1

    def nvmlShutdown(self) -> None:
        self.live -= 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        return SimpleNamespace(index=index)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: SimpleNamespace) -> tuple[int, int]:
        if not self.supported:
            raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return 100_000, 400_000

    def nvmlDeviceGetPowerManagementLimit(self, handle: SimpleNamespace) -> int:
        return self.limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: SimpleNamespace, limit_mw: int) -> None:
        if not self.permitted:
            raise NVMLError(self.NVML_ERROR_NO_PERMISSION)
        self.limit_mw = limit_mw
        self.sets.append(limit_mw)


def test_a_permitted_power_limit_takes_the_fraction_down_to_its_minimum_and_duty_does_the_rest():
    nvml = FakeNvml()
    limit = GpuPowerLimit(0, lib=nvml)
    assert limit.describe()["active"] and limit.describe()["max_w"] == 400.0
    assert limit.apply("opencl", 0.5) == 0.5 and nvml.limit_mw == 200_000
    plant = SimulatedMiner(cpu_fleet())  # stands in for the engine's duty knob
    realised = apply_chain([limit, DutyActuator(plant)], "c", 0.1)
    assert nvml.limit_mw == 100_000 and plant.duty("c") == pytest.approx(0.4)  # 25% limit x 40% duty
    assert realised == pytest.approx(0.1)
    limit.close()
    assert nvml.limit_mw == 300_000 and nvml.live == 0  # the limit it found is restored


def test_a_refused_power_limit_says_why_and_leaves_the_work_to_duty():
    nvml = FakeNvml(permitted=False)
    limit = GpuPowerLimit(0, lib=nvml)
    assert limit.apply("opencl", 0.5) == 1.0
    info = limit.describe()
    assert not info["active"] and "not permitted" in info["reason"] and "permission" in info["reason"]
    assert limit.apply("opencl", 0.3) == 1.0 and nvml.sets == []
    limit.close()
    assert nvml.live == 0


def test_a_gpu_without_a_power_limit_is_not_used():
    limit = GpuPowerLimit(0, lib=FakeNvml(supported=False))
    assert not limit.describe()["active"] and "not supported" in limit.describe()["reason"]


def test_here_without_a_gpu_the_power_limit_reports_not_permitted_cleanly():
    limit = GpuPowerLimit(0)  # the real pynvml: no driver on a CPU host
    try:
        info = limit.describe()
        if info["active"]:
            pytest.skip("this host has a GPU whose power limit may be set; not touching it")
        assert info["reason"].startswith("not permitted here: ")
        assert limit.apply("opencl", 0.5) == 1.0
    finally:
        limit.close()


def test_default_chains_by_kind():
    plant = SimulatedMiner(cpu_fleet())
    assert [a.name for a in default_chain(BackendModel("c", 1, 1, kind="cpu"), plant)] == ["threads", "duty"]
    assert [a.name for a in default_chain(BackendModel("asic", 1, 1, kind="asic"), plant)] == ["duty"]
    gpu = BackendModel("opencl", 1, 1, kind="gpu")
    assert [a.name for a in default_chain(gpu, plant)] == ["duty"]  # the core sets no real device
    live = live_chain(gpu, plant)
    assert [a.name for a in live] == ["gpu-power-limit", "duty"]
    for actuator in live:
        actuator.close()
