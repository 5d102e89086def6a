"""What ``simulate``, ``trace`` and ``mine --power-budget`` do: the command line's flags
turned into the application's options, then reports and plans out, nothing printed."""

from __future__ import annotations

import argparse
import json

import pytest

from hashcore.app.budget import budget_signal, plan_budget
from hashcore.app.inputs import load_trace
from hashcore.app.simulate import run_simulate
from hashcore.app.sources import LiveSource
from hashcore.app.trace import run_trace
from hashcore.cli.budget import add_budget_arguments, format_status
from hashcore.cli.mine import budget_options
from hashcore.cli.simulate import add_simulate_arguments, simulate_options
from hashcore.cli.trace import add_trace_arguments, trace_options
from hashcore.errors import ConfigError
from hashcore.throttle.signals import ConstantSignal, Trace

from .conftest import TRACES

REQUIRED_KEYS = {"energy_j", "energy_over_budget_j", "floor_energy_j", "renewable_available_j",
                 "renewable_absorbed_j", "absorbed_fraction", "tracking_error_mean_w", "tracking_error_p95_w",
                 "settle_time_s", "co2_g", "hashes"}


#: Each command's flags, and how the command line turns them into the application's options.
OPTIONS = {add_simulate_arguments: simulate_options, add_trace_arguments: trace_options,
           add_budget_arguments: budget_options}


def parse(add, argv: list[str]):
    """The options ``argv`` gives the command whose flags ``add`` defines."""
    parser = argparse.ArgumentParser()
    add(parser)
    return OPTIONS[add](parser.parse_args(argv))


@pytest.fixture
def model(tmp_path):
    """A model file as 'hashcore bench --json' writes it."""
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"backend": "c", "threads": 2, "watts": 8.0, "hashrate_hs": 4.0e7,
                                "energy_source": "estimate"}))
    return str(path)


def test_simulate_reports_every_figure_and_writes_the_plot(tmp_path, model):
    plot = tmp_path / "day.png"
    args = parse(add_simulate_arguments, ["--trace", str(TRACES / "solar-cloudy.csv"), "--model", model,
                                          "--miner-watts", "5000", "--plot", str(plot), "--json"])
    report = run_simulate(args)
    data = report.to_json()
    assert set(data) >= REQUIRED_KEYS
    json.dumps(data)  # one JSON object, as the --json line
    assert data["model_source"] == "estimate" and data["full_power_w"] == pytest.approx(5000)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = report.summary_lines()
    assert any("renewable absorbed" in line for line in lines) and lines[-1] == f"plot written to {plot}"


def test_simulate_with_the_carbon_policy_reports_co2_and_plots_the_intensity(tmp_path, model):
    plot = tmp_path / "grid.png"
    args = parse(add_simulate_arguments, ["--trace", str(TRACES / "grid-carbon.csv"), "--model", model,
                                          "--policy", "carbon-cap", "--carbon-cap", "250", "--plot", str(plot),
                                          "--tick", "10"])
    data = run_simulate(args).to_json()
    assert data["co2_g"] > 0 and data["policy"] == "carbon-cap" and data["policy_state"]["carbon_cap_g"] == 250
    assert plot.stat().st_size > 10_000


def test_simulate_needs_what_the_policy_reads(model):
    args = parse(add_simulate_arguments, ["--trace", str(TRACES / "solar-sunny.csv"), "--model", model,
                                          "--policy", "price"])
    with pytest.raises(ConfigError, match="needs a price"):
        run_simulate(args)


def test_simulate_names_the_line_of_a_bad_trace(tmp_path, model):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,watts\n0,10\n60,ten\n")
    args = parse(add_simulate_arguments, ["--trace", str(bad), "--model", model])
    with pytest.raises(ConfigError, match="line 3"):
        run_simulate(args)


def test_trace_solar_wind_and_grid_write_traces_that_load(tmp_path):
    commands = {
        "solar": ["solar", "--lat", "48.1", "--lon", "11.6", "--date", "2024-06-21", "--pv-kw", "10",
                  "--load-kw", "2", "--step", "300"],
        "wind": ["wind", "--date", "2024-03-12", "--mean-speed", "5", "--seed", "2", "--step", "300"],
        "grid": ["grid", "--lat", "51", "--lon", "10", "--date", "2024-06-21", "--budget-kw", "5"],
    }
    for kind, argv in commands.items():
        out = tmp_path / f"{kind}.csv"
        report = run_trace(parse(add_trace_arguments, [*argv, "-o", str(out)]))
        trace = load_trace(out)
        assert report.kind == kind and report.rows == len(trace) == 289
        assert report.notes and trace.notes[0].startswith(f"{kind} ")
        assert report.to_json()["peak_w"] == pytest.approx(max(trace.watts), abs=0.1)


def test_trace_wind_needs_a_series_or_a_mean_speed(tmp_path):
    args = parse(add_trace_arguments, ["wind", "--date", "2024-03-12", "-o", str(tmp_path / "w.csv")])
    with pytest.raises(ConfigError, match="--wind CSV or --mean-speed"):
        run_trace(args)


def test_the_power_budget_may_be_a_constant_a_trace_a_file_or_a_url(tmp_path):
    def signal(*argv: str):
        return budget_signal(parse(add_budget_arguments, ["--power-budget", *argv]))

    assert signal("350") == ConstantSignal(350.0)
    assert isinstance(signal(str(TRACES / "solar-sunny.csv")), Trace)
    scaled = signal(str(TRACES / "solar-sunny.csv"), "--budget-scale", "0.001")
    assert isinstance(scaled, Trace) and max(scaled.watts) == pytest.approx(5.2566, rel=1e-3)
    live = signal(str(tmp_path / "surplus.json"), "--budget-poll", "5")
    assert isinstance(live, LiveSource) and live.interval_s == 5
    url = signal("http://127.0.0.1:8080/surplus", "--policy", "carbon-cap", "--carbon-cap", "200")
    assert isinstance(url, LiveSource) and url.interval_s == 10 and url.has_carbon


def test_plan_budget_is_none_without_a_budget_and_a_plan_with_one(model):
    assert plan_budget(parse(add_budget_arguments, []), ["c"]) is None
    plan = plan_budget(parse(add_budget_arguments, ["--power-budget", "5", "--model", model,
                                                    "--throttle-tick", "0.5"]), ["c"])
    assert plan is not None and plan.tick_s == 0.5 and plan.fleet.names == ["c"] and plan.policy.name == "follow"


def test_format_status_is_one_line():
    status = {"budget_w": 5.0, "measured_w": 4.2, "state": "throttled", "policy": "follow", "signal_error": None,
              "controller": {"backends": {"c": {"duty": 0.5, "active_threads": 2}}}}
    assert format_status(status) == "budget 5.0 W  measured 4.2 W  throttled  c duty 0.50 x2  policy follow"


def test_a_model_file_must_cover_every_backend_mined_with_and_extra_ones_are_dropped(tmp_path, model):
    with pytest.raises(ConfigError, match="no figures for reference"):
        plan_budget(parse(add_budget_arguments, ["--power-budget", "5", "--model", model]), ["c", "reference"])
    both = tmp_path / "all.json"
    both.write_text(json.dumps({"backends": [
        {"backend": "c", "watts": 8.0, "hashrate_hs": 4e7},
        {"backend": "reference", "watts": 4.0, "hashrate_hs": 4e5},
    ]}))
    plan = plan_budget(parse(add_budget_arguments, ["--power-budget", "5", "--model", str(both)]), ["reference"])
    assert plan is not None and plan.fleet.names == ["reference"]


def test_the_config_files_throttle_section_fills_in_what_the_flags_leave_out(model):
    settings = {"power_budget": str(TRACES / "grid-carbon.csv"), "policy": "carbon-cap", "carbon_cap": 300,
                "interpolation": "step"}
    plan = plan_budget(parse(add_budget_arguments, ["--model", model]), ["c"], settings=settings)
    assert plan is not None and plan.policy.name == "carbon-cap"
    assert isinstance(plan.signal, Trace) and plan.signal.interpolation == "step"
    flagged = plan_budget(parse(add_budget_arguments, ["--model", model, "--power-budget", "7"]), ["c"],
                          settings=settings | {"policy": "follow"})
    assert flagged is not None and flagged.signal == ConstantSignal(7.0) and flagged.policy.name == "follow"
    with pytest.raises(ConfigError, match="interpolation"):
        plan_budget(parse(add_budget_arguments, ["--model", model]), ["c"], settings=settings | {"interpolation": "x"})
