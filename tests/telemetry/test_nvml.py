from __future__ import annotations

import pynvml
import pytest

from hashcore.errors import ConfigError, TelemetryError
from hashcore.telemetry import CounterUnsupported, choose_meter, list_gpus, pci_bus_id
from hashcore.telemetry.nvml import Nvml, NvmlMeter, normalize_bus_id

from . import fake_nvml
from .conftest import FakeClock
from .fake_nvml import FakeGpu, FakeNvml

H100 = "00000000:3B:00.0"
P100 = "00000000:AF:00.0"


def volta_and_pascal() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu("NVIDIA H100 80GB HBM3", H100, energy_mj=123_456_789, power_mw=350_000),
            FakeGpu("Tesla P100-PCIE-16GB", P100, energy_mj=None, power_mw=100_000),
        ]
    )


def test_stand_in_has_the_shape_of_pynvml() -> None:
    for name in dir(FakeNvml):
        if name.startswith(("nvml", "NVML")):
            assert hasattr(pynvml, name), name
            if name.startswith("NVML_"):
                assert getattr(pynvml, name) == getattr(fake_nvml, name), name
    err = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert isinstance(err, pynvml.NVMLError) and err.value == 3


def test_energy_counter_in_millijoules(clock: FakeClock) -> None:
    lib = volta_and_pascal()
    meter = NvmlMeter(0, lib=lib, clock=clock)
    assert "total-energy counter" in meter.note and "H100" in meter.note
    lib.gpus[0].energy_mj = 123_456_789 + 700_000  # 700 J over 2 s
    clock.advance(2.0)
    s = meter.sample()
    assert (s.joules, s.watts, s.source, s.exact) == (700.0, 350.0, "nvml", True)
    meter.close()
    assert lib.refcount == 0


def test_pre_volta_integrates_power(clock: FakeClock) -> None:
    lib = volta_and_pascal()
    meter = NvmlMeter(1, lib=lib, clock=clock, poll_s=3600)  # the test takes the readings
    assert "power integrated" in meter.note and "no energy counter" in meter.note
    clock.advance(2.0)
    assert meter.sample().joules == 200.0  # 100 W for 2 s
    lib.gpus[1].power_mw = 300_000
    clock.advance(1.0)
    s = meter.sample()
    assert s.joules == 400.0  # trapezoid from 100 W to 300 W over 1 s
    assert s.watts == 200.0 and s.exact
    meter.close()
    assert lib.refcount == 0


@pytest.mark.parametrize("bus", ["0000:af:00.0", "AF:00.0", P100, "00000000:af:00"])
def test_gpu_by_pci_bus_id(bus: str) -> None:
    meter = NvmlMeter(bus, lib=volta_and_pascal(), poll_s=3600)
    try:
        assert meter.gpu_name.startswith("Tesla P100") and meter.bus_id == P100
    finally:
        meter.close()


def test_bus_id_helpers() -> None:
    assert pci_bus_id(0, 0x3B, 0) == H100
    assert normalize_bus_id("0000:3b:00.0") == H100
    with pytest.raises(ConfigError):
        normalize_bus_id("gpu-one")


def test_index_given_as_text() -> None:
    meter = NvmlMeter("1", lib=volta_and_pascal(), poll_s=3600)
    assert meter.bus_id == P100
    meter.close()


def test_unknown_gpu_is_a_telemetry_error_and_shuts_nvml_down() -> None:
    lib = volta_and_pascal()
    with pytest.raises(TelemetryError, match="no such GPU") as info:
        NvmlMeter("0000:01:00.0", lib=lib)
    assert isinstance(info.value.__cause__, fake_nvml.NVMLError)
    with pytest.raises(TelemetryError, match="no such GPU"):
        NvmlMeter(7, lib=lib)
    assert lib.refcount == 0


def test_errors_translated_in_one_place() -> None:
    nvml = Nvml(volta_and_pascal())
    nvml.init()
    handle = nvml.handle(1)
    with pytest.raises(CounterUnsupported, match="not supported by this GPU") as info:
        nvml.total_energy_mj(handle)
    assert info.value.__cause__.value == fake_nvml.NVML_ERROR_NOT_SUPPORTED  # type: ignore[union-attr]
    nvml.shutdown()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND, "install the NVIDIA driver"),
        (fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver is not loaded"),
        (fake_nvml.NVML_ERROR_NO_PERMISSION, "permission denied"),
    ],
)
def test_init_errors_fall_back_with_the_reason(code: int, words: str) -> None:
    lib = FakeNvml([], init_error=code)
    with pytest.raises(TelemetryError, match=words):
        NvmlMeter(0, lib=lib)
    choice = choose_meter("gpu", nvml_lib=lib)
    assert choice.fallback and words in choice.reason
    assert (choice.meter.source, choice.meter.exact) == ("none", False)
    assert choice.meter.sample().joules == 0.0


def test_gpu_lost_mid_run() -> None:
    lib = volta_and_pascal()
    meter = NvmlMeter(0, lib=lib)
    lib.gpus[0].lost = True
    with pytest.raises(TelemetryError, match="fallen off the bus"):
        meter.sample()
    meter.close()


def test_list_gpus() -> None:
    lib = volta_and_pascal()
    gpus = list_gpus(lib)
    assert [(g.index, g.bus_id, g.energy_counter) for g in gpus] == [(0, H100, True), (1, P100, False)]
    assert lib.refcount == 0


def test_chooser_gives_nvml_for_gpu_backends() -> None:
    choice = choose_meter("gpu", gpu=P100, nvml_lib=volta_and_pascal())
    try:
        assert not choice.fallback and choice.meter.source == "nvml"
    finally:
        choice.meter.close()


def test_real_pynvml_without_a_driver_says_so() -> None:
    try:
        meter = NvmlMeter(0)
    except TelemetryError as exc:
        assert "NVML init" in str(exc)
        assert isinstance(exc.__cause__, pynvml.NVMLError)
    else:
        meter.close()
        pytest.skip("this machine has an NVIDIA GPU with a driver")
