from __future__ import annotations

from pathlib import Path

import pytest

from hashcore.errors import ConfigError
from hashcore.telemetry import EnergySample, choose_meter, probe_sources, sample_power, telemetry_report

from .conftest import FakeClock
from .fake_nvml import FakeGpu, FakeNvml
from .powercap_tree import FakePowercap


def nvml() -> FakeNvml:
    return FakeNvml([FakeGpu("NVIDIA A100-SXM4-40GB", "00000000:07:00.0", 5_000, 250_000)])


def test_probe_lists_every_source(powercap: FakePowercap) -> None:
    sources = {s.name: s for s in probe_sources(powercap_root=powercap.root, nvml_lib=nvml())}
    assert list(sources) == ["rapl", "nvml", "asic", "estimate"]
    assert sources["rapl"].found and sources["rapl"].exact
    assert "package-1/dram" in sources["rapl"].parts and "psys" in sources["rapl"].parts
    assert sources["nvml"].found
    assert sources["nvml"].parts == ("0: NVIDIA A100-SXM4-40GB at 00000000:07:00.0 (energy counter)",)
    assert sources["estimate"].found and not sources["estimate"].exact
    assert sources["rapl"].as_dict()["parts"][0] == "package-0"


def test_probe_without_anything(tmp_path: Path) -> None:
    sources = {
        s.name: s
        for s in probe_sources(
            powercap_root=tmp_path / "absent", nvml_lib=FakeNvml([], init_error=12), tdp_watts_per_core=2.0
        )
    }
    assert not sources["rapl"].found and "missing" in sources["rapl"].reason
    assert not sources["nvml"].found and "NVIDIA driver" in sources["nvml"].reason
    assert "2 W/core configured" in sources["estimate"].reason


def test_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="unknown backend kind"):
        choose_meter("fpga")


class CountingMeter:
    source = "estimate"
    exact = False
    note = "estimate (test)"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.joules = 0.0

    def sample(self) -> EnergySample:
        return EnergySample(self.joules, 12.0, self.source, self.exact)

    def close(self) -> None:
        pass


def test_sample_power_returns_data(clock: FakeClock) -> None:
    meter = CountingMeter(clock)

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        meter.joules += 12.0 * seconds

    (series,) = sample_power({"cpu": meter}, seconds=2.0, interval_s=0.5, sleep=sleep, clock=clock)
    assert series.label == "cpu" and series.source == "estimate" and not series.exact
    assert [p.t for p in series.points] == [0.5, 1.0, 1.5, 2.0]
    assert series.points[-1].joules == 24.0


def test_telemetry_report_with_rapl_and_a_gpu(powercap: FakePowercap) -> None:
    lib = nvml()

    def sleep(_: float) -> None:
        powercap.advance("intel-rapl:0", 1_000)
        lib.gpus[0].energy_mj = (lib.gpus[0].energy_mj or 0) + 100

    report = telemetry_report(seconds=1.0, interval_s=0.25, powercap_root=powercap.root, nvml_lib=lib, sleep=sleep)
    live = {s.label: s for s in report.live}
    assert set(live) == {"cpu", "gpu0"}
    assert live["cpu"].source == "rapl" and len(live["cpu"].points) == 4
    assert "package-0/core" in live["cpu"].points[0].parts
    assert live["cpu"].points[-1].joules == pytest.approx(0.004)
    assert live["gpu0"].points[-1].joules == pytest.approx(0.4)
    assert lib.refcount == 0  # every meter closed
    data = report.as_dict()
    assert data["sources"][0]["name"] == "rapl" and data["live"][0]["label"] == "cpu"
