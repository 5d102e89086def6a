from __future__ import annotations

from pathlib import Path

from hashcore.telemetry import (
    AsicMeter,
    EnergyMeter,
    EnergySample,
    EstimateMeter,
    NullMeter,
    RaplMeter,
    note_of,
)

from .powercap_tree import FakePowercap


def test_null_meter_unchanged_and_can_say_why() -> None:
    assert NullMeter().sample() == EnergySample(0.0, 0.0, "none", False)
    assert isinstance(NullMeter(), EnergyMeter)
    assert NullMeter("no GPU energy figure: no NVML").note == "no GPU energy figure: no NVML"


def test_every_meter_keeps_the_contract(powercap: FakePowercap) -> None:
    meters: list[EnergyMeter] = [
        RaplMeter.open(powercap.root, poll_s=None),
        EstimateMeter(1.0, cpu_us=lambda: 0),
        AsicMeter(lambda: 10.0),
        NullMeter(),
    ]
    for meter in meters:
        assert isinstance(meter, EnergyMeter)
        sample = meter.sample()
        assert sample.source == meter.source and sample.exact == meter.exact
        assert note_of(meter)
        meter.close()


def test_note_of_a_meter_without_one() -> None:
    class Bare:
        source = "asic"
        exact = True

        def sample(self) -> EnergySample:
            return EnergySample(0.0, 0.0, "asic", True)

        def close(self) -> None:
            pass

    assert note_of(Bare()) == ""


def test_writer_program_advances_at_the_given_watts(tmp_path: Path) -> None:
    from .powercap_tree import main

    main([str(tmp_path / "pc"), "--watts", "50", "--seconds", "0.05"])
    root = tmp_path / "pc" / "class" / "powercap"
    assert (root / "intel-rapl:0" / "energy_uj").read_text().strip() != "1000000"
