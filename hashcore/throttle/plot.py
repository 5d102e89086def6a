"""The picture of a simulated day: budget, power and hashrate (and the grid's signals).

Top: the budget as a green area, the fleet's full power as a dashed line, the power
drawn in blue, power over the budget in red. Middle: hashrate. Bottom, when the signal
has them: carbon intensity and price, with the policy's gates shaded where mining was
held off. The x axis is the trace's local time of day.
"""

from __future__ import annotations

import math

import numpy as np

from hashcore.errors import ConfigError
from hashcore.throttle.simulation import SimulationReport


def _rate_scale(peak: float) -> tuple[float, str]:
    for scale, unit in ((1e12, "TH/s"), (1e9, "GH/s"), (1e6, "MH/s"), (1e3, "kH/s")):
        if peak >= scale:
            return scale, unit
    return 1.0, "H/s"


def _power_scale(peak: float) -> tuple[float, str]:
    for scale, unit in ((1e6, "MW"), (1e3, "kW")):
        if peak >= scale:
            return scale, unit
    return 1.0, "W"


def plot_report(report: SimulationReport, path: str) -> None:
    """Write the day's plot as a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    s, f = report.series, report.figures
    hours = (s.t - s.t[0]) / 3600.0 + _local_hour(report.start, report.utc_offset_s)
    has_grid = bool(np.isfinite(s.gco2_per_kwh).any() or np.isfinite(s.price).any())
    rows = 3 if has_grid else 2
    figure, axes = plt.subplots(rows, 1, figsize=(11, 2.6 + 2.2 * rows), sharex=True,
                                gridspec_kw={"height_ratios": [3, 1.4, 1.4][:rows]})
    top, middle = axes[0], axes[1]
    pscale, punit = _power_scale(max(float(np.nanmax(s.budget_w)), report.truth.full_watts, 1e-9))
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
        f"absorbed {absorbed} of the usable surplus · over budget {f.energy_over_budget_j / 3.6e6:,.3f} kWh · "
        f"tracking error {error} mean · {f.energy_j / 3.6e6:,.2f} kWh used",
        fontsize=10,
    )
    hscale, hunit = _rate_scale(max(float(np.nanmax(s.hashrate_hs)), 1.0))
    middle.plot(hours, s.hashrate_hs / hscale, color="#7a3fb0", linewidth=1, drawstyle="steps-post")
    middle.fill_between(hours, s.hashrate_hs / hscale, step="post", color="#7a3fb0", alpha=0.2)
    middle.set_ylabel(f"hashrate ({hunit})")
    middle.set_ylim(bottom=0)
    if has_grid:
        bottom = axes[2]
        if np.isfinite(s.gco2_per_kwh).any():
            bottom.plot(hours, s.gco2_per_kwh, color="#444444", linewidth=1, label="gCO2/kWh")
            cap = report.policy_state.get("carbon_cap_g")
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
    axes[-1].set_xlabel("local time (h)")
    start_hour = math.floor(float(hours[0]))
    axes[-1].set_xticks(np.arange(start_hour, math.ceil(float(hours[-1])) + 1, 2))
    axes[-1].set_xlim(float(hours[0]), float(hours[-1]) + report.tick_s / 3600)
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(figure)


def _local_hour(epoch: float, utc_offset_s: float) -> float:
    return ((epoch + utc_offset_s) % 86_400) / 3600.0
