"""The one-page HTML summary of a run: its figures, its carbon account and its plots.

Self-contained: the plots are PNGs embedded as ``data:`` URIs (or files beside the page,
named in ``images``), the style sits in the page, nothing is fetched from elsewhere.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from hashcore.report.account import J_PER_KWH
from hashcore.report.run import RunData

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1060px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 0.6em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 0.8em; }
.card b { display: block; font-size: 1.35em; } .card span { color: #666; font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; }
th { text-align: left; color: #555; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.notes { color: #555; font-size: 0.9em; }
"""


def _kwh(j: Any) -> str:
    return "-" if j is None else f"{float(j) / J_PER_KWH:,.3f} kWh"


def _num(value: Any, spec: str = ",.4g", unit: str = "") -> str:
    if value is None:
        return "unknown"
    return f"{float(value):{spec}}{unit}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td class=n>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _image(name: str, images: Mapping[str, bytes | str], alt: str) -> str:
    image = images.get(name)
    if image is None:
        return ""
    if isinstance(image, bytes):
        source = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    else:
        source = html.escape(image)
    return f'<img src="{source}" alt="{html.escape(alt)}">'


def _miners_table(miners: list[Any]) -> str:
    """A site run's miners as its page left them (in the allocator's order)."""
    head = "".join(f"<th>{h}</th>" for h in ("address", "kind", "state", "power", "J/TH", "energy", "error"))
    rows = []
    for miner in miners:
        if not isinstance(miner, dict):
            continue
        cells = [str(miner.get("address", "-")), str(miner.get("kind", "-")), str(miner.get("state", "-"))]
        figures = [_num(miner.get("watts"), ",.4g", " W"), _num(miner.get("j_per_th"), ",.4g"),
                   _num(miner.get("energy_j"), ",.4g", " J")]
        error = str(miner.get("error") or "")
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                    + "".join(f"<td class=n>{html.escape(f)}</td>" for f in figures)
                    + f"<td>{html.escape(error)}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(run: RunData, images: Mapping[str, bytes | str]) -> str:
    """The page for ``run``; ``images`` maps power/energy/carbon/curve to PNG bytes (embedded)
    or to a file name beside the page."""
    m, a = run.meta, run.account
    hashes = m.get("hashes")
    energy = m.get("energy_j")
    th = None if hashes is None else float(hashes) / 1e12
    cards = [
        _card(_kwh(energy), "energy used"),
        _card(_num(th, ",.4g", " TH"), "hashes"),
        _card(_num(None if not th or energy is None else float(energy) / th, ",.2f", " J/TH"), "energy per hash"),
        _card(_pct(m.get("absorbed_fraction")), "of the usable surplus absorbed"),
        _card(_pct(m.get("curtailed_fraction")), "of the usable surplus curtailed"),
        _card(_pct(None if not energy else float(m.get("energy_over_budget_j") or 0.0) / float(energy)),
              "of the energy over budget"),
        _card(_num(a.get("co2_location_g") if a else None, ",.4g", " g"), "CO2, location-based"),
        _card(_num(a.get("g_co2_per_th") if a else None, ",.4g", " g/TH"), "CO2 per TH (location)"),
    ]
    device = m.get("device_model")
    fleet_kind = f"{device} efficiency curve" if device else f"{m.get('model_source', '-')} model"
    fleet_rows = [
        ("signal", str(m.get("signal", "-"))),
        ("policy", str(m.get("policy", "-"))),
        ("fleet", f"{float(m.get('full_power_w') or 0):,.0f} W at full power, {fleet_kind}"),
        ("actuator", str(m.get("actuator", "duty"))),
        ("forecast", str(m.get("forecast", "none"))),
        ("tick", f"{m.get('tick_s', '-')} s"),
        ("tracking error, mean / p95", f"{_num(m.get('tracking_error_mean_w'), ',.1f', ' W')} / "
                                       f"{_num(m.get('tracking_error_p95_w'), ',.1f', ' W')}"),
        ("renewable absorbed", f"{_kwh(m.get('renewable_absorbed_j'))} of {_kwh(m.get('renewable_available_j'))}"),
        ("curtailed", f"{_kwh(m.get('curtailed_j'))} of {_kwh(m.get('usable_surplus_j'))} usable surplus"),
        ("over the budget", f"{_kwh(m.get('energy_over_budget_j'))} (+ {_kwh(m.get('floor_energy_j'))} paused floor)"),
    ]
    sections = [
        f"<h1>hashcore run report</h1><p class=sub>{html.escape(str(run.folder))} · "
        f"{html.escape(str(m.get('kind', '')))}</p>",
        f'<div class="cards">{"".join(cards)}</div>',
        "<h2>Power over the run</h2>" + _image("power", images, "surplus, mining power, grid and battery"),
        "<h2>The run</h2>" + _table(fleet_rows),
    ]
    battery = m.get("battery")
    if battery:
        sections.append("<h2>Site battery</h2>" + _table([
            ("capacity / power", f"{battery['capacity_kwh']:g} kWh / {battery['power_kw']:g} kW"),
            ("round trip", f"{battery['round_trip']:.0%}"),
            ("state of charge", f"{battery['soc_start']:.0%} -> {battery['soc_end']:.1%} "
                                f"(held within {battery['soc_min']:.0%}-{battery['soc_max']:.0%})"),
            ("charged in", _kwh(battery["battery_in_j"])),
            ("delivered out", _kwh(battery["battery_out_j"])),
            ("lost", _kwh(battery["battery_loss_j"])),
            ("in - losses - out - change of charge", f"{battery['conservation_error_j']:g} J"),
        ]))
    if a:
        sections.append("<h2>Carbon account (GHG Protocol Scope 2)</h2>" + _table([
            ("energy from surplus", _kwh(a.get("surplus_j"))),
            ("energy from the battery", _kwh(a.get("battery_j"))),
            ("energy from the grid", _kwh(a.get("grid_j"))),
            ("surplus curtailed", _kwh(a.get("curtailed_j"))),
            ("CO2, location-based", _num(a.get("co2_location_g"), ",.4g", " g")),
            ("CO2, market-based", _num(a.get("co2_market_g"), ",.4g", " g")),
            ("per TH, location / market", f"{_num(a.get('g_co2_per_th'), ',.4g')} / "
                                          f"{_num(a.get('g_co2_per_th_market'), ',.4g')} g"),
            (f"per share ({a.get('shares_kind', '')}), location / market",
             f"{_num(a.get('g_co2_per_share'), ',.4g')} / {_num(a.get('g_co2_per_share_market'), ',.4g')} g"),
            ("shares", _num(a.get("shares"), ",.6g") + (f" at difficulty {a['share_difficulty']:g}"
                                                        if a.get("share_difficulty") else "")),
        ]) + _image("energy", images, "energy by source") + _image("carbon", images, "cumulative emissions")
            + "<p class=notes>" + html.escape(str(a.get("method", ""))) + ". "
            + " ".join(html.escape(str(n)) + "." for n in a.get("notes", [])) + "</p>")
    miners = m.get("miners")
    if isinstance(miners, list) and miners:
        sections.append("<h2>Miners at the end, cheapest J/TH first</h2>" + _miners_table(miners))
    curve = _image("curve", images, "the fleet's efficiency curve")
    if curve:
        sections.append("<h2>Operating points</h2>" + curve)
    notes = m.get("notes") or []
    if notes:
        sections.append("<h2>About the signal</h2><p class=notes>"
                        + "<br>".join(html.escape(str(n)) for n in notes) + "</p>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>hashcore run report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
