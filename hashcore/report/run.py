"""A run's folder: what ``hashcore simulate --run DIR`` (or a live run) writes and
``hashcore report DIR`` reads.

::

    DIR/run.json       the run's report (the simulate --json object, or a live status)
    DIR/series.csv     the run over time, at most MAX_ROWS rows (tick means)
    DIR/account.json   the carbon account's totals (hashcore.report.account)
    DIR/account.csv    the account per quarter hour
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashcore.boundedio import read_json_bounded
from hashcore.errors import ConfigError
from hashcore.report.account import CarbonAccount, load_account

RUN_FILE = "run.json"
SERIES_FILE = "series.csv"
ACCOUNT_FILE = "account.json"
ACCOUNT_CSV = "account.csv"
#: Rows kept in series.csv: a day at one a minute.
MAX_ROWS = 1440
SERIES_COLUMNS = ("t", "surplus_w", "budget_w", "dispatch_w", "power_w", "hashrate_hs", "soc", "battery_w",
                  "grid_w", "curtailed_w", "freq_mhz", "gco2_per_kwh", "price")


@dataclass(slots=True)
class RunData:
    """A run folder, read back.

    Attributes:
        folder: where it is.
        meta: run.json.
        series: series.csv by column (NaN where a value is absent).
        account: account.json (empty when the run has none).
        account_rows: account.csv rows.
    """

    folder: Path
    meta: dict[str, Any]
    series: dict[str, np.ndarray]
    account: dict[str, Any] = field(default_factory=dict)
    account_rows: list[dict[str, float | None]] = field(default_factory=list)


def downsample(columns: Mapping[str, np.ndarray], max_rows: int = MAX_ROWS) -> dict[str, np.ndarray]:
    """Means over equal buckets of ticks, so that at most ``max_rows`` remain (``t``: the
    bucket's first tick)."""
    n = len(columns["t"])
    if n == 0:
        return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    k = max(1, math.ceil(n / max_rows))
    out: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        data = np.asarray(values, dtype=np.float64)
        if name == "t":
            out[name] = data[::k]
            continue
        pad = (-n) % k
        padded = np.concatenate([data, np.full(pad, np.nan)]).reshape(-1, k)
        with np.errstate(invalid="ignore"):
            counts = np.sum(np.isfinite(padded), axis=1)
            sums = np.nansum(padded, axis=1)
        out[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def write_series(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    names = [c for c in SERIES_COLUMNS if c in columns]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for row in zip(*(columns[n] for n in names), strict=True):
            writer.writerow(["" if not math.isfinite(v) else (f"{v:.3f}" if abs(v) >= 1 else f"{v:.6g}")
                             for v in (float(x) for x in row)])


def write_run_files(directory: str | Path, meta: Mapping[str, Any], columns: Mapping[str, np.ndarray],
                    account: CarbonAccount | None) -> Path:
    """Write a run folder (see the module docstring); returns it."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RUN_FILE).write_text(json.dumps(meta, indent=2, default=_jsonable) + "\n", encoding="utf-8")
        write_series(folder / SERIES_FILE, downsample(columns))
    except OSError as exc:
        raise ConfigError(f"cannot write the run to {folder}: {exc.strerror or exc}") from exc
    if account is not None:
        account.write(folder)
    return folder


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _float(text: str) -> float:
    try:
        return float(text) if text != "" else math.nan
    except ValueError:
        return math.nan


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ConfigError(f"{path}: empty")
    return rows[0], rows[1:]


def load_run(directory: str | Path) -> RunData:
    """Read a run folder; ConfigError naming what is missing or broken."""
    folder = Path(directory)
    meta_path = folder / RUN_FILE
    if not meta_path.is_file():
        raise ConfigError(f"{folder} is not a run folder: no {RUN_FILE} (write one with hashcore simulate --run DIR)")
    meta = read_json_bounded(meta_path, "run")
    try:
        header, rows = _read_csv(folder / SERIES_FILE)
    except OSError as exc:
        raise ConfigError(f"cannot read the run in {folder}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{meta_path}: not JSON ({exc})") from None
    if not isinstance(meta, dict) or "t" not in header:
        raise ConfigError(f"{folder}: {RUN_FILE} or {SERIES_FILE} is not a run's")
    series = {name: np.array([_float(r[i]) for r in rows if len(r) == len(header)]) for i, name in
              enumerate(header)}
    data = RunData(folder, meta, series)
    account_path = folder / ACCOUNT_FILE
    if account_path.is_file():
        data.account = load_account(account_path)
        csv_path = folder / ACCOUNT_CSV
        if csv_path.is_file():
            names, lines = _read_csv(csv_path)
            data.account_rows = [{n: (None if v == "" else _float(v)) for n, v in zip(names, line, strict=False)}
                                 for line in lines]
    return data


def series_columns(rows: Sequence[Sequence[float]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Columns from rows of floats (a live run's tick history)."""
    array = np.array(rows, dtype=np.float64).reshape(-1, len(names))
    return {name: array[:, i] for i, name in enumerate(names)}
