"""``hashcore simulate`` with the green flags, ``hashcore report`` and ``hashcore bench
--sweep`` through cli.main."""

from __future__ import annotations

import json
from pathlib import Path

from hashcore import cli

TRACES = Path(__file__).resolve().parents[2] / "traces"


def test_simulate_a_solar_day_with_dvfs_a_battery_and_a_forecast_prints_the_green_keys(tmp_path, capsys):
    code = cli.main(["simulate", "--trace", str(TRACES / "solar-sunny.csv"), "--device-model", "asic-bm1366",
                     "--miner-watts", "3000", "--actuator", "dvfs", "--forecast", "clearsky", "--battery-kwh", "10",
                     "--battery-kw", "3", "--tick", "10", "--run", str(tmp_path / "run"), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["curtailed_fraction"] < 0.02 and data["battery"]["conservation_error_j"] == 0.0
    assert (tmp_path / "run" / "account.csv").exists()


def test_report_renders_a_run(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,watts\n0,500\n600,1500\n1200,0\n1800,0\n")
    assert cli.main(["simulate", "--trace", str(trace), "--device-model", "cpu", "--miner-watts", "1000",
                     "--tick", "10", "--run", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "run"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Path(data["path"]).read_text().startswith("<!doctype html>")


def test_bench_sweep_json_lists_the_emulated_chips_operating_points(capsys):
    code = cli.main(["bench", "--backend", "asic", "--asic-port", "emulator", "--sweep", "--sweep-mhz", "250,485",
                     "--sweep-seconds", "0.3", "--json"])
    assert code == 0
    points = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["freq_mhz"] for p in points] == [250.0, 485.0]
    for key in ("freq_mhz", "voltage_mv", "hashrate_hs", "watts", "j_per_th", "energy_source"):
        assert key in points[0]
