from __future__ import annotations

import pytest

from hashcore.telemetry import (
    BackendEnergy,
    EnergyReading,
    EnergySample,
    EnergyWindow,
    attribute,
    j_per_hash,
    j_per_th,
    total,
)

from .conftest import FakeClock


class StepMeter:
    source = "rapl"
    exact = True
    note = "RAPL package-0"

    def __init__(self) -> None:
        self.joules = 50.0

    def sample(self) -> EnergySample:
        return EnergySample(self.joules, 0.0, self.source, self.exact)

    def close(self) -> None:
        pass


def test_units() -> None:
    assert j_per_hash(30.0, 10**9) == 3e-8
    assert j_per_th(30.0, 10**9) == pytest.approx(30_000.0)
    assert j_per_hash(1.0, 0) is None and j_per_th(1.0, 0) is None


def test_window_covers_the_interval(clock: FakeClock) -> None:
    meter = StepMeter()
    with EnergyWindow(meter, clock=clock) as window:
        meter.joules += 120.0
        clock.advance(4.0)
    reading = window.reading
    assert reading is not None
    assert (reading.joules, reading.seconds, reading.watts) == (120.0, 4.0, 30.0)
    assert (reading.source, reading.exact, reading.note) == ("rapl", True, "RAPL package-0")
    assert reading.j_per_th(4 * 10**9) == pytest.approx(30_000.0)


def test_window_read_leaves_it_open(clock: FakeClock) -> None:
    meter = StepMeter()
    window = EnergyWindow(meter, clock=clock).start()
    meter.joules += 10.0
    clock.advance(1.0)
    assert window.read().joules == 10.0
    meter.joules += 5.0
    clock.advance(1.0)
    assert window.stop().watts == 7.5


def test_window_not_exact_if_either_end_is_not() -> None:
    meter = StepMeter()
    window = EnergyWindow(meter).start()
    meter.exact = False
    assert window.stop().exact is False


def test_split_by_cpu_time() -> None:
    reading = EnergyReading(100.0, 10.0, "rapl", True, "RAPL package-0")
    entries = attribute(reading, {"c": 3 * 10**9, "numba": 10**9}, cpu_us={"c": 30_000_000, "numba": 10_000_000})
    c, numba = entries
    assert (c.joules, numba.joules) == (75.0, 25.0)
    assert (c.share, numba.share) == (0.75, 0.25)
    assert c.j_per_hash == 25e-9 and numba.j_per_th == pytest.approx(25_000.0)
    assert c.watts == 7.5
    assert "split by CPU time: c 75.0%, numba 25.0%" in c.note
    assert c.note.startswith("RAPL package-0; one rapl counter")
    assert total(entries).joules == 100.0


def test_split_evenly_without_cpu_time_and_says_so() -> None:
    reading = EnergyReading(90.0, 3.0, "estimate", False)
    entries = attribute(reading, {"a": 1, "b": 1, "c": 1}, cpu_us={"a": 0, "b": 0, "c": 0})
    assert [e.joules for e in entries] == [30.0, 30.0, 30.0]
    assert "evenly" in entries[0].note and not entries[0].exact
    with pytest.raises(ValueError, match="no CPU time given for b"):
        attribute(reading, {"a": 1, "b": 1}, cpu_us={"a": 1})


def test_single_backend_gets_everything() -> None:
    reading = EnergyReading(12.0, 2.0, "nvml", True, "NVML H100")
    (entry,) = attribute(reading, {"opencl": 4 * 10**9})
    assert entry.share == 1.0 and entry.joules == 12.0 and entry.note == "NVML H100"
    fields = entry.as_dict()
    for key in ("joules", "watts", "j_per_hash", "j_per_th", "energy_source", "energy_exact"):
        assert key in fields
    assert fields["j_per_th"] == pytest.approx(3000.0)
    assert (fields["energy_source"], fields["energy_exact"]) == ("nvml", True)


def test_total_across_sources() -> None:
    a = BackendEnergy("c", 10, 5.0, 2.0, "rapl", True, note="RAPL")
    b = BackendEnergy("opencl", 30, 15.0, 2.5, "nvml", True, note="NVML")
    t = total([a, b])
    assert (t.hashes, t.joules, t.seconds, t.source, t.exact) == (40, 20.0, 2.5, "nvml+rapl", True)
    assert total([a, BackendEnergy("x", 1, 1.0, 1.0, "estimate", False)]).exact is False
    assert total([]).j_per_hash is None
