"""What the page is sent: built from a miner snapshot, the throttle's view and bench reports.

Everything here is a pure function over plain values, so what reaches the browser can be
checked without a server. Only whitelisted fields leave: the miner's JSON summary (whose
pool URLs carry no credentials, see :func:`hashcore.control.redact_url`), the four fields
of :class:`hashcore.control.ThrottleView` and the bench table's columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hashcore import boundedjson
from hashcore.boundedio import read_bounded
from hashcore.control import MinerStats, ThrottleView, finite_or_none, short_label
from hashcore.errors import ConfigError

#: The bench table's columns (see :class:`hashcore.bench.BenchReport`).
BENCH_FIELDS = (
    "backend",
    "path",
    "threads",
    "hashrate_hs",
    "per_thread_hs",
    "ratio_per_thread",
    "baseline_hashrate_hs",
    "watts",
    "j_per_th",
    "energy_source",
    "energy_exact",
)

def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity; the page shows them as unknown."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def summary(stats: MinerStats) -> dict[str, Any]:
    """``stats.to_json()`` (the ``hashcore mine --json`` summary), with each backend's
    state (``mining``, ``retrying: <reason>``...) cut to a label's length."""
    data = _finite(stats.to_json())
    data["backends"] = {name: {**backend, "state": short_label(stats.backends[name].state)}
                        for name, backend in data["backends"].items()}
    return data


def snapshot(
    stats: MinerStats,
    throttle: ThrottleView | None,
    *,
    now: float,
    state: str,
    control: bool,
    throttle_error: str | None = None,
) -> dict[str, Any]:
    """One update for the page.

    ``summary`` is exactly the JSON summary; ``live`` adds what the live view shows beside
    it (the 5-second hashrate, the active pool, the mean duty cycle); ``throttle`` is the
    :class:`hashcore.control.ThrottleView` as JSON; ``point`` is the chart sample recorded
    for this moment.
    """
    budget = throttle.budget_w if throttle is not None else None
    return {
        "time": now,
        "state": state,
        "control": control,
        "summary": summary(stats),
        "live": {
            "recent_hashrate_hs": _finite(stats.recent_hashrate_hs),
            "active_pool": stats.active_pool,
            "duty": stats.mean_duty,
        },
        "throttle": throttle.to_json() if throttle is not None else None,
        "throttle_error": throttle_error,
        "point": [now, _finite(stats.recent_hashrate_hs), _finite(stats.energy.recent_watts), budget],
    }


def bench_rows(reports: Any) -> list[dict[str, Any]]:
    """The bench table from ``hashcore bench --json`` output: one report, ``{"backends": [...]}``
    (``--all``) or a list of reports. Raises ValueError naming what is wrong."""
    if isinstance(reports, Mapping):
        reports = reports.get("backends", [reports])
    if not isinstance(reports, Sequence) or isinstance(reports, (str, bytes)):
        raise ValueError("a bench table is a report, a list of reports or {\"backends\": [...]}")
    rows = []
    for index, report in enumerate(reports):
        if not isinstance(report, Mapping) or "backend" not in report:
            raise ValueError(f"bench report {index} is not a report (it has no 'backend')")
        row: dict[str, Any] = {}
        for key in BENCH_FIELDS:
            value = report.get(key)
            if key == "energy_exact":
                row[key] = bool(value)
            elif key in ("backend", "path", "energy_source"):
                row[key] = short_label(value)
            elif key == "threads":
                row[key] = int(value) if isinstance(value, int) and not isinstance(value, bool) else None
            else:
                row[key] = finite_or_none(value)
        rows.append(row)
    return rows


#: The longest bench file read (a ``hashcore bench --all --json`` report is a few KiB).
MAX_BENCH_BYTES = 1 << 20


def load_bench(path: Path) -> list[dict[str, Any]]:
    """Read a ``hashcore bench --json`` file. Raises ValueError naming the file and the fault.

    Only a regular file of at most :data:`MAX_BENCH_BYTES` is read, and never waited on (a
    FIFO or a device is refused at once): short enough to run anywhere, though a caller
    on an event loop still does better with ``asyncio.to_thread``. A missing file raises
    FileNotFoundError, so the caller can tell "not there yet" from "broken".
    """
    try:
        raw = read_bounded(path, MAX_BENCH_BYTES, "bench file")
    except ConfigError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            raise exc.__cause__ from None
        raise ValueError(str(exc)) from exc
    try:
        data = boundedjson.loads(raw)
    except ValueError as exc:
        raise ValueError(f"bench file {path} is not JSON: {exc}") from exc
    try:
        return bench_rows(data)
    except ValueError as exc:
        raise ValueError(f"bench file {path}: {exc}") from exc
