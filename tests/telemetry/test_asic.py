from __future__ import annotations

import pytest

from hashcore.errors import DeviceError, TelemetryError
from hashcore.telemetry import AsicMeter, choose_meter

from .conftest import FakeClock


def test_board_watts_integrated(clock: FakeClock) -> None:
    board = {"watts": 3250.0}
    meter = AsicMeter(lambda: board["watts"], clock=clock, poll_s=3600)
    clock.advance(2.0)
    s = meter.sample()
    assert (s.joules, s.watts, s.source, s.exact) == (6500.0, 3250.0, "asic", True)
    board["watts"] = 3350.0
    clock.advance(1.0)
    assert meter.sample().joules == 9800.0
    assert "reported power" in meter.note
    meter.close()


def test_board_energy_counter_preferred(clock: FakeClock) -> None:
    board = {"joules": 1_000.0}
    meter = AsicMeter(lambda: 1.0, lambda: board["joules"], clock=clock)
    board["joules"] = 1_325.5
    clock.advance(0.1)
    s = meter.sample()
    assert s.joules == 325.5 and s.watts == pytest.approx(3255.0)
    board["joules"] = 10.0  # board reset: counts on from zero, never backwards
    assert meter.sample().joules == 335.5
    assert "energy counter" in meter.note


def test_bad_board_readings() -> None:
    with pytest.raises(TelemetryError, match="reports no power"):
        AsicMeter()
    with pytest.raises(TelemetryError, match="reported power -1"):
        AsicMeter(lambda: -1.0)

    def broken() -> float:
        raise OSError("serial port gone")

    with pytest.raises(TelemetryError, match="serial port gone"):
        AsicMeter(broken)

    def vanished() -> float:
        raise DeviceError("chain 0 stopped answering")

    with pytest.raises(DeviceError):
        AsicMeter(vanished)


def test_chooser_for_asic_backends() -> None:
    choice = choose_meter("asic", board_watts=lambda: 15.0)
    assert not choice.fallback and choice.meter.source == "asic"
    choice.meter.close()
    missing = choose_meter("asic")
    assert missing.fallback and "reports no power" in missing.reason
    assert missing.meter.source == "none"
    broken = choose_meter("asic", board_watts=lambda: float("nan"))
    assert broken.fallback and "reported power nan" in broken.reason
