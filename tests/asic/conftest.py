from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends.asic.chips import chip_model
from hashcore.backends.asic.driver import AsicDriver, DriverConfig
from hashcore.backends.asic.emulator import ChainEmulator, EmulatorConfig
from hashcore.backends.asic.faults import Faults

CAPTURE = json.loads((Path(__file__).parent.parent / "vectors" / "bm1366_capture.json").read_text())

#: Tests run emulated chains that report every hash at ticket 1 (see the emulator docstring).
BASE = 2.0**-32


@pytest.fixture(scope="session")
def capture() -> dict[str, Any]:
    return CAPTURE


def fast_config(emulator: ChainEmulator, **overrides: Any) -> DriverConfig:
    """Driver settings for an emulated chain: no pauses, short silences."""
    settings: dict[str, Any] = {
        "ramp_delay_s": 0.0,
        "detect_silence_s": 0.1,
        "census_interval_s": 3600.0,
        "census_window_s": 0.2,
        "known_answer_timeout_s": 3.0,
        "hashrate_per_chip_mhz": emulator.hashrate_per_chip_mhz,
        "base_difficulty": emulator.config.base_difficulty,
    }
    settings.update(overrides)
    return DriverConfig(**settings)


EmulatorFactory = Callable[..., ChainEmulator]
DriverFactory = Callable[..., AsicDriver]


@pytest.fixture
def make_emulator() -> Iterator[EmulatorFactory]:
    started: list[ChainEmulator] = []

    def make(faults: Faults | None = None, **config: Any) -> ChainEmulator:
        config.setdefault("base_difficulty", BASE)
        config.setdefault("hashrate", 100_000.0)
        config.setdefault("scanner", "reference")
        emulator = ChainEmulator(EmulatorConfig(**config), faults).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def make_driver() -> Iterator[DriverFactory]:
    opened: list[AsicDriver] = []

    def make(emulator: ChainEmulator, *, port: str | None = None, **overrides: Any) -> AsicDriver:
        driver = AsicDriver(port or emulator.port, chip_model(emulator.config.chip), fast_config(emulator, **overrides))
        opened.append(driver)
        driver.open()
        return driver

    yield make
    for driver in opened:
        driver.close()
