"""The CSV trace format: reading (with line numbers in every error) and writing.

::

    # how the trace was made (free text; kept as the trace's notes)
    # interpolation: linear
    timestamp,watts,gco2_per_kwh,price
    2024-06-21T00:00:00+02:00,0,312.5,0.21
    2024-06-21T00:01:00+02:00,0,311.9,0.21

- ``timestamp``: ISO-8601 (an offset is kept for plots; none means UTC) or epoch
  seconds; strictly increasing.
- ``watts``: the power budget (>= 0). ``gco2_per_kwh`` and ``price`` are optional.
- The header line is optional: without it the columns are positional
  (``timestamp,watts[,gco2_per_kwh][,price]``). ``#`` lines and blank lines are skipped;
  a ``# interpolation: step|linear`` comment sets the default interpolation.

The same reader takes the side inputs of the generators (a cloud series, a wind-speed
series, a load series) through :func:`parse_table`, and a live budget reading's text
through :func:`reading_from_text`. Files are read by the application
(:mod:`hashcore.app.inputs`, bounded in size); this module parses their text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashcore.errors import ConfigError
from hashcore.throttle.signals import INTERPOLATIONS, ConstantSignal, Interpolation, SignalPoint, Trace

TRACE_COLUMNS = ("timestamp", "watts", "gco2_per_kwh", "price")
_DIRECTIVE = re.compile(r"#\s*interpolation\s*:\s*(\S+)\s*$", re.I)


def parse_timestamp(text: str, where: str) -> tuple[float, float | None]:
    """Epoch seconds and the UTC offset in seconds (None for epoch or naive input)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ConfigError(f"{where}: timestamp {text!r} is not a finite number")
        return value, None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is neither an ISO-8601 timestamp nor epoch seconds") from None
    offset = stamp.utcoffset()
    if offset is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp(), None if offset is None else offset.total_seconds()


class Table:
    """Columns read from a CSV file: epoch times, named float columns, comment lines."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.columns: dict[str, list[float]] = {}
        self.lines: list[int] = []
        self.notes: list[str] = []
        self.interpolation: Interpolation | None = None
        self.utc_offset_s: float | None = None


def parse_table(lines: Iterable[str], columns: Sequence[str], required: int, name: str) -> Table:
    """Read ``timestamp,<columns...>`` rows; the first ``required`` columns must be there.

    ``columns`` names the value columns in their positional order (after the timestamp).
    """
    table = Table()
    header: list[str] | None = None
    previous: float | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        where = f"{name}, line {number}"
        if not line:
            continue
        if line.startswith("#"):
            directive = _DIRECTIVE.match(line)
            if directive:
                mode = directive.group(1).lower()
                if mode not in INTERPOLATIONS:
                    raise ConfigError(f"{where}: interpolation must be step or linear, not {mode!r}")
                table.interpolation = mode
            else:
                table.notes.append(line.lstrip("#").strip())
            continue
        fields = [f.strip() for f in line.split(",")]
        if header is None and not table.times and fields[0][:1].isalpha() and not _looks_like_time(fields[0]):
            header = _check_header(fields, columns, required, where)
            table.columns = {c: [] for c in header[1:]}
            continue
        if header is None:
            width = len(fields) - 1
            if not required <= width <= len(columns):
                expected = ",".join(("timestamp", *columns[:required])) + "".join(
                    f"[,{c}]" for c in columns[required:]
                )
                raise ConfigError(f"{where}: expected {expected}, got {len(fields)} field(s)")
            header = ["timestamp", *columns[:width]]
            table.columns = {c: [] for c in header[1:]}
        if len(fields) != len(header):
            raise ConfigError(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(fields)}")
        t, offset = parse_timestamp(fields[0], where)
        if previous is not None and t <= previous:
            raise ConfigError(f"{where}: timestamp {fields[0]} is not after the previous row's")
        previous = t
        if table.utc_offset_s is None and offset is not None:
            table.utc_offset_s = offset
        for column, text in zip(header[1:], fields[1:], strict=True):
            table.columns[column].append(_number(text, column, where))
        table.times.append(t)
        table.lines.append(number)
    if not table.times:
        raise ConfigError(f"{name}: no data rows")
    return table


def _looks_like_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_header(fields: list[str], columns: Sequence[str], required: int, where: str) -> list[str]:
    names = [f.lower() for f in fields]
    if names[0] != "timestamp":
        raise ConfigError(f"{where}: the header must start with 'timestamp', not {fields[0]!r}")
    unknown = [n for n in names[1:] if n not in columns]
    if unknown:
        raise ConfigError(f"{where}: unknown column {unknown[0]!r} (known: {', '.join(columns)})")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a column is named twice")
    missing = [c for c in columns[:required] if c not in names]
    if missing:
        raise ConfigError(f"{where}: the header has no {missing[0]!r} column")
    return names


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {column} {text!r} is not a finite number")
    if value < 0 and column != "price":  # prices can go negative on a saturated grid
        raise ConfigError(f"{where}: {column} must not be negative, got {text}")
    return value


def parse_trace(lines: Iterable[str], name: str = "trace", interpolation: Interpolation | None = None) -> Trace:
    """A :class:`Trace` from CSV lines; ConfigError naming the line of any mistake.

    ``interpolation`` overrides the file's ``# interpolation:`` comment (default linear).
    """
    table = parse_table(lines, TRACE_COLUMNS[1:], 1, name)
    return Trace(
        table.times,
        table.columns["watts"],
        table.columns.get("gco2_per_kwh"),
        table.columns.get("price"),
        interpolation=interpolation or table.interpolation or "linear",
        utc_offset_s=table.utc_offset_s or 0.0,
        notes=table.notes,
        name=name,
    )


def reading_from_text(text: str, where: str, loads: Callable[[str], Any]) -> SignalPoint:
    """One live budget reading: a bare number of watts, a JSON object with ``watts`` (and
    ``gco2_per_kwh``, ``price``), or CSV trace text whose last row counts. ``loads``
    decodes the JSON (the application passes its bounded decoder)."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"{where}: empty reading")
    try:
        watts = float(stripped)
    except ValueError:
        pass
    else:
        return _constant(where, watts)
    if stripped.startswith("{"):
        try:
            data = loads(stripped)
            watts = _json_number(data["watts"])
            carbon, price = (None if data.get(k) is None else _json_number(data[k]) for k in ("gco2_per_kwh", "price"))
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # an integer beyond a float overflows
            raise ConfigError(f"{where}: a JSON reading needs a numeric 'watts' ({exc})") from None
        return _constant(where, watts, carbon, price)
    trace = parse_trace(stripped.splitlines(), name=where)
    return trace.at(trace.end)


def _json_number(value: Any) -> float:
    """A JSON figure as a float: a number or numeric text, never true or false (nor an
    integer beyond a float: OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{str(value)[:40]!r} is not a number")
    return float(value)


def _constant(where: str, watts: float, carbon: float | None = None, price: float | None = None) -> SignalPoint:
    try:
        return ConstantSignal(watts, carbon, price).at(0.0)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def format_timestamp(t: float, utc_offset_s: float) -> str:
    stamp = datetime.fromtimestamp(t, UTC)
    if utc_offset_s:
        from datetime import timedelta, timezone

        stamp = stamp.astimezone(timezone(timedelta(seconds=utc_offset_s)))
    return stamp.isoformat()


def trace_text(trace: Trace, notes: Sequence[str] = ()) -> str:
    """The CSV text of a trace, with its notes (and ``notes``) as leading comments."""
    out = [f"# {n}" if n else "#" for n in [*trace.notes, *notes]]
    out.append(f"# interpolation: {trace.interpolation}")
    header = ["timestamp", "watts"]
    if trace.gco2_per_kwh is not None:
        header.append("gco2_per_kwh")
    if trace.price is not None:
        header.append("price")
    out.append(",".join(header))
    for i, t in enumerate(trace.times):
        row = [format_timestamp(t, trace.utc_offset_s), f"{trace.watts[i]:.1f}"]
        if trace.gco2_per_kwh is not None:
            row.append(f"{trace.gco2_per_kwh[i]:.1f}")
        if trace.price is not None:
            row.append(f"{trace.price[i]:.4f}")
        out.append(",".join(row))
    return "\n".join(out) + "\n"


def write_trace(path: str | Path, trace: Trace, notes: Sequence[str] = ()) -> None:
    try:
        Path(path).write_text(trace_text(trace, notes), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
