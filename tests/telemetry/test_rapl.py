from __future__ import annotations

import builtins
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hashcore.errors import TelemetryError
from hashcore.telemetry import EnergyMeter, EnergyWindow, choose_meter
from hashcore.telemetry import rapl as rapl_mod
from hashcore.telemetry.rapl import RaplMeter, find_domains, powercap_root

from .conftest import FakeClock
from .powercap_tree import FakePowercap, standard_tree

LABELS = [
    "package-0",
    "package-0/core",
    "package-0/dram",
    "package-1",
    "package-1/core",
    "package-1/dram",
    "psys",
]


@pytest.mark.parametrize("links", [True, False], ids=["sysfs-links", "flat"])
def test_domains_named_by_their_name_files(tmp_path: Path, links: bool) -> None:
    tree = standard_tree(tmp_path, links=links)
    domains = find_domains(tree.root)
    assert [d.label for d in domains] == LABELS
    assert [d.name for d in domains if d.is_package] == ["package-0", "package-1"]
    assert all(d.max_energy_range_uj == 262_143_328_850 for d in domains)
    assert domains[1].parent == "intel-rapl:0"


def test_root_from_argument_env_or_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert powercap_root() == Path("/sys/class/powercap")
    monkeypatch.setenv("HASHCORE_POWERCAP_ROOT", str(tmp_path))
    assert powercap_root() == tmp_path
    assert powercap_root(tmp_path / "x") == tmp_path / "x"


def test_env_root_is_used_by_the_chooser(monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap) -> None:
    monkeypatch.setenv("HASHCORE_POWERCAP_ROOT", str(powercap.root))
    choice = choose_meter("cpu")
    try:
        assert choice.meter.source == "rapl" and not choice.fallback
    finally:
        choice.meter.close()


def test_sum_of_packages_subdomains_not_double_counted(powercap: FakePowercap, clock: FakeClock) -> None:
    meter = RaplMeter.open(powercap.root, clock=clock, poll_s=None)
    assert isinstance(meter, EnergyMeter)
    powercap.advance("intel-rapl:0", 40_000_000)
    powercap.advance("intel-rapl:0:0", 30_000_000)
    powercap.advance("intel-rapl:0:1", 5_000_000)
    powercap.advance("intel-rapl:1", 60_000_000)
    powercap.advance("intel-rapl:1:0", 45_000_000)
    powercap.advance("intel-rapl:2", 150_000_000)
    clock.advance(2.0)
    s = meter.sample()
    assert s.joules == 100.0
    assert s.watts == 50.0
    assert (s.source, s.exact) == ("rapl", True)
    assert meter.detail() == {
        "package-0": 40.0,
        "package-0/core": 30.0,
        "package-0/dram": 5.0,
        "package-1": 60.0,
        "package-1/core": 45.0,
        "package-1/dram": 0.0,
        "psys": 150.0,
    }
    assert "package-0+package-1" in meter.note


def test_wrap_in_the_middle_of_a_run(tmp_path: Path, clock: FakeClock) -> None:
    tree = FakePowercap(tmp_path)
    limit = 65_532_610_987  # an AMD Zen package range
    tree.add("intel-rapl:0", "package-0", limit - 3_000_000, max_uj=limit)
    tree.add("intel-rapl:0:0", "core", 0, max_uj=limit)
    meter = RaplMeter.open(tree.root, clock=clock, poll_s=None)
    seen = []
    for _ in range(10):  # 10 × 1 J per 10 ms = 100 W; wraps after the third step
        tree.advance("intel-rapl:0", 1_000_000)
        clock.advance(0.01)
        seen.append(meter.sample())
    assert tree.raw("intel-rapl:0") < 7_000_000  # it did wrap
    assert [s.joules for s in seen] == [float(i) for i in range(1, 11)]
    assert all(s.watts == pytest.approx(100.0) for s in seen)
    assert meter.exact


def test_many_wraps_over_a_long_run_stay_exact(tmp_path: Path, clock: FakeClock) -> None:
    tree = FakePowercap(tmp_path)
    limit = 1_000_000
    tree.add("intel-rapl:0", "package-0", 999_999, max_uj=limit)
    meter = RaplMeter.open(tree.root, clock=clock, poll_s=None)
    written = 0
    for step in range(1, 200):
        uj = (step * 7919) % limit  # less than one range between readings
        tree.advance("intel-rapl:0", uj)
        written += uj
        s = meter.sample()
        assert s.joules * 1_000_000 == pytest.approx(written, abs=0.5)
        assert s.joules >= 0


def test_missing_max_energy_range(tmp_path: Path, clock: FakeClock) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 5_000_000, max_uj=None)
    meter = RaplMeter.open(tree.root, clock=clock, poll_s=None)
    assert "max_energy_range_uj missing for package-0" in meter.note
    tree.write("intel-rapl:0", 8_000_000)
    first = meter.sample()
    assert (first.joules, first.exact) == (3.0, True)
    tree.write("intel-rapl:0", 2_000_000)  # went back: a wrap of unknown range
    second = meter.sample()
    assert second.joules == 5.0  # only what came after the restart: a lower bound
    assert second.exact is False
    assert "lower bound" in meter.note
    tree.write("intel-rapl:0", 2_500_000)
    assert meter.sample().joules == 5.5


def test_reading_above_the_stated_range_is_never_negative(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 9_000_000, max_uj=1_000_000)  # inconsistent tree
    meter = RaplMeter.open(tree.root, poll_s=None)
    tree.write("intel-rapl:0", 100)
    s = meter.sample()
    assert s.joules == 0.0001
    assert not s.exact


def _deny(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` unreadable: chmod 000, and where that does not stop us (root),
    a patched open() that raises the PermissionError the kernel would."""
    path.chmod(0)
    try:
        path.read_text()
    except PermissionError:
        return
    real_open = builtins.open

    def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.path.realpath(file) == os.path.realpath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(rapl_mod, "open", guarded, raising=False)


def test_unreadable_energy_gives_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap) -> None:
    _deny(monkeypatch, powercap.zones["intel-rapl:0"] / "energy_uj")
    with pytest.raises(TelemetryError) as info:
        RaplMeter.open(powercap.root, poll_s=None)
    message = str(info.value)
    assert "\n" not in message
    assert "energy_uj: permission denied" in message
    for fix in ("run as root", "udev rule", "group"):
        assert fix in message
    assert isinstance(info.value.__cause__, PermissionError)


def test_unreadable_energy_falls_back_to_the_estimate(monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap) -> None:
    _deny(monkeypatch, powercap.zones["intel-rapl:1"] / "energy_uj")
    choice = choose_meter("cpu", powercap_root=powercap.root, tdp_watts_per_core=4.0)
    assert choice.fallback
    assert "permission denied" in choice.reason
    assert (choice.meter.source, choice.meter.exact) == ("estimate", False)
    assert "permission denied" in choice.meter.note  # type: ignore[attr-defined]
    assert choice.meter.sample().source == "estimate"


def test_unreadable_subdomain_is_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch, powercap: FakePowercap) -> None:
    _deny(monkeypatch, powercap.zones["intel-rapl:0:1"] / "energy_uj")
    meter = RaplMeter.open(powercap.root, poll_s=None)
    assert "package-0/dram" not in meter.detail()
    assert "skipped package-0/dram" in meter.note
    assert meter.exact


def test_no_tree_and_empty_tree(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match=r"no RAPL: .*missing"):
        find_domains(tmp_path / "absent")
    with pytest.raises(TelemetryError, match="no intel-rapl"):
        find_domains(tmp_path)
    tree = FakePowercap(tmp_path / "psys-only")
    tree.add("intel-rapl:0", "psys")
    with pytest.raises(TelemetryError, match="no RAPL package domain"):
        RaplMeter.open(tree.root, poll_s=None)


def test_writer_thread_at_known_watts(tmp_path: Path) -> None:
    """A writer advances the counters (and a simulated clock) at 20 W + 10 W while the
    meter samples and polls on its own thread. The energy is checked against the counter
    values actually written, so the test does not depend on scheduling."""
    tree = FakePowercap(tmp_path)
    limit = 30_000_000
    tree.add("intel-rapl:0", "package-0", 20_000_000, max_uj=limit)  # wraps once, mid-run
    tree.add("intel-rapl:0:0", "core", 0)
    tree.add("intel-rapl:1", "package-1", 0)
    sim = FakeClock()
    step_s, steps = 0.005, 250  # 1.25 s simulated: 25 J on package-0, less than its range
    written = {"intel-rapl:0": 0, "intel-rapl:1": 0}
    meter = RaplMeter.open(tree.root, clock=sim, poll_s=0.002)
    window = EnergyWindow(meter, clock=sim).start()

    def writer() -> None:
        for _ in range(steps):
            for key, watts in (("intel-rapl:0", 20), ("intel-rapl:1", 10)):
                uj = round(watts * step_s * 1_000_000)
                tree.advance(key, uj)
                written[key] += uj
            tree.advance("intel-rapl:0:0", 50_000)
            sim.advance(step_s)
            time.sleep(0.0002)

    thread = threading.Thread(target=writer)
    thread.start()
    samples = []
    while thread.is_alive():
        samples.append(meter.sample())
        time.sleep(0.001)
    thread.join()
    reading = window.stop()
    meter.close()

    assert tree.raw("intel-rapl:0") < 20_000_000  # the wrap happened during the run
    assert reading.joules * 1_000_000 == pytest.approx(sum(written.values()), abs=0.5)
    assert reading.joules == pytest.approx(37.5)
    assert reading.seconds == pytest.approx(steps * step_s)
    assert reading.watts == pytest.approx(30.0, rel=1e-9)
    assert reading.exact and reading.source == "rapl"
    joules = [s.joules for s in samples]
    assert joules == sorted(joules) and joules[0] >= 0
    assert meter.detail()["package-0/core"] == pytest.approx(steps * 0.05)
