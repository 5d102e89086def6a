"""``hashcore simulate`` / ``trace`` / ``mine --power-budget`` through cli.main."""

from __future__ import annotations

import json

import pytest

from hashcore import cli

from .conftest import TRACES


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"backend": "reference", "threads": 1, "watts": 4.0, "hashrate_hs": 4.5e5,
                                "energy_source": "estimate"}))
    return str(path)


def test_simulate_the_solar_sample_prints_one_json_line_and_writes_the_plot(tmp_path, model, capsys):
    plot = tmp_path / "day.png"
    code = cli.main(["simulate", "--trace", str(TRACES / "solar-sunny.csv"), "--model", model,
                     "--miner-watts", "5000", "--plot", str(plot), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["absorbed_fraction"] > 0.99 and plot.read_bytes().startswith(b"\x89PNG")


def test_trace_solar_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "day.csv"
    code = cli.main(["trace", "solar", "--lat", "48.1", "--lon", "11.6", "--date", "2024-06-21", "--pv-kw", "10",
                     "--load-kw", "2", "-o", str(out)])
    assert code == 0 and out.exists()


def test_a_bad_trace_is_one_line_on_stderr(tmp_path, model, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1\n0,2\n")
    assert cli.main(["simulate", "--trace", str(bad), "--model", model]) == 1
    assert "line 2" in capsys.readouterr().err


def test_mine_embedded_with_a_power_budget_reports_the_throttle(model, capsys):
    code = cli.main(["mine", "--embedded", "--backend", "reference", "--threads", "1", "--duration", "4",
                     "--power-budget", "2", "--model", model, "--api-listen", "off", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["throttle"]["budget_w"] == 2.0 and data["throttle"]["policy"] == "follow"
