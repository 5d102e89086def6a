"""Energy in every report: measured from a powercap-shaped tree, or an estimate that says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import hashcore, last_json

ENERGY_KEYS = ("joules", "watts", "j_per_hash", "j_per_th", "energy_source", "energy_exact")


def test_bench_json_without_rapl_reports_a_labelled_estimate(tmp_path):
    empty = tmp_path / "no-powercap"
    empty.mkdir()
    done = hashcore("bench", "--backend", "reference", "--seconds", "1", "--json", "--powercap-root", str(empty))
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    for key in ENERGY_KEYS:
        assert key in report
    assert report["energy_source"] == "estimate" and report["energy_exact"] is False
    assert "estimate, not measured" in report["energy_note"] and "no RAPL" in report["energy_note"]
    assert report["joules"] > 0 and report["j_per_th"] == pytest.approx(report["joules"] / report["hashes"] * 1e12)


def test_bench_json_against_a_live_powercap_tree_reports_the_writers_watts(tmp_path):
    base = tmp_path / "powercap"
    writer = subprocess.Popen([sys.executable, "-m", "tests.telemetry.powercap_tree", str(base), "--watts", "40"],
                              cwd=Path(__file__).parents[1])
    try:
        root = base / "class" / "powercap"
        deadline = time.monotonic() + 10
        while not (root / "intel-rapl:1" / "energy_uj").exists():
            assert time.monotonic() < deadline, "the powercap writer did not start"
            time.sleep(0.05)
        env = {**os.environ, "HASHCORE_POWERCAP_ROOT": str(root)}
        done = subprocess.run([sys.executable, "-m", "hashcore.cli", "bench", "--backend", "reference", "--seconds",
                               "2", "--json"], capture_output=True, text=True, timeout=120, env=env)
    finally:
        writer.terminate()
        writer.wait()
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    assert report["energy_source"] == "rapl" and report["energy_exact"] is True
    # The writer advances the counters at 40 W of wall-clock time; allow for scheduling jitter.
    assert report["watts"] == pytest.approx(40.0, rel=0.25)


def test_mine_json_has_energy_per_backend_and_in_total_with_the_source():
    done = hashcore("mine", "--embedded", "--backend", "reference", "--threads", "1", "--difficulty", "0.0001",
                    "--duration", "4", "--json")
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)
    for key in ENERGY_KEYS:
        assert key in summary
        assert key in summary["backends"]["reference"]
    assert summary["energy_source"] in ("rapl", "estimate")
    assert summary["energy_exact"] is (summary["energy_source"] == "rapl")
    assert summary["backends"]["reference"]["joules"] == pytest.approx(summary["joules"])


def test_telemetry_command_lists_sources_and_live_power():
    done = hashcore("telemetry", "--seconds", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    names = {s["name"] for s in report["sources"]}
    assert names == {"rapl", "nvml", "asic", "estimate"}
    assert report["live"] and report["live"][0]["points"]
