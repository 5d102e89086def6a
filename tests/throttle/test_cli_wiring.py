"""``hashcore simulate`` / ``trace`` / ``mine --power-budget`` through cli.main, once cli.py
wires hashcore.throttle.commands in (skipped until it does)."""

from __future__ import annotations

import json

import pytest

from hashcore import cli

from .conftest import TRACES


def _wired(command: str) -> None:
    parser = cli.build_parser()
    choices = next(a for a in parser._subparsers._group_actions).choices  # type: ignore[union-attr]
    if command not in (choices or {}):
        pytest.skip(f"cli.py does not wire 'hashcore {command}' yet")


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"backend": "reference", "threads": 1, "watts": 4.0, "hashrate_hs": 4.5e5,
                                "energy_source": "estimate"}))
    return str(path)


def test_simulate_the_solar_sample_prints_one_json_line_and_writes_the_plot(tmp_path, model, capsys):
    _wired("simulate")
    plot = tmp_path / "day.png"
    code = cli.main(["simulate", "--trace", str(TRACES / "solar-sunny.csv"), "--model", model,
                     "--miner-watts", "5000", "--plot", str(plot), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["absorbed_fraction"] > 0.99 and plot.exists()


def test_trace_solar_writes_a_trace(tmp_path, capsys):
    _wired("trace")
    out = tmp_path / "day.csv"
    code = cli.main(["trace", "solar", "--lat", "48.1", "--lon", "11.6", "--date", "2024-06-21", "--pv-kw", "10",
                     "--load-kw", "2", "-o", str(out)])
    assert code == 0 and out.exists()


def test_a_bad_trace_is_one_line_on_stderr(tmp_path, model, capsys):
    _wired("simulate")
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1\n0,2\n")
    assert cli.main(["simulate", "--trace", str(bad), "--model", model]) == 1
    assert "line 2" in capsys.readouterr().err


def test_mine_embedded_with_a_power_budget_reports_the_throttle(model, capsys):
    parser = cli.build_parser()
    if "--power-budget" not in parser.format_help() and "--power-budget" not in _mine_help(parser):
        pytest.skip("cli.py does not wire 'hashcore mine --power-budget' yet")
    code = cli.main(["mine", "--embedded", "--backend", "reference", "--threads", "1", "--duration", "4",
                     "--power-budget", "2", "--model", model, "--api-listen", "off", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["throttle"]["budget_w"] == 2.0 and data["throttle"]["policy"] == "follow"


def _mine_help(parser) -> str:
    choices = next(a for a in parser._subparsers._group_actions).choices
    return choices["mine"].format_help()
