"""The hashcore command as a user runs it: a real process, real flags, real output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest


def hashcore(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hashcore.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_mine_embedded_json_summary_has_the_contract_shape_and_accepted_shares():
    done = hashcore("mine", "--embedded", "--backend", "reference", "--threads", "1", "--difficulty", "0.0001",
                    "--duration", "6", "--json")
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)
    for key in ("hashes", "seconds", "hashrate_hs", "accepted", "rejected", "stale", "blocks", "pools", "backends"):
        assert key in summary
    assert set(summary["blocks"]) >= {"candidates", "accepted"}
    assert summary["accepted"] >= 1 and summary["rejected"] == 0
    (pool,) = summary["pools"]
    assert set(pool) >= {"url", "accepted", "rejected", "stale"} and pool["url"].startswith("stratum+tcp://127.0.0.1:")
    assert summary["backends"]["reference"]["hashes"] == summary["hashes"] > 0


def test_bench_json_has_the_contract_shape_and_a_same_run_baseline():
    done = hashcore("bench", "--backend", "reference", "--seconds", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    for key in ("backend", "threads", "seconds", "hashes", "hashrate_hs", "baseline_hashrate_hs"):
        assert key in report
    assert report["backend"] == "reference" and report["threads"] == 1
    assert report["hashes"] > 0 and report["baseline_hashrate_hs"] > 0


def test_devices_lists_every_backend_with_a_reason():
    done = hashcore("devices", "--json")
    assert done.returncode == 0, done.stderr
    devices = {d["name"]: d for d in json.loads(done.stdout)}
    assert devices["reference"]["available"] is True
    assert all(d["detail"] for d in devices.values())


def test_devices_remeasure_replaces_a_measurement_taken_on_a_busy_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    assert hashcore("devices", "--json").returncode == 0
    cache = tmp_path / "path-choice.json"
    data = json.loads(cache.read_text())
    # What a neighbour that held the core through the whole measurement would leave: 1 H/s.
    data["entries"]["c"]["rates_hs"] = {path: 1.0 for path in data["entries"]["c"]["rates_hs"]}
    cache.write_text(json.dumps(data))
    stale = {d["name"]: d for d in json.loads(hashcore("devices", "--json").stdout)}
    assert stale["c"]["rate"]["per_core_hs"] == 1.0
    # A tune left from a busy machine goes too: the tune cache is dropped with the choices.
    tunes = tmp_path / "opencl-tune.json"
    tunes.write_text(json.dumps({**(json.loads(tunes.read_text()) if tunes.is_file() else {}), "planted": {}}))
    done = hashcore("devices", "--remeasure", "--json")
    assert done.returncode == 0, done.stderr
    fresh = {d["name"]: d for d in json.loads(done.stdout)}
    assert fresh["c"]["rate"]["per_core_hs"] > 1e5
    assert json.loads(cache.read_text())["entries"]["c"]["rates_hs"] != data["entries"]["c"]["rates_hs"]
    assert "planted" not in (json.loads(tunes.read_text()) if tunes.is_file() else {})


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["mine", "--threads", "zero"], "--threads"),
        (["mine", "--duration", "-3"], "--duration"),
        (["bench", "--backend", "nonesuch"], "unknown backend 'nonesuch'"),
        (["mine", "--user", "u"], "--pool"),
        (["mine", "--pool", "http://example.com:80", "--user", "u"], "scheme"),
        (["mine", "--pool", "stratum+tcp://example.com", "--user", "u"], "host:port"),
        (["pool", "--port", "70000"], "--port"),
    ],
)
def test_bad_flags_give_one_clear_line_and_a_nonzero_exit(args, needle):
    done = hashcore(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr


def test_unreachable_pool_gives_one_clear_line_and_a_nonzero_exit():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = hashcore("mine", "--pool", f"stratum+tcp://127.0.0.1:{port}", "--user", "u", "--backend", "reference",
                    "--duration", "20")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"hashcore: error: no pool could be reached (stratum+tcp://127.0.0.1:{port}: "
                      f"Connect call failed ('127.0.0.1', {port}))"]
    assert "Traceback" not in done.stderr
