"""The energy ledger: which meter reads which backend, the split of a shared CPU counter,
J/TH per backend, and estimates that say they are estimates.

The CPU backends are real ones (C and reference); RAPL is a sysfs-shaped powercap tree in
a temporary directory (tests/telemetry/powercap_tree.py) whose counters the tests advance.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hashcore.backends.base import open_backend
from hashcore.metering import EnergyLedger, MeterSettings
from hashcore.telemetry import ROOT_ENV, EstimateMeter, process_tree_cpu_us
from hashcore.work import DIFF1_TARGET, Work
from tests.telemetry.powercap_tree import TYPICAL_MAX_UJ, FakePowercap, standard_tree

J = 1_000_000  # microjoules


class Board:
    """An ASIC board as the ledger sees one: its kind, and a cumulative energy counter."""

    energy_kind = "asic"
    name = "asic"

    def __init__(self, joules: float) -> None:
        self.joules = joules

    def energy_options(self) -> dict[str, object]:
        return {"board_watts": None, "board_joules": lambda: self.joules}


class Gpu:
    """A GPU backend on a bus id no machine has."""

    energy_kind = "gpu"
    name = "opencl"

    def energy_options(self) -> dict[str, object]:
        return {"gpu": "0000:ff:1f.7"}


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ROOT_ENV, raising=False)


@pytest.fixture(scope="module")
def cpu_backends():
    backends = {"c": open_backend("c"), "reference": open_backend("reference")}
    yield backends
    for backend in backends.values():
        backend.close()


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return standard_tree(tmp_path)


@pytest.fixture
def ledgers():
    opened: list[EnergyLedger] = []

    def open_ledger(*args, **kwargs) -> EnergyLedger:
        ledger = EnergyLedger(*args, **kwargs)
        opened.append(ledger)
        ledger.start()
        return ledger

    yield open_ledger
    for ledger in opened:
        ledger.close()


def test_cpu_backends_share_the_rapl_packages_split_by_cpu_time(cpu_backends, powercap, ledgers):
    ledger = ledgers(cpu_backends, MeterSettings(powercap_root=str(powercap.root)))
    powercap.advance("intel-rapl:0", 25 * J)
    powercap.advance("intel-rapl:1", 15 * J)
    powercap.advance("intel-rapl:0:0", 9 * J)  # core and psys are parts, never added to the packages
    powercap.advance("intel-rapl:2", 70 * J)
    ledger.add_cpu_time("c", 3_000_000)
    ledger.add_cpu_time("reference", 1_000_000)
    per_backend, overall = ledger.report({"c": 4 * 10**9, "reference": 10**6})
    c, reference = per_backend["c"], per_backend["reference"]
    assert (c.joules, reference.joules) == (pytest.approx(30.0), pytest.approx(10.0))
    assert (c.share, reference.share) == (0.75, 0.25)
    assert c.j_per_th == pytest.approx(30.0 * 10**12 / (4 * 10**9))  # 7500 J/TH
    assert reference.j_per_th == pytest.approx(10.0 * 10**12 / 10**6)
    assert (c.source, c.exact, reference.source, reference.exact) == ("rapl", True, "rapl", True)
    assert "RAPL package-0+package-1" in c.note and "split by CPU time: c 75.0%, reference 25.0%" in c.note
    assert (overall.backend, overall.source, overall.exact) == ("total", "rapl", True)
    assert overall.hashes == 4 * 10**9 + 10**6
    assert overall.joules == pytest.approx(40.0)
    assert overall.j_per_th == pytest.approx(40.0 * 10**12 / (4 * 10**9 + 10**6))


def test_reports_are_cumulative_from_start(cpu_backends, powercap, ledgers):
    ledger = ledgers({"c": cpu_backends["c"]}, MeterSettings(powercap_root=str(powercap.root)))
    powercap.advance("intel-rapl:0", 5 * J)
    first, _ = ledger.report({"c": 10**9})
    powercap.advance("intel-rapl:1", 7 * J)
    second, overall = ledger.report({"c": 3 * 10**9})
    assert first["c"].joules == pytest.approx(5.0)
    assert second["c"].joules == pytest.approx(12.0) == overall.joules
    assert second["c"].share == 1.0 and "split" not in second["c"].note  # one backend has it all
    assert second["c"].j_per_th == pytest.approx(4000.0)


def test_with_no_cpu_time_recorded_the_counter_is_split_evenly(cpu_backends, powercap, ledgers):
    ledger = ledgers(cpu_backends, MeterSettings(powercap_root=str(powercap.root)))
    powercap.advance("intel-rapl:0", 8 * J)
    per_backend, _ = ledger.report({"c": 100})  # no hash count for reference: zero, no J/TH
    assert per_backend["c"].joules == pytest.approx(4.0) == per_backend["reference"].joules
    assert "split evenly (no CPU time recorded)" in per_backend["c"].note
    assert per_backend["reference"].hashes == 0 and per_backend["reference"].j_per_th is None


def test_cpu_time_from_many_workers_adds_up(cpu_backends, powercap, ledgers):
    ledger = ledgers(cpu_backends, MeterSettings(powercap_root=str(powercap.root)))

    def worker(name: str) -> None:
        for _ in range(2000):
            ledger.add_cpu_time(name, 1)

    threads = [threading.Thread(target=worker, args=("c" if i < 4 else "reference",)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    powercap.advance("intel-rapl:0", 10 * J)
    per_backend, _ = ledger.report({"c": 1, "reference": 1})
    assert (per_backend["c"].share, per_backend["reference"].share) == (0.8, 0.2)


def test_a_package_counter_that_wraps_is_counted_across_the_wrap(cpu_backends, tmp_path, ledgers):
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", TYPICAL_MAX_UJ - 2 * J, max_uj=TYPICAL_MAX_UJ)
    ledger = ledgers({"c": cpu_backends["c"]}, MeterSettings(powercap_root=str(tree.root)))
    tree.advance("intel-rapl:0", 12 * J)
    assert tree.raw("intel-rapl:0") < 12 * J  # it did wrap
    per_backend, overall = ledger.report({"c": 10**9})
    assert per_backend["c"].joules == pytest.approx(12.0, abs=1e-6)
    assert per_backend["c"].exact and overall.exact


def test_a_wrap_with_no_known_range_is_a_lower_bound_and_says_so(cpu_backends, tmp_path, ledgers):
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", TYPICAL_MAX_UJ - 2 * J, max_uj=None)
    ledger = ledgers({"c": cpu_backends["c"]}, MeterSettings(powercap_root=str(tree.root)))
    tree.advance("intel-rapl:0", 12 * J)
    per_backend, overall = ledger.report({"c": 10**9})
    entry = per_backend["c"]
    assert entry.joules == pytest.approx(10.0 - 1e-6)  # what came after the restart only
    assert not entry.exact and not overall.exact
    assert "energy is a lower bound" in entry.note


def test_without_rapl_the_estimate_is_taken_and_labelled_as_one(cpu_backends, tmp_path, ledgers):
    settings = MeterSettings(powercap_root=str(tmp_path / "no-powercap"), tdp_watts_per_core=10.0)
    before = process_tree_cpu_us()
    ledger = ledgers({"reference": cpu_backends["reference"]}, settings)
    cpu_backends["reference"].scan(_any_work(), 0, 20_000, 16)  # real CPU time to estimate from
    per_backend, overall = ledger.report({"reference": 20_000})
    spent_us = process_tree_cpu_us() - before
    entry = per_backend["reference"]
    assert (entry.source, entry.exact, overall.source, overall.exact) == ("estimate", False, "estimate", False)
    assert entry.note.startswith("estimate, not measured: CPU time of this process × 10 W/core (configured)")
    assert "used because" in entry.note and str(tmp_path / "no-powercap") in entry.note
    assert 0 < entry.joules <= spent_us * 10 / 1e6
    row = entry.as_dict()
    assert (row["energy_source"], row["energy_exact"]) == ("estimate", False)
    assert row["j_per_th"] == pytest.approx(entry.joules * 10**12 / 20_000)


def test_a_given_cpu_meter_is_used_instead_of_probing(cpu_backends, tmp_path, ledgers):
    cpu_us = [1_000_000]
    meter = EstimateMeter(4.0, cpu_us=lambda: cpu_us[0], model="test")
    ledger = ledgers(cpu_backends, MeterSettings(powercap_root=str(tmp_path / "absent")), cpu_meter=meter)
    cpu_us[0] += 2_500_000  # 2.5 CPU seconds at 4 W a core: 10 J
    ledger.add_cpu_time("c", 1)
    ledger.add_cpu_time("reference", 4)
    per_backend, overall = ledger.report({"c": 1, "reference": 1})
    assert overall.joules == pytest.approx(10.0)
    assert (per_backend["c"].joules, per_backend["reference"].joules) == (pytest.approx(2.0), pytest.approx(8.0))
    assert per_backend["c"].note.startswith("estimate, not measured")


def test_each_other_backend_gets_a_meter_of_its_own(cpu_backends, powercap, ledgers):
    board = Board(joules=1000.0)
    ledger = ledgers({"c": cpu_backends["c"], "asic": board}, MeterSettings(powercap_root=str(powercap.root)))
    board.joules = 1500.0
    powercap.advance("intel-rapl:1", 20 * J)
    ledger.add_cpu_time("c", 5_000)
    ledger.add_cpu_time("asic", 5_000)  # a board's own meter is not split by host CPU time
    per_backend, overall = ledger.report({"c": 10**9, "asic": 10**12})
    asic, c = per_backend["asic"], per_backend["c"]
    assert (asic.joules, asic.share, asic.source, asic.exact) == (pytest.approx(500.0), 1.0, "asic", True)
    assert asic.j_per_th == pytest.approx(500.0)
    assert asic.note == "ASIC board: reported energy counter"
    assert (c.joules, c.share, c.source) == (pytest.approx(20.0), 1.0, "rapl")
    assert (overall.joules, overall.source, overall.exact) == (pytest.approx(520.0), "asic+rapl", True)


def test_a_gpu_with_no_energy_figure_is_reported_as_none(cpu_backends, powercap, ledgers):
    ledger = ledgers({"c": cpu_backends["c"], "opencl": Gpu()}, MeterSettings(powercap_root=str(powercap.root)))
    powercap.advance("intel-rapl:0", 3 * J)
    per_backend, overall = ledger.report({"c": 10, "opencl": 10**9})
    gpu = per_backend["opencl"]
    assert (gpu.joules, gpu.source, gpu.exact) == (0.0, "none", False)
    assert gpu.note.startswith("no GPU energy figure: ")
    assert (overall.joules, overall.source, overall.exact) == (pytest.approx(3.0), "none+rapl", False)


def _any_work() -> Work:
    return Work.from_header(bytes(76), DIFF1_TARGET)
