"""The sweep's CPU and GPU knobs: cpufreq where writable (a fake sysfs tree here), NVML
locked clocks where permitted (a stand-in for pynvml), and saying why where not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hashcore.app.sweep import Measurement, cpufreq_writable, sweep_cpu, sweep_gpu

from .nvml_knobs import KnobNvml as FakeNvml


def fake_measure(rates: list[tuple[float, float]]) -> Callable[[float], Measurement]:
    calls = iter(rates)

    def measure(seconds: float) -> Measurement:
        rate, watts = next(calls)
        return rate, watts, "rapl"

    return measure


def cpufreq_tree(root: Path, max_khz: int = 3_600_000) -> Path:
    policy = root / "policy0"
    policy.mkdir(parents=True)
    (policy / "scaling_available_frequencies").write_text("1200000 2400000 3600000\n")
    (policy / "scaling_max_freq").write_text(f"{max_khz}\n")
    (policy / "scaling_cur_freq").write_text(f"{max_khz}\n")
    return policy


def test_a_writable_cpufreq_is_swept_and_restored(tmp_path: Path):
    policy = cpufreq_tree(tmp_path)
    written: list[str] = []
    measure = fake_measure([(1e7, 20.0), (2e7, 35.0), (3e7, 60.0)])

    def measuring(seconds: float) -> Measurement:
        cap = (policy / "scaling_max_freq").read_text().strip()
        written.append(cap)
        (policy / "scaling_cur_freq").write_text(cap)
        return measure(seconds)

    report = sweep_cpu("c", measuring, 0.1, root=str(tmp_path))
    assert written == ["1200000", "2400000", "3600000"]
    assert [p.freq_mhz for p in report.points] == [1200.0, 2400.0, 3600.0]
    assert [p.knob for p in report.points] == ["cpufreq"] * 3
    assert report.points[0].j_per_th == pytest.approx(20.0 / 1e7 * 1e12)
    assert (policy / "scaling_max_freq").read_text().strip() == "3600000"  # restored


def test_without_cpufreq_the_sweep_says_so_and_measures_the_one_point(tmp_path: Path):
    report = sweep_cpu("c", fake_measure([(2e7, 4.0)]), 0.1, root=str(tmp_path / "none"))
    assert len(report.points) == 1 and report.points[0].knob == "none"
    assert "no cpufreq policy" in report.notes[0] and "duty" in report.notes[0]
    assert cpufreq_writable([]) is not None


def test_a_read_only_cpufreq_is_refused_by_its_mode_without_writing(tmp_path: Path):
    policy = cpufreq_tree(tmp_path)
    # sysfs marks an attribute without a store method 0444. Here, in a plain file system,
    # root could still write the file: the refusal must come from the mode, and nothing
    # may be written.
    max_freq = policy / "scaling_max_freq"
    max_freq.chmod(0o444)
    reason = cpufreq_writable([policy])
    assert reason is not None and str(max_freq) in reason and "read-only" in reason and "-r--r--r--" in reason
    assert max_freq.read_text() == "3600000\n"  # untouched: not even its own value written back
    report = sweep_cpu("c", fake_measure([(2e7, 4.0)]), 0.1, root=str(tmp_path))
    assert [p.knob for p in report.points] == ["none"] and "read-only" in report.notes[0]


def test_a_writable_cpufreq_is_accepted_after_writing_back_its_own_value(tmp_path: Path):
    policy = cpufreq_tree(tmp_path)
    max_freq = policy / "scaling_max_freq"
    max_freq.chmod(0o644)
    assert cpufreq_writable([policy]) is None
    assert max_freq.read_text() == "3600000"  # its own value written back (stripped): the write was tried


def test_a_cpufreq_file_that_refuses_the_write_is_named(tmp_path: Path):
    policy = cpufreq_tree(tmp_path)
    # A writable mode, but the write fails (as a driver's store does when it rejects
    # the value): a directory in the file's place fails for root too.
    max_freq = policy / "scaling_max_freq"
    max_freq.unlink()
    max_freq.mkdir()
    reason = cpufreq_writable([policy])
    assert reason is not None and "not writable" in reason and str(max_freq) in reason


def test_permitted_locked_clocks_are_swept_and_reset():
    nvml = FakeNvml()
    report = sweep_gpu("opencl", fake_measure([(1e9, 100.0 + i) for i in range(4)]), 0.1, lib=nvml, steps=4)
    assert nvml.locked == [210, 795, 1395, 1980] and nvml.resets == 1  # lowest to highest
    assert [p.freq_mhz for p in report.points] == [210.0, 795.0, 1395.0, 1980.0]
    assert {p.knob for p in report.points} == {"nvml-locked-clocks"}


def test_refused_locked_clocks_fall_back_to_one_measured_point():
    nvml = FakeNvml(permitted=False)
    report = sweep_gpu("opencl", fake_measure([(1e9, 250.0)]), 0.1, lib=nvml)
    assert len(report.points) == 1 and report.points[0].knob == "none" and nvml.resets == 0
    assert "permission" in report.notes[0]


def test_no_gpu_is_said_plainly():
    report = sweep_gpu("opencl", fake_measure([(1e8, 5.0)]), 0.1, lib=FakeNvml(present=False))
    assert "no NVIDIA GPU" in report.notes[0] and report.points[0].knob == "none"
