"""Actuators: the NVML power limit where it is permitted, a clean refusal where not."""

from __future__ import annotations

import pytest

from hashcore.app.actuators import GpuPowerLimit, live_chain
from hashcore.throttle.actuators import DutyActuator, apply_chain, default_chain
from hashcore.throttle.model import BackendModel
from hashcore.throttle.plant import SimulatedMiner

from .conftest import cpu_fleet
from .nvml_knobs import KnobNvml as FakeNvml


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
    assert nvml.limit_mw == 300_000 and nvml.refcount == 0  # the limit it found is restored


def test_a_refused_power_limit_says_why_and_leaves_the_work_to_duty():
    nvml = FakeNvml(permitted=False)
    limit = GpuPowerLimit(0, lib=nvml)
    assert limit.apply("opencl", 0.5) == 1.0
    info = limit.describe()
    assert not info["active"] and "not permitted" in info["reason"] and "permission" in info["reason"]
    assert limit.apply("opencl", 0.3) == 1.0 and nvml.sets == []
    limit.close()
    assert nvml.refcount == 0


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
