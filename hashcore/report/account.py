"""The carbon account of a run: energy by source, Scope 2 emissions, per TH and per share.

Terms are the GHG Protocol Scope 2 Guidance's (2015):

- Energy by source: **surplus** (on-site renewable generation the site did not need,
  used directly), **battery** (that surplus, stored and delivered later) and **grid**
  (everything else: purchased electricity). ``surplus_j + battery_j + grid_j`` is the
  energy the miners used. **Curtailed** is surplus nobody used: not mined, not stored.
- **Location-based** emissions: grid energy times the grid's average intensity at the
  time it was drawn (the trace's ``gco2_per_kwh``, else a constant ``--grid-intensity``).
  On-site generation consumed on site carries no Scope 2 emissions, and the battery only
  ever holds surplus, so surplus and battery energy count zero.
- **Market-based** emissions: grid energy times the operator's contractual factor
  (``--contract-gco2``: a supplier's rate, or 0 for energy backed by certificates). With
  no contract factor the Guidance's hierarchy ends at the grid average, so the
  location-based figures are used and the account says so.
- Intensities: gCO2 per TH (``hashes / 1e12``) and per accepted share. A simulation has
  no pool, so its shares are the expected number at ``share_difficulty``
  (``hashes / (D × 2**32)``), and the account labels them ``expected``.

Where the grid energy has no intensity at all, the emissions are None rather than a
guess. The account keeps a row per ``interval_s`` (a quarter hour) for the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashcore.boundedio import read_json_bounded
from hashcore.errors import ConfigError

#: Joules in a kilowatt-hour (every kWh figure of the throttle and the report).
J_PER_KWH = 3.6e6
_HASHES_PER_SHARE = 2.0**32
BUDGET_SOURCES = ("auto", "surplus", "grid")


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """How a run's energy is accounted.

    Attributes:
        budget_source: ``surplus`` (the budget is on-site renewable surplus) or ``grid``
            (the budget is a grid allowance: every joule is grid energy).
        grid_intensity_g: gCO2/kWh for grid energy when the signal has no intensity.
        contract_g: the market-based factor, gCO2/kWh (None: none given).
        share_difficulty: for the expected shares of a simulation.
        interval_s: the length of a CSV row.
    """

    budget_source: str = "surplus"
    grid_intensity_g: float | None = None
    contract_g: float | None = None
    share_difficulty: float = 65_536.0
    interval_s: float = 900.0

    def __post_init__(self) -> None:
        if self.budget_source not in ("surplus", "grid"):
            raise ConfigError(f"the budget's source is surplus or grid, not {self.budget_source!r}")
        for name, value in (("--grid-intensity", self.grid_intensity_g), ("--contract-gco2", self.contract_g)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be zero or more gCO2/kWh, not {value}")
        if not (self.share_difficulty > 0 and self.interval_s > 0):
            raise ConfigError("the share difficulty and the account's interval must be positive")


@dataclass(slots=True)
class AccountRow:
    """One interval of the account (joules, grams, hashes)."""

    start: float
    seconds: float = 0.0
    surplus_j: float = 0.0
    battery_j: float = 0.0
    grid_j: float = 0.0
    curtailed_j: float = 0.0
    battery_in_j: float = 0.0
    battery_loss_j: float = 0.0
    co2_location_g: float | None = 0.0
    co2_market_g: float | None = 0.0
    hashes: float = 0.0

    @property
    def energy_j(self) -> float:
        return self.surplus_j + self.battery_j + self.grid_j


_ROW_FIELDS = ("start", "seconds", "energy_j", "surplus_j", "battery_j", "grid_j", "curtailed_j", "battery_in_j",
               "battery_loss_j", "co2_location_g", "co2_market_g", "hashes")


@dataclass(slots=True)
class CarbonAccount:
    """The totals and rows of a run's carbon account (see the module docstring)."""

    settings: AccountSettings
    rows: list[AccountRow]
    shares: float
    shares_kind: str
    battery_out_j: float
    notes: list[str] = field(default_factory=list)

    def _total(self, name: str) -> float:
        return float(sum(getattr(r, name) for r in self.rows))

    def _total_or_none(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.rows]
        return None if any(v is None for v in values) else float(sum(values))

    @property
    def energy_j(self) -> float:
        return self._total("surplus_j") + self._total("battery_j") + self._total("grid_j")

    @property
    def hashes(self) -> float:
        return self._total("hashes")

    @property
    def co2_location_g(self) -> float | None:
        return self._total_or_none("co2_location_g")

    @property
    def co2_market_g(self) -> float | None:
        return self._total_or_none("co2_market_g")

    def per_th(self, grams: float | None) -> float | None:
        return None if grams is None or self.hashes <= 0 else grams / (self.hashes / 1e12)

    def per_share(self, grams: float | None) -> float | None:
        return None if grams is None or self.shares <= 0 else grams / self.shares

    def to_json(self) -> dict[str, Any]:
        location, market = self.co2_location_g, self.co2_market_g
        settings = self.settings
        return {
            "energy_j": self.energy_j,
            "surplus_j": self._total("surplus_j"),
            "battery_j": self._total("battery_j"),
            "grid_j": self._total("grid_j"),
            "curtailed_j": self._total("curtailed_j"),
            "battery_in_j": self._total("battery_in_j"),
            "battery_out_j": self.battery_out_j,
            "battery_loss_j": self._total("battery_loss_j"),
            "co2_location_g": location,
            "co2_market_g": market,
            "hashes": self.hashes,
            "terahashes": self.hashes / 1e12,
            "shares": self.shares,
            "shares_kind": self.shares_kind,
            "share_difficulty": settings.share_difficulty if self.shares_kind == "expected" else None,
            "g_co2_per_th": self.per_th(location),
            "g_co2_per_th_market": self.per_th(market),
            "g_co2_per_share": self.per_share(location),
            "g_co2_per_share_market": self.per_share(market),
            "budget_source": settings.budget_source,
            "grid_intensity_g": settings.grid_intensity_g,
            "contract_g": settings.contract_g,
            "method": "GHG Protocol Scope 2: location-based (grid average intensity) and market-based "
                      "(contractual factor); on-site surplus and battery energy count zero",
            "notes": self.notes,
        }

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_ROW_FIELDS)
        for row in self.rows:
            writer.writerow([_cell(getattr(row, name)) for name in _ROW_FIELDS])
        return out.getvalue()

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """``account.json`` and ``account.csv`` in ``directory`` (made if needed)."""
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            json_path, csv_path = folder / "account.json", folder / "account.csv"
            json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
            csv_path.write_text(self.csv_text(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write the carbon account to {folder}: {exc.strerror or exc}") from exc
        return json_path, csv_path


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.12g}" if isinstance(value, float) else str(value)


class CarbonBook:
    """Books a run tick by tick into a :class:`CarbonAccount`.

    Args:
        settings: how to account.
        start: the run's first instant (rows start there, every ``interval_s``).
    """

    def __init__(self, settings: AccountSettings, start: float) -> None:
        self.settings = settings
        self.start = start
        self.rows: list[AccountRow] = []
        self.battery_out_j = 0.0
        self.shares = 0.0
        self._accepted: float | None = None
        self._missing_intensity = False
        self._fallback_market = settings.contract_g is None

    def add(self, t: float, dt: float, power_w: float, *, surplus_w: float, battery_w: float = 0.0,
            curtailed_w: float = 0.0, battery_in_w: float = 0.0, battery_loss_j: float = 0.0,
            gco2_per_kwh: float | None = None, hashes: float = 0.0) -> None:
        """One tick [t, t + dt] at average power ``power_w``, ``surplus_w`` of surplus
        available (ignored for a grid budget) and ``battery_w`` delivered by the battery."""
        row = self._row(t)
        energy = power_w * dt
        surplus = 0.0 if self.settings.budget_source == "grid" else min(max(0.0, surplus_w) * dt, energy)
        battery = min(max(0.0, battery_w) * dt, energy - surplus)
        grid = max(0.0, energy - surplus - battery)
        row.seconds += dt
        row.surplus_j += surplus
        row.battery_j += battery
        row.grid_j += grid
        row.curtailed_j += max(0.0, curtailed_w) * dt
        row.battery_in_j += max(0.0, battery_in_w) * dt
        row.battery_loss_j += battery_loss_j
        row.hashes += hashes
        self.battery_out_j += battery
        intensity = gco2_per_kwh if gco2_per_kwh is not None else self.settings.grid_intensity_g
        if intensity is None and grid > 0:
            self._missing_intensity = True
        location = None if intensity is None else grid / J_PER_KWH * intensity
        market_factor = self.settings.contract_g if self.settings.contract_g is not None else intensity
        market = None if market_factor is None else grid / J_PER_KWH * market_factor
        if grid <= 0:
            location = market = 0.0
        row.co2_location_g = None if row.co2_location_g is None or location is None else row.co2_location_g + location
        row.co2_market_g = None if row.co2_market_g is None or market is None else row.co2_market_g + market
        self.shares += hashes / (self.settings.share_difficulty * _HASHES_PER_SHARE)

    def set_accepted_shares(self, accepted: float) -> None:
        """A live run's accepted shares (replacing the expected count)."""
        self._accepted = accepted

    def _row(self, t: float) -> AccountRow:
        index = int((t - self.start) // self.settings.interval_s)
        while len(self.rows) <= index:
            self.rows.append(AccountRow(self.start + len(self.rows) * self.settings.interval_s))
        return self.rows[max(0, index)]

    def account(self) -> CarbonAccount:
        notes = []
        if self._missing_intensity:
            notes.append("grid energy without a carbon intensity (no gco2_per_kwh in the signal and no "
                         "--grid-intensity): its emissions are unknown")
        if self._fallback_market:
            notes.append("no contractual factor (--contract-gco2): market-based emissions use the grid average, "
                         "the last step of the Scope 2 hierarchy")
        if self.settings.budget_source == "grid":
            notes.append("the budget is grid power: every joule counts as grid energy")
        rows = [AccountRow(r.start, r.seconds, r.surplus_j, r.battery_j, r.grid_j, r.curtailed_j, r.battery_in_j,
                           r.battery_loss_j, r.co2_location_g, r.co2_market_g, r.hashes) for r in self.rows]
        if self._accepted is not None:
            return CarbonAccount(self.settings, rows, self._accepted, "accepted", self.battery_out_j, notes)
        return CarbonAccount(self.settings, rows, self.shares, "expected", self.battery_out_j, notes)


def load_account(path: str | Path) -> dict[str, Any]:
    """An ``account.json`` as written by :meth:`CarbonAccount.write`."""
    data = read_json_bounded(path, "carbon account")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a carbon account")
    return data
