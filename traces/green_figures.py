"""The figures of traces/README.md's "Green control" section (run from the repository root).

Writes to ``build/green/`` (ignored by git): the emulated BM1366's DVFS curve as measured
through the emulator (PNG), and a rendered report of a simulated solar day; prints the
tables as Markdown: the curve, DVFS against duty, and the forecasts side by side.
Every run is a simulation on the virtual clock, so the figures do not depend on the host.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from hashcore.app.simulate import run_simulate
from hashcore.app.sweep import emulated_asic, measure_backend, sweep_asic
from hashcore.backends.asic.chips import BM1366, chip_curve
from hashcore.cli.simulate import add_simulate_arguments, simulate_options
from hashcore.report.plots import curve_png
from hashcore.report.render import render_report

OUT = Path("build/green")
KWH = 3.6e6


def simulate(argv: str) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    return run_simulate(simulate_options(parser.parse_args(shlex.split(argv)))).to_json()


def curve_table() -> None:
    report = sweep_asic(lambda: emulated_asic("bm1366", hashrate=200_000.0), None, 1.0, measure_backend)
    path = OUT / "bm1366-dvfs-curve.png"
    path.write_bytes(curve_png(report.to_json(), "emulated BM1366: PLL and core voltage swept through the emulator"))
    model = {round(p.mhz): p for p in chip_curve(BM1366, 21.5)}
    print(f"\nDVFS curve of the emulated BM1366 ({path}):\n")
    print("| MHz | core mV (written) | chip GH/s (published scale) | chip W (model) | J/TH model | J/TH measured |")
    print("| --- | --- | --- | --- | --- | --- |")
    for p in report.points:
        m = model[round(p.freq_mhz or 0)]
        print(f"| {p.freq_mhz:g} | {p.voltage_mv:.0f} | {m.hashrate_hs / 1e9:.0f} | {m.watts:.2f} | {m.j_per_th:.2f} "
              f"| {p.j_per_th:.2f} |")


def dvfs_table() -> None:
    print("\nDVFS against duty, an emulated-BM1366 fleet (21.5 J/TH at stock), a day at a 2 s tick:\n")
    print("| trace | fleet | duty: hashes / kWh | dvfs: hashes / kWh | more hashes |")
    print("| --- | --- | --- | --- | --- |")
    for trace in ("solar-sunny.csv", "solar-cloudy.csv"):
        for watts in (5000, 6000):
            runs = {a: simulate(f"--trace traces/{trace} --device-model asic-bm1366 --miner-watts {watts} "
                                f"--actuator {a}") for a in ("duty", "dvfs")}
            duty, dvfs = runs["duty"], runs["dvfs"]
            gain = dvfs["hashes"] / duty["hashes"] - 1
            print(f"| {trace} | {watts / 1000:g} kW | {duty['hashes']:.4g} / {duty['energy_j'] / KWH:.2f} "
                  f"| {dvfs['hashes']:.4g} / {dvfs['energy_j'] / KWH:.2f} | {gain:+.1%} |")


def forecast_table() -> None:
    print("\nForecasts side by side: a 3 kW DVFS fleet, a 10 kWh / 3 kW battery starting at 50%:\n")
    print("| trace | forecast | curtailed (of usable surplus) | over budget (of energy) | battery in / out / lost "
          "(kWh) | state of charge at the end | hashes | energy (kWh) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for trace in ("solar-sunny.csv", "solar-cloudy.csv"):
        for forecast in ("none", "persistence", "clearsky", "perfect"):
            r = simulate(f"--trace traces/{trace} --device-model asic-bm1366 --miner-watts 3000 --actuator dvfs "
                         f"--forecast {forecast} --battery-kwh 10 --battery-kw 3")
            b = r["battery"]
            print(f"| {trace} | {forecast} | {r['curtailed_fraction']:.2%} "
                  f"| {r['energy_over_budget_j'] / r['energy_j']:.3%} "
                  f"| {b['battery_in_j'] / KWH:.2f} / {b['battery_out_j'] / KWH:.2f} / {b['battery_loss_j'] / KWH:.2f} "
                  f"| {b['soc_end']:.0%} | {r['hashes']:.4g} | {r['energy_j'] / KWH:.2f} |")


def day_report() -> None:
    run = OUT / "solar-day"
    simulate(f"--trace traces/solar-cloudy.csv --device-model asic-bm1366 --miner-watts 3000 --actuator dvfs "
             f"--forecast clearsky --battery-kwh 10 --battery-kw 3 --grid-intensity 380 --contract-gco2 0 --run {run}")
    result = render_report(run)
    print(f"\nreport of a simulated day: {result.path}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    curve_table()
    dvfs_table()
    forecast_table()
    day_report()


if __name__ == "__main__":
    main()
