"""The pictures of a run, as PNG bytes (matplotlib, no display needed): the one module
that draws runs, so units, local time and the PNG output are written once.

- :func:`day_png`: a simulated day (``hashcore simulate --plot``): budget, power and
  hashrate, and the grid's carbon intensity and price where the signal has them.
- :func:`power_png`: the surplus, the miners' power, the grid draw and the battery's
  state of charge over the run; below, hashrate and the operating point's clock.
- :func:`energy_png`: energy by source per quarter hour (surplus, battery, grid) and
  the surplus curtailed.
- :func:`carbon_png`: cumulative location- and market-based emissions, and the grid's
  intensity where the signal has one.
- :func:`curve_png`: an efficiency curve: hashrate and J/TH against the clock, with
  the core voltage of each point (the DVFS curve of a chip).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hashcore.report.account import J_PER_KWH
from hashcore.report.run import RunData


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any, dpi: int = 100) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def _local_hours(t: np.ndarray, start: float, utc_offset_s: float) -> np.ndarray:
    """Hours of local time: ``start``'s hour of the day, then on from there (past 24)."""
    first = ((start + utc_offset_s) % 86_400) / 3600.0
    return np.asarray((t - t[0]) / 3600.0 + first)


def _hours(run: RunData, t: np.ndarray) -> np.ndarray:
    if not len(t):
        return t
    return _local_hours(t, float(t[0]), float(run.meta.get("utc_offset_s", 0.0) or 0.0))


def _scale(peak: float, units: Sequence[tuple[float, str]]) -> tuple[float, str]:
    for factor, unit in units:
        if peak >= factor:
            return factor, unit
    return 1.0, units[-1][1] if units[-1][0] == 1.0 else ""


_POWER_UNITS = ((1e6, "MW"), (1e3, "kW"), (1.0, "W"))
_RATE_UNITS = ((1e15, "PH/s"), (1e12, "TH/s"), (1e9, "GH/s"), (1e6, "MH/s"), (1e3, "kH/s"), (1.0, "H/s"))


class SimulatedDay(Protocol):
    """What :func:`day_png` reads of a simulation's report (``hashcore.throttle.simulation``):
    ``series`` (t, budget_w, power_w, hashrate_hs, gco2_per_kwh, price: arrays),
    ``figures`` (absorbed_fraction, tracking_error_mean_w, energy_over_budget_j,
    energy_j) and ``truth`` (the simulated fleet: full_watts, paused_watts)."""

    @property
    def series(self) -> Any: ...

    @property
    def figures(self) -> Any: ...

    @property
    def truth(self) -> Any: ...

    @property
    def start(self) -> float: ...

    @property
    def utc_offset_s(self) -> float: ...

    @property
    def tick_s(self) -> float: ...

    @property
    def signal(self) -> str: ...

    @property
    def policy(self) -> str: ...

    @property
    def policy_state(self) -> Mapping[str, Any]: ...


def day_png(report: SimulatedDay) -> bytes:
    """A simulated day: the budget as a green area, the fleet's full power dashed, the
    power drawn in blue, power over the budget in red; below, hashrate; at the bottom,
    when the signal has them, carbon intensity and price, shaded where mining was held
    off. The x axis is the trace's local time of day."""
    plt = _pyplot()
    s, f = report.series, report.figures
    hours = _local_hours(s.t, report.start, report.utc_offset_s)
    has_grid = bool(np.isfinite(s.gco2_per_kwh).any() or np.isfinite(s.price).any())
    rows = 3 if has_grid else 2
    figure, axes = plt.subplots(rows, 1, figsize=(11, 2.6 + 2.2 * rows), sharex=True,
                                gridspec_kw={"height_ratios": [3, 1.4, 1.4][:rows]})
    top, middle = axes[0], axes[1]
    pscale, punit = _scale(max(float(np.nanmax(s.budget_w)), report.truth.full_watts, 1e-9), _POWER_UNITS)
    top.fill_between(hours, s.budget_w / pscale, step="post", color="#8fd18f", alpha=0.6, label="budget (surplus)")
    top.axhline(report.truth.full_watts / pscale, color="#555555", linestyle="--", linewidth=1,
                label="fleet at full duty")
    top.plot(hours, s.power_w / pscale, color="#1f5fbf", linewidth=1.1, drawstyle="steps-post",
             label="mining power")
    over = np.maximum(s.power_w - np.maximum(s.budget_w, report.truth.paused_watts), 0.0)
    if over.any():
        top.fill_between(hours, (s.power_w - over) / pscale, s.power_w / pscale, step="post", color="#d62728",
                         alpha=0.8, label="over budget")
    top.set_ylabel(f"power ({punit})")
    top.set_ylim(bottom=0)
    top.legend(loc="upper left", fontsize=8, ncols=2)
    absorbed = "-" if f.absorbed_fraction is None else f"{f.absorbed_fraction:.1%}"
    error = "-" if f.tracking_error_mean_w is None else f"{f.tracking_error_mean_w:,.1f} W"
    top.set_title(
        f"{report.signal} — policy {report.policy}\n"
        f"absorbed {absorbed} of the usable surplus · over budget {f.energy_over_budget_j / J_PER_KWH:,.3f} kWh · "
        f"tracking error {error} mean · {f.energy_j / J_PER_KWH:,.2f} kWh used",
        fontsize=10,
    )
    hscale, hunit = _scale(max(float(np.nanmax(s.hashrate_hs)), 1.0), _RATE_UNITS)
    middle.plot(hours, s.hashrate_hs / hscale, color="#7a3fb0", linewidth=1, drawstyle="steps-post")
    middle.fill_between(hours, s.hashrate_hs / hscale, step="post", color="#7a3fb0", alpha=0.2)
    middle.set_ylabel(f"hashrate ({hunit})")
    middle.set_ylim(bottom=0)
    if has_grid:
        _grid_panel(axes[2], hours, s, report.policy_state.get("carbon_cap_g"))
    axes[-1].set_xlabel("local time (h)")
    start_hour = math.floor(float(hours[0]))
    axes[-1].set_xticks(np.arange(start_hour, math.ceil(float(hours[-1])) + 1, 2))
    axes[-1].set_xlim(float(hours[0]), float(hours[-1]) + report.tick_s / 3600)
    for axis in axes:
        axis.grid(alpha=0.3)
    return _png(figure, dpi=110)


def _grid_panel(bottom: Any, hours: np.ndarray, s: Any, cap: float | None) -> None:
    """Carbon intensity (with the policy's cap) and price, shaded where mining was held off."""
    if np.isfinite(s.gco2_per_kwh).any():
        bottom.plot(hours, s.gco2_per_kwh, color="#444444", linewidth=1, label="gCO2/kWh")
        if cap is not None:
            bottom.axhline(cap, color="#d62728", linestyle=":", linewidth=1, label=f"cap {cap:g}")
        bottom.set_ylabel("gCO2/kWh")
        bottom.legend(loc="upper left", fontsize=8)
    if np.isfinite(s.price).any():
        price_axis = bottom.twinx() if np.isfinite(s.gco2_per_kwh).any() else bottom
        price_axis.plot(hours, s.price, color="#d8843b", linewidth=1, label="price /kWh")
        price_axis.set_ylabel("price per kWh")
        price_axis.legend(loc="upper right", fontsize=8)
    held = (s.budget_w <= 0) & np.isfinite(s.budget_w)
    if held.any():
        bottom.fill_between(hours, 0, 1, where=held, transform=bottom.get_xaxis_transform(), color="#cccccc",
                            alpha=0.5, step="post", label="held off")


def power_png(run: RunData) -> bytes:
    plt = _pyplot()
    s = run.series
    hours = _hours(run, s["t"])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1.5]})
    full = float(run.meta.get("full_power_w") or 0.0)
    peak = max(float(np.nanmax(s["surplus_w"], initial=0.0)), float(np.nanmax(s["power_w"], initial=0.0)), full, 1e-9)
    pscale, punit = _scale(peak, _POWER_UNITS)
    top.fill_between(hours, s["surplus_w"] / pscale, step="post", color="#8fd18f", alpha=0.6, label="surplus")
    top.plot(hours, s["power_w"] / pscale, color="#1f5fbf", drawstyle="steps-post", linewidth=1.1, label="mining")
    grid = np.nan_to_num(s.get("grid_w", np.zeros_like(hours)))
    if grid.any():
        top.fill_between(hours, 0, grid / pscale, step="post", color="#d62728", alpha=0.7, label="from the grid")
    curtailed = np.nan_to_num(s.get("curtailed_w", np.zeros_like(hours)))
    if curtailed.any():
        top.plot(hours, curtailed / pscale, color="#e3a21a", linewidth=0.9, drawstyle="steps-post", label="curtailed")
    if full:
        top.axhline(full / pscale, color="#555555", linestyle="--", linewidth=1, label="fleet at full power")
    top.set_ylabel(f"power ({punit})")
    top.set_ylim(bottom=0)
    soc = s.get("soc")
    if soc is not None and np.isfinite(soc).any():
        twin = top.twinx()
        twin.plot(hours, soc * 100, color="#7a3fb0", linewidth=1.2, label="battery state of charge")
        twin.set_ylabel("state of charge (%)")
        twin.set_ylim(0, 100)
        twin.legend(loc="upper right", fontsize=8)
    top.legend(loc="upper left", fontsize=8, ncols=2)
    top.set_title(f"{run.meta.get('signal', 'run')} - actuator {run.meta.get('actuator', 'duty')}, "
                  f"forecast {run.meta.get('forecast', 'none')}", fontsize=10)
    rate = s["hashrate_hs"]
    hscale, hunit = _scale(max(float(np.nanmax(rate, initial=0.0)), 1.0), _RATE_UNITS)
    bottom.plot(hours, rate / hscale, color="#444444", linewidth=1, drawstyle="steps-post")
    bottom.set_ylabel(f"hashrate ({hunit})")
    bottom.set_ylim(bottom=0)
    freq = s.get("freq_mhz")
    if freq is not None and np.isfinite(freq).any():
        twin = bottom.twinx()
        twin.plot(hours, freq, color="#d8843b", linewidth=1, label="clock (MHz)")
        twin.set_ylabel("clock (MHz)")
        twin.legend(loc="upper right", fontsize=8)
    bottom.set_xlabel("local time (h)")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    return _png(figure)


def energy_png(run: RunData) -> bytes:
    plt = _pyplot()
    rows = run.account_rows
    figure, axis = plt.subplots(figsize=(10, 3.4))
    if rows:
        hours = _hours(run, np.array([float(r["start"] or 0.0) for r in rows]))
        width = float(rows[0]["seconds"] or 900.0) / 3600.0

        def column(name: str) -> np.ndarray:
            return np.array([float(r.get(name) or 0.0) for r in rows]) / J_PER_KWH

        surplus, battery, grid = column("surplus_j"), column("battery_j"), column("grid_j")
        axis.bar(hours, surplus, width, align="edge", color="#5cb85c", label="surplus")
        axis.bar(hours, battery, width, bottom=surplus, align="edge", color="#7a3fb0", label="battery")
        axis.bar(hours, grid, width, bottom=surplus + battery, align="edge", color="#d62728", label="grid")
        curtailed = column("curtailed_j")
        if curtailed.any():
            axis.bar(hours, -curtailed, width, align="edge", color="#e3a21a", label="curtailed (below zero)")
        axis.axhline(0, color="#333333", linewidth=0.6)
    axis.set_ylabel("energy (kWh per interval)")
    axis.set_xlabel("local time (h)")
    axis.legend(loc="upper right", fontsize=8, ncols=4)
    axis.grid(alpha=0.3)
    return _png(figure)


def carbon_png(run: RunData) -> bytes:
    plt = _pyplot()
    rows = run.account_rows
    figure, axis = plt.subplots(figsize=(10, 3.0))
    if rows:
        hours = _hours(run, np.array([float(r["start"] or 0.0) for r in rows]))
        for name, label, color in (("co2_location_g", "location-based", "#444444"),
                                   ("co2_market_g", "market-based", "#1f5fbf")):
            values = [r.get(name) for r in rows]
            if all(v is not None for v in values):
                axis.plot(hours, np.cumsum([float(v or 0.0) for v in values]) / 1000, color=color, label=label)
    axis.set_ylabel("CO2, cumulative (kg)")
    axis.set_xlabel("local time (h)")
    intensity = run.series.get("gco2_per_kwh")
    if intensity is not None and np.isfinite(intensity).any():
        twin = axis.twinx()
        twin.plot(_hours(run, run.series["t"]), intensity, color="#999999", linewidth=0.8, label="grid gCO2/kWh")
        twin.set_ylabel("gCO2/kWh")
        twin.legend(loc="upper right", fontsize=8)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper left", fontsize=8)
    axis.grid(alpha=0.3)
    return _png(figure)


def curve_png(points: Sequence[dict[str, Any]], title: str) -> bytes:
    """Hashrate and J/TH against the clock for a list of operating points."""
    plt = _pyplot()
    rows = sorted(points, key=lambda p: float(p["freq_mhz"]))
    mhz = np.array([float(p["freq_mhz"]) for p in rows])
    rate = np.array([float(p["hashrate_hs"]) for p in rows])
    jth = np.array([float(p["j_per_th"]) if p.get("j_per_th") is not None else math.nan for p in rows])
    figure, axis = plt.subplots(figsize=(8, 4.2))
    hscale, hunit = _scale(max(float(rate.max(initial=0.0)), 1.0), _RATE_UNITS)
    axis.plot(mhz, rate / hscale, "o-", color="#1f5fbf", label="hashrate")
    axis.set_xlabel("clock (MHz)")
    axis.set_ylabel(f"hashrate ({hunit})", color="#1f5fbf")
    twin = axis.twinx()
    twin.plot(mhz, jth, "s-", color="#d62728", label="J/TH")
    twin.set_ylabel("J/TH", color="#d62728")
    for p, x, y in zip(rows, mhz, jth, strict=True):
        if p.get("voltage_mv") is not None and math.isfinite(y):
            twin.annotate(f"{float(p['voltage_mv']):.0f} mV", (x, y), textcoords="offset points", xytext=(0, 7),
                          ha="center", fontsize=7, color="#7a3fb0")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    return _png(figure)


def bench_png(reports: Sequence[Mapping[str, Any]]) -> bytes:
    """Two bar charts of ``hashcore bench`` reports: hashrate and J/TH per backend
    (estimates hatched)."""
    plt = _pyplot()
    names = [r["backend"] + (f"\n{r['path']}" if r.get("path") else "") for r in reports]
    figure, (rate_axis, energy_axis) = plt.subplots(1, 2, figsize=(4 + 1.2 * len(reports), 4))
    rate_axis.bar(names, [r["hashrate_hs"] / 1e6 for r in reports], color="#3b7dd8")
    rate_axis.set_ylabel("MH/s")
    rate_axis.set_yscale("log")
    rate_axis.set_title("hashrate")
    bars = energy_axis.bar(names, [r["j_per_th"] or 0.0 for r in reports], color="#d8843b")
    for bar, report in zip(bars, reports, strict=True):
        if not report["energy_exact"]:
            bar.set_hatch("//")
    energy_axis.set_ylabel("J/TH (hatched: estimate)")
    energy_axis.set_yscale("log")
    energy_axis.set_title("energy per hash")
    return _png(figure)
