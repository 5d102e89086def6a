"""Regenerate the sample traces in this folder (run from the repository root).

Every trace is made by the same code as ``hashcore trace``; the cloud series for the
cloudy day is a seeded synthetic series, written here too so the cloudy trace can be
remade with ``hashcore trace solar ... --clouds traces/clouds-broken-cumulus.csv``.
"""

from __future__ import annotations

import argparse
import shlex
from datetime import date
from pathlib import Path

import numpy as np

from hashcore.app.trace import run_trace
from hashcore.cli.trace import add_trace_arguments, trace_options
from hashcore.throttle.generate import synthetic_clouds
from hashcore.throttle.traces import format_timestamp

HERE = Path(__file__).parent

#: The commands of README.md, run in this order.
COMMANDS = (
    "solar --lat 48.14 --lon 11.58 --date 2024-06-21 --utc-offset 2 --pv-kw 12 --load-kw 3 "
    "-o traces/solar-sunny.csv",
    "solar --lat 48.14 --lon 11.58 --date 2024-06-22 --utc-offset 2 --pv-kw 12 --load-kw 3 "
    "--clouds traces/clouds-broken-cumulus.csv -o traces/solar-cloudy.csv",
    "wind --date 2024-03-12 --utc-offset 1 --mean-speed 4.5 --front-speed 3.5 --front-hour 14 --turbulence 0.18 "
    "--gusts-per-hour 4 --seed 3 --turbine E-53/800 --load-kw 50 -o traces/wind-gusty.csv",
    "grid --lat 51.0 --lon 10.0 --date 2024-06-21 --utc-offset 2 --budget-kw 5 --step 300 --seed 1 "
    "-o traces/grid-carbon.csv",
)


def write_clouds(path: Path) -> None:
    times, cover = synthetic_clouds(date(2024, 6, 22), 2.0, seed=7)
    offset = 2 * 3600.0
    lines = [
        "# cloud cover for solar-cloudy.csv: hashcore.throttle.generate.synthetic_clouds(2024-06-22, UTC+2, seed=7)",
        "# overcast until 10:30, then broken cumulus (cloud ~5 min, gap ~7 min, exponential dwell times)",
        "timestamp,cloud_cover",
    ]
    lines += [f"{format_timestamp(float(t), offset)},{c:.3f}" for t, c in zip(times, np.round(cover, 3), strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    write_clouds(HERE / "clouds-broken-cumulus.csv")
    parser = argparse.ArgumentParser(prog="hashcore trace")
    add_trace_arguments(parser)
    for command in COMMANDS:
        report = run_trace(trace_options(parser.parse_args(shlex.split(command))))
        print("\n".join(report.summary_lines()))


if __name__ == "__main__":
    main()
