"""The carbon account against figures computed by hand."""

from __future__ import annotations

import csv
import io
import json

import pytest

from hashcore.errors import ConfigError
from hashcore.report.account import AccountSettings, CarbonBook
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.signals import Trace
from hashcore.throttle.simulation import simulate

KWH = 3.6e6


def test_a_book_splits_energy_by_source_and_prices_the_grid_part():
    book = CarbonBook(AccountSettings(contract_g=100.0, share_difficulty=1.0, interval_s=60.0), start=0.0)
    # 1 kW for a minute on 600 W of surplus and 300 W from the battery: 100 W from the grid at 400 g/kWh.
    book.add(0.0, 60.0, 1000.0, surplus_w=600.0, battery_w=300.0, gco2_per_kwh=400.0, hashes=2.0**32 * 10)
    # Then 500 W on 2 kW of surplus: 1.5 kW went unused (no battery to take it).
    book.add(60.0, 60.0, 500.0, surplus_w=2000.0, curtailed_w=1500.0, gco2_per_kwh=200.0, hashes=2.0**32 * 30)
    account = book.account()
    data = account.to_json()
    assert data["energy_j"] == 90_000.0
    assert (data["surplus_j"], data["battery_j"], data["grid_j"]) == (66_000.0, 18_000.0, 6_000.0)
    assert data["curtailed_j"] == 90_000.0
    assert data["co2_location_g"] == pytest.approx(6_000 / KWH * 400)  # 0.6667 g
    assert data["co2_market_g"] == pytest.approx(6_000 / KWH * 100)  # 0.1667 g
    hashes = 2.0**32 * 40
    assert data["g_co2_per_th"] == pytest.approx(6_000 / KWH * 400 / (hashes / 1e12))
    assert (data["shares"], data["shares_kind"]) == (40.0, "expected")
    assert data["g_co2_per_share"] == pytest.approx(6_000 / KWH * 400 / 40)
    rows = list(csv.DictReader(io.StringIO(account.csv_text())))
    assert [float(r["grid_j"]) for r in rows] == [6_000.0, 0.0]
    assert float(rows[1]["curtailed_j"]) == 90_000.0 and float(rows[0]["start"]) == 0.0


def test_without_a_contract_factor_market_based_falls_back_to_the_grid_average():
    book = CarbonBook(AccountSettings(), start=0.0)
    book.add(0.0, 3600.0, 1000.0, surplus_w=0.0, gco2_per_kwh=300.0)
    data = book.account().to_json()
    assert data["co2_location_g"] == data["co2_market_g"] == pytest.approx(300.0)
    assert any("market-based" in note for note in data["notes"])


def test_grid_energy_without_an_intensity_is_unknown_not_zero():
    book = CarbonBook(AccountSettings(contract_g=0.0), start=0.0)
    book.add(0.0, 60.0, 100.0, surplus_w=0.0)
    data = book.account().to_json()
    assert data["co2_location_g"] is None and data["co2_market_g"] == 0.0 and data["g_co2_per_th"] is None
    constant = CarbonBook(AccountSettings(grid_intensity_g=380.0), start=0.0)
    constant.add(0.0, 3600.0, 1000.0, surplus_w=0.0)
    assert constant.account().to_json()["co2_location_g"] == pytest.approx(380.0)


def test_a_grid_budget_is_all_grid_energy_and_live_shares_are_the_accepted_ones():
    book = CarbonBook(AccountSettings(budget_source="grid"), start=0.0)
    book.add(0.0, 3600.0, 2000.0, surplus_w=2000.0, gco2_per_kwh=100.0, hashes=1e15)
    book.set_accepted_shares(5)
    data = book.account().to_json()
    assert data["surplus_j"] == 0.0 and data["grid_j"] == 2 * KWH and data["co2_location_g"] == pytest.approx(200.0)
    assert (data["shares"], data["shares_kind"], data["g_co2_per_share"]) == (5, "accepted", pytest.approx(40.0))
    with pytest.raises(ConfigError):
        AccountSettings(budget_source="wind")


def test_a_small_simulated_run_matches_the_hand_computed_account(tmp_path):
    # A fleet of 900 W at full power that still draws 100 W paused, 20 J/TH, no lag: each
    # tick's power is exact. Surplus 1000 W, then none, then 500 W, a minute each; the
    # grid is at 300 g/kWh in the minute without surplus, and the contract says 100.
    trace = Trace([0.0, 60.0, 120.0, 180.0], [1000.0, 0.0, 500.0, 500.0],
                  gco2_per_kwh=[250.0, 300.0, 350.0, 350.0], interpolation="step")
    rate = 900.0 / 20e-12
    fleet = FleetModel((BackendModel("asic", 900.0, rate, paused_watts=100.0, kind="asic"),))
    settings = AccountSettings(budget_source="surplus", contract_g=100.0, share_difficulty=1e6, interval_s=60.0)
    report = simulate(trace, fleet, make_policy("follow", trace), start=0.0, end=180.0, tick_s=60.0,
                      plant=SimulatedMiner(fleet, lag_s=0.0), account=settings)
    assert report.account is not None
    data = report.account.to_json()
    # Minute 1: full power, 900 W of the 1000 W surplus, 100 W curtailed.
    # Minute 2: paused, 100 W from the grid. Minute 3: 500 W, all surplus, half the span.
    assert data["energy_j"] == pytest.approx(900 * 60 + 100 * 60 + 500 * 60)
    assert data["surplus_j"] == pytest.approx(900 * 60 + 500 * 60)
    assert data["grid_j"] == pytest.approx(100 * 60) and data["battery_j"] == 0.0
    assert data["curtailed_j"] == pytest.approx(100 * 60)
    assert data["co2_location_g"] == pytest.approx(6_000 / KWH * 300)  # 0.5 g
    assert data["co2_market_g"] == pytest.approx(6_000 / KWH * 100)
    hashes = rate * 60 * (1.0 + 0.0 + 0.5)
    assert data["hashes"] == pytest.approx(hashes)
    assert data["g_co2_per_th"] == pytest.approx(0.5 / (hashes / 1e12))
    assert data["shares"] == pytest.approx(hashes / (1e6 * 2**32))
    out = report.to_json()
    for key in ("curtailed_j", "battery_in_j", "battery_out_j", "battery_loss_j", "co2_location_g", "co2_market_g",
                "g_co2_per_th"):
        assert key in out
    assert out["co2_location_g"] == pytest.approx(0.5) and out["battery_in_j"] == 0.0
    json_path, csv_path = report.account.write(tmp_path)
    assert json.loads(json_path.read_text())["grid_j"] == pytest.approx(6000.0)
    assert len(csv_path.read_text().splitlines()) == 4
