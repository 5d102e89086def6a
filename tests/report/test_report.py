"""A simulated run written with --run, rendered by render_report as one self-contained page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hashcore.app.simulate import run_simulate
from hashcore.cli.report import add_report_arguments
from hashcore.cli.simulate import add_simulate_arguments, simulate_options
from hashcore.errors import ConfigError
from hashcore.report.plots import bench_png
from hashcore.report.render import ReportResult, render_report
from hashcore.report.run import load_run

#: Three hours of a cloudy afternoon: a step every ten minutes.
ROWS = [0, 2500, 400, 3200, 3400, 600, 2800, 3500, 3300, 900, 200, 2600, 1800, 1000, 600, 300, 100, 0, 0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    trace = folder / "afternoon.csv"
    lines = ["# interpolation: step", "timestamp,watts"]
    lines += [f"{1_718_964_000 + 600 * i},{w}" for i, w in enumerate(ROWS)]
    trace.write_text("\n".join(lines) + "\n")
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    args = parser.parse_args(["--trace", str(trace), "--device-model", "asic-bm1366", "--miner-watts", "3000",
                              "--actuator", "dvfs", "--forecast", "perfect", "--battery-kwh", "2",
                              "--battery-kw", "1.5", "--grid-intensity", "380", "--contract-gco2", "50",
                              "--tick", "5", "--run", str(folder / "run")])
    report = run_simulate(simulate_options(args))
    data = report.to_json()
    assert data["run_dir"] == str(folder / "run") and data["forecast"] == "perfect"
    return folder / "run"


def run_report(argv: list[str]) -> ReportResult:
    """``hashcore report ARGV``: its flags parsed as the command line does, then rendered."""
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    args = parser.parse_args(argv)
    return render_report(args.run, args.output, args.images)


def test_the_run_folder_holds_the_report_series_and_account(run_dir: Path):
    run = load_run(run_dir)
    assert run.meta["kind"] == "simulation" and run.meta["actuator"] == "dvfs"
    assert len(run.series["t"]) <= 1440 and "soc" in run.series
    assert run.account["battery_j"] > 0 and run.account_rows
    assert json.loads((run_dir / "account.json").read_text())["method"].startswith("GHG Protocol Scope 2")


def test_the_page_embeds_its_plots_and_names_the_figures(run_dir: Path, tmp_path: Path):
    result = run_report([str(run_dir), "-o", str(tmp_path / "day.html")])
    page = (tmp_path / "day.html").read_text()
    assert result.path == str(tmp_path / "day.html") and result.images == []
    assert page.count("data:image/png;base64,") == 4  # power, energy, carbon, the operating points
    for words in ("Carbon account", "location-based", "market-based", "Site battery", "per TH", "dvfs"):
        assert words in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert result.to_json()["figures"]["g_co2_per_th"] is not None
    assert result.summary_lines()[0].endswith("day.html")


def test_the_plots_may_be_files_beside_the_page(run_dir: Path, tmp_path: Path):
    result = run_report([str(run_dir), "-o", str(tmp_path / "r.html"), "--images", "files"])
    assert len(result.images) == 4
    for image in result.images:
        assert Path(image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="r-power.png"' in (tmp_path / "r.html").read_text()


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a run folder"):
        run_report([str(tmp_path)])


def test_the_bench_chart_is_a_png_with_a_bar_per_backend():
    import io

    import matplotlib.image

    reports = [
        {"backend": "c", "path": "shani", "hashrate_hs": 3.4e7, "j_per_th": 2.1e6, "energy_exact": True},
        {"backend": "numba", "path": None, "hashrate_hs": 2.9e7, "j_per_th": None, "energy_exact": False},
    ]
    png = bench_png(reports)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2]
    assert (width, height) == (int((4 + 1.2 * len(reports)) * 100), 400)
