"""The busy check's arithmetic: the threshold, the CPUs this process can use, the share."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from hashcore.backends import cpushare


@pytest.mark.parametrize(("raw", "expected"), [(None, 0.85), ("0", 0.0), ("0.5", 0.5), ("1", 1.0)])
def test_the_threshold_is_the_default_or_the_environments(monkeypatch, raw, expected) -> None:
    if raw is None:
        monkeypatch.delenv("HASHCORE_BUSY_SHARE", raising=False)
    else:
        monkeypatch.setenv("HASHCORE_BUSY_SHARE", raw)
    assert cpushare.threshold() == expected


@pytest.mark.parametrize("raw", ["lots", "1.5", "-0.1", "nan", ""])
def test_a_bad_threshold_is_named_in_the_log_and_the_default_holds(monkeypatch, caplog, raw: str) -> None:
    monkeypatch.setenv("HASHCORE_BUSY_SHARE", raw)
    with caplog.at_level(logging.WARNING, logger="hashcore.backends.cpushare"):
        assert cpushare.threshold() == cpushare.DEFAULT_THRESHOLD
    assert f"HASHCORE_BUSY_SHARE={raw!r} is not a number from 0 to 1" in caplog.text


def _cpus() -> int:
    return min(os.cpu_count() or 1, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2.0), ("50000 100000\n", 0.5), ("garbage\n", None)],
)
def test_a_cgroup_quota_caps_the_cpus_this_process_can_use(tmp_path: Path, cpu_max: str, expected) -> None:
    """cgroup v2's cpu.max: "quota period" in microseconds, or "max" for none."""
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert cpushare.usable_cpus(path) == (min(_cpus(), expected) if expected is not None else _cpus())


def test_without_a_cgroup_file_the_affinity_and_cpu_count_decide(tmp_path: Path) -> None:
    assert cpushare.usable_cpus(tmp_path / "missing") == _cpus()


def test_the_share_is_cpu_time_over_wall_time_on_the_cores_that_can_be_had(monkeypatch) -> None:
    monkeypatch.setattr(cpushare, "usable_cpus", lambda: 2.0)  # a container given 2 of 16 cores
    assert cpushare.share(2.0, 1.0, 16) == pytest.approx(1.0)  # PoCL's 16 units, all it may use
    assert cpushare.share(1.2, 1.0, 2) == pytest.approx(0.6)
    assert cpushare.share(0.5, 1.0, 1) == pytest.approx(0.5)
