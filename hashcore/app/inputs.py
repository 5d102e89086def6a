"""The files a throttle run reads and writes: traces and side series, power models and
efficiency curves.

Every read is bounded in size (:mod:`hashcore.boundedio`: a FIFO or a device is refused,
never waited on); the throttle core parses what was read
(:mod:`hashcore.throttle.traces`, :mod:`hashcore.throttle.model`,
:mod:`hashcore.throttle.devices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hashcore.boundedio import read_json_bounded, read_text_bounded
from hashcore.errors import ConfigError
from hashcore.throttle.devices import EfficiencyCurve, curve_from_sweep
from hashcore.throttle.model import FleetModel, fleet_from_json
from hashcore.throttle.signals import Interpolation, Trace
from hashcore.throttle.traces import Table, parse_table, parse_trace, trace_text

#: The longest trace or side series read: a year of minutes is about 25 MiB.
MAX_TRACE_BYTES = 64 << 20


def load_trace(path: str | Path, interpolation: Interpolation | None = None) -> Trace:
    """Read a trace file (the format: :mod:`hashcore.throttle.traces`)."""
    text = read_text_bounded(path, MAX_TRACE_BYTES, "trace")
    return parse_trace(text.splitlines(), str(path), interpolation)


def read_series(path: str | Path, columns: Sequence[str], required: int = 1) -> Table:
    """A side series (``timestamp,cloud_cover`` / ``timestamp,wind_speed`` ...) from a file."""
    text = read_text_bounded(path, MAX_TRACE_BYTES, "series")
    return parse_table(text.splitlines(), columns, required, str(path))


def write_trace(path: str | Path, trace: Trace, notes: Sequence[str] = ()) -> None:
    """Write a trace as CSV, its notes (and ``notes``) as leading comments."""
    try:
        Path(path).write_text(trace_text(trace, notes), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def load_fleet(path: str | Path) -> FleetModel:
    """A fleet from a file written by ``hashcore bench --json`` or ``bench --all --json``."""
    return fleet_from_json(read_json_bounded(path, "model"), str(path))


def load_curve(path: str | Path) -> EfficiencyCurve:
    """The curve in a file written by ``hashcore bench --sweep --json`` (a list of points)."""
    return curve_from_sweep(read_json_bounded(path, "device curve"), str(path), Path(path).stem)
