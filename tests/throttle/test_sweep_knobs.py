"""The sweep's CPU and GPU knobs: cpufreq where writable (a fake sysfs tree here), NVML
locked clocks where permitted (a stand-in for pynvml), and saying why where not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from hashcore.app.sweep import Measurement, cpufreq_writable, sweep_cpu, sweep_gpu


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


def test_a_read_only_cpufreq_is_named(tmp_path: Path):
    policy = cpufreq_tree(tmp_path)
    # A kernel file that refuses writes whoever asks, root included (as sysfs does for a
    # driver that offers no clock control); a chmod alone would not stop root.
    (policy / "scaling_max_freq").unlink()
    (policy / "scaling_max_freq").symlink_to("/proc/version")
    reason = cpufreq_writable([policy])
    assert reason is not None and "scaling_max_freq" in reason and "not writable" in reason


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class FakeNvml:
    NVMLError = NVMLError
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_LIBRARY_NOT_FOUND = 12

    def __init__(self, *, permitted: bool = True, present: bool = True) -> None:
        self.permitted, self.present = permitted, present
        self.locked: list[int] = []
        self.resets = 0

    def nvmlInit(self) -> None:
        if not self.present:
            raise NVMLError(self.NVML_ERROR_LIBRARY_NOT_FOUND)

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        return SimpleNamespace(index=index)

    def nvmlDeviceGetSupportedMemoryClocks(self, handle: SimpleNamespace) -> list[int]:
        return [5001, 810]

    def nvmlDeviceGetSupportedGraphicsClocks(self, handle: SimpleNamespace, memory: int) -> list[int]:
        return list(range(210, 1981, 15))

    def nvmlDeviceSetGpuLockedClocks(self, handle: SimpleNamespace, low: int, high: int) -> None:
        if not self.permitted:
            raise NVMLError(self.NVML_ERROR_NO_PERMISSION)
        self.locked.append(low)

    def nvmlDeviceResetGpuLockedClocks(self, handle: SimpleNamespace) -> None:
        self.resets += 1


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
