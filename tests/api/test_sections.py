"""The cgminer reply sections drawn from a snapshot, without a server."""

from __future__ import annotations

import math

import pytest

from hashcore.api import sections
from hashcore.control import EnergyView
from tests.doubles import ThrottleDouble, backend, pool, stats


def test_devices_are_numbered_within_their_kind_in_the_order_the_backends_run() -> None:
    snapshot = stats(backends={"opencl": backend(), "c": backend(), "asic": backend(), "numba": backend()})
    assert sections.device_ids(snapshot) == [("GPU", 0), ("CPU", 0), ("ASC", 0), ("CPU", 1)]
    assert sections.device_counts(snapshot) == "1 GPU(s) - 2 CPU(s) - 1 ASC(s)"
    assert [row.get("CPU", row.get("GPU", row.get("ASC"))) for row in sections.device_rows(snapshot)] == [0, 0, 0, 1]
    assert [row["ID"] for row in sections.stats_rows(snapshot, None)[1:]] == ["GPU0", "CPU0", "ASC0", "CPU1"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"enabled": False, "connected": True}, "Disabled"),
    ({"connected": True, "last_error": "reset"}, "Alive"),
    ({"last_error": "refused", "connects": 3}, "Dead"),
    ({"connects": 1}, "Alive"),
    ({}, "Unknown"),
])
def test_a_pools_status_follows_what_the_client_knows(fields, expected) -> None:
    assert sections.pool_status(pool(**fields)) == expected


@pytest.mark.parametrize(("view", "paused", "enabled", "status"), [
    (backend(), False, "Y", "Alive"),
    (backend(), True, "N", "Alive"),
    (backend(duty=0.0), False, "N", "Alive"),
    (backend(active_threads=0), False, "N", "Alive"),
    (backend(state="retrying: device busy"), False, "Y", "Sick"),
    (backend(state="failed: no device"), False, "N", "Dead"),
])
def test_a_devices_enabled_and_status_fields_tell_hashing_from_health(view, paused, enabled, status) -> None:
    row = sections.device_rows(stats(backends={"c": view}, paused=paused))[0]
    assert (row["Enabled"], row["Status"], row["State"]) == (enabled, status, view.state)


def test_a_figure_that_does_not_exist_is_none_and_the_others_are_rounded() -> None:
    assert [sections.round_figure(v, 3) for v in (None, True, math.nan, math.inf, 1.23456, 2)] == \
        [None, None, None, None, 1.235, 2.0]
    assert sections.energy_fields(None) == {"Power av": None, "Energy": None, "J/TH": None}
    energy = EnergyView(joules=12.3456, watts=1.5, j_per_th=None)
    assert sections.energy_fields(energy) == {"Power av": 1.5, "Energy": 12.346, "J/TH": None}


def test_power_limit_is_shown_only_with_a_throttle() -> None:
    snapshot = stats(energy=EnergyView(recent_watts=41.23456, source="rapl", exact=True))
    assert "Power Limit" not in sections.summary_row(snapshot, None)
    row = sections.power_row(snapshot, ThrottleDouble(35.0))
    assert (row["Power"], row["Power Limit"], row["Energy Source"], row["Energy Exact"]) == (41.235, 35.0, "rapl", True)


def test_the_stats_miner_row_carries_the_throttles_plain_fields_only() -> None:
    throttle = ThrottleDouble(50.0, policy="solar", state="following", curve=[1, 2], power_w=None)
    rows = sections.stats_rows(stats(pools=(pool(), pool("stratum+tcp://b.example:3333"))), throttle)
    miner = rows[0]
    assert miner["Throttle policy"] == "solar" and miner["Throttle budget_w"] == 50.0
    assert miner["Throttle power_w"] is None and "Throttle curve" not in miner
    assert [row["STATS"] for row in rows] == [0, 1, 2, 3]
    assert [row["ID"] for row in rows] == ["HASHCORE", "CPU0", "POOL0", "POOL1"]
