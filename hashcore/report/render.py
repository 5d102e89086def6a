"""Render a run folder as one HTML page (what ``hashcore report RUN`` does).

:func:`render_report` writes the page (and, when asked, its PNGs beside it) and returns a
:class:`ReportResult`; it prints nothing (:mod:`hashcore.cli.report` does).
"""

from __future__ import annotations

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


#: How the page carries its pictures: embedded, or PNG files beside it.
IMAGE_MODES = ("inline", "files")


def render_report(run_dir: str | Path, output: str | Path | None = None, images: str = "inline") -> ReportResult:
    """Render the run in ``run_dir`` to ``output`` (default ``RUN/report.html``);
    ``images`` is one of :data:`IMAGE_MODES`."""
    run = load_run(run_dir)
    page = Path(output) if output else run.folder / "report.html"
    pngs: dict[str, bytes] = {"power": power_png(run)}
    if run.account_rows:
        pngs["energy"] = energy_png(run)
        pngs["carbon"] = carbon_png(run)
    points = _operating_points(run.meta)
    if points:
        pngs["curve"] = curve_png(points, f"{run.meta.get('device_model') or 'fleet'}: efficiency curve")
    shown: dict[str, bytes | str] = dict(pngs)
    written: list[str] = []
    try:
        page.parent.mkdir(parents=True, exist_ok=True)
        if images == "files":
            for name, data in pngs.items():
                path = page.with_name(f"{page.stem}-{name}.png")
                path.write_bytes(data)
                shown[name] = path.name
                written.append(str(path))
        page.write_text(render_html(run, shown), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report {page}: {exc.strerror or exc}") from exc
    figures = {k: run.meta.get(k) for k in ("energy_j", "hashes", "absorbed_fraction", "curtailed_fraction",
                                             "energy_over_budget_j", "co2_location_g", "co2_market_g",
                                             "g_co2_per_th")}
    return ReportResult(str(page), str(run.folder), written, figures)


def _operating_points(meta: dict[str, Any]) -> list[dict[str, Any]]:
    for backend in meta.get("fleet") or []:
        points = backend.get("operating_points") if isinstance(backend, dict) else None
        if points:
            return list(points)
    return []
