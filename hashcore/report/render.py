"""What ``hashcore report RUN`` does: render a run folder as one HTML page.

``cli.py`` adds :func:`add_report_arguments` to its ``report`` parser and calls
:func:`run_report`; it returns a :class:`ReportResult` and prints nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashcore.errors import ConfigError
from hashcore.report.html import render_html
from hashcore.report.plots import carbon_png, curve_png, energy_png, power_png
from hashcore.report.run import load_run


@dataclass(frozen=True, slots=True)
class ReportResult:
    """What ``hashcore report`` wrote."""

    path: str
    run: str
    images: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "run": self.run, "images": self.images, "figures": self.figures}

    def summary_lines(self) -> list[str]:
        lines = [f"report of {self.run} written to {self.path}"]
        if self.images:
            lines.append("images: " + ", ".join(self.images))
        return lines


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """``hashcore report RUN [-o HTML] [--images inline|files] [--json]``."""
    parser.add_argument("run", metavar="RUN", help="a run folder (hashcore simulate --run DIR)")
    parser.add_argument("-o", "--output", default=None, metavar="HTML",
                        help="where to write the page (default RUN/report.html)")
    parser.add_argument("--images", choices=["inline", "files"], default="inline",
                        help="embed the plots in the page (default) or write them as PNGs beside it")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def run_report(args: argparse.Namespace) -> ReportResult:
    """Render ``args.run`` to ``args.output`` (default ``RUN/report.html``)."""
    run = load_run(args.run)
    output = Path(args.output) if args.output else run.folder / "report.html"
    pngs: dict[str, bytes] = {"power": power_png(run)}
    if run.account_rows:
        pngs["energy"] = energy_png(run)
        pngs["carbon"] = carbon_png(run)
    points = _operating_points(run.meta)
    if points:
        pngs["curve"] = curve_png(points, f"{run.meta.get('device_model') or 'fleet'}: efficiency curve")
    images: dict[str, bytes | str] = dict(pngs)
    written: list[str] = []
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if args.images == "files":
            for name, data in pngs.items():
                path = output.with_name(f"{output.stem}-{name}.png")
                path.write_bytes(data)
                images[name] = path.name
                written.append(str(path))
        output.write_text(render_html(run, images), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report {output}: {exc.strerror or exc}") from exc
    figures = {k: run.meta.get(k) for k in ("energy_j", "hashes", "absorbed_fraction", "curtailed_fraction",
                                             "energy_over_budget_j", "co2_location_g", "co2_market_g",
                                             "g_co2_per_th")}
    return ReportResult(str(output), str(run.folder), written, figures)


def _operating_points(meta: dict[str, Any]) -> list[dict[str, Any]]:
    for backend in meta.get("fleet") or []:
        points = backend.get("operating_points") if isinstance(backend, dict) else None
        if points:
            return list(points)
    return []
