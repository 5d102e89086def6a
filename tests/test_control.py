"""The control boundary: snapshot views, their JSON, redaction, and the doubles of tests/doubles.py."""

from __future__ import annotations

import json

import pytest

from hashcore.control import EnergyView, MinerControl, ThrottleControl, ThrottleView, budget_watts, power_target
from hashcore.errors import ConfigError
from tests import doubles
from tests.doubles import MinerDouble, ThrottleDouble

#: The ``hashcore mine --json`` summary's keys, in order (the energy fields last).
SUMMARY_KEYS = ["hashes", "seconds", "hashrate_hs", "accepted", "rejected", "stale", "discarded", "duplicates",
                "capped", "blocks", "pools", "backends", "paused", "joules", "watts", "j_per_hash", "j_per_th",
                "energy_source", "energy_exact", "energy_note", "recent_watts"]
POOL_KEYS = ["url", "user", "accepted", "rejected", "stale", "unanswered", "connected", "difficulty", "enabled",
             "priority", "difficulty_accepted", "last_share_time", "connects", "last_error"]
BACKEND_KEYS = ["hashes", "hashrate_hs", "recent_hashrate_hs", "threads", "path", "false_positives", "errors", "duty",
                "state", "active_threads", "accepted", "rejected", "stale", "difficulty_accepted", "last_share_time"]
ENERGY_KEYS = ["joules", "watts", "j_per_hash", "j_per_th", "energy_source", "energy_exact", "energy_note"]


def metered(**fields: object) -> EnergyView:
    defaults: dict[str, object] = {"joules": 5.0, "watts": 0.5, "j_per_hash": 5e-3, "j_per_th": 5e9,
                                   "source": "rapl", "exact": True, "note": "package 0"}
    return EnergyView(**{**defaults, **fields})  # type: ignore[arg-type]


def test_the_summary_keeps_its_keys_and_their_order() -> None:
    stats = doubles.stats(pools=(doubles.pool(),), energy=metered(recent_watts=0.7),
                          backends={"c": doubles.backend(energy=metered()), "numba": doubles.backend()})
    summary = json.loads(json.dumps(stats.to_json()))
    assert list(summary) == SUMMARY_KEYS
    assert list(summary["pools"][0]) == POOL_KEYS
    assert list(summary["backends"]["c"]) == BACKEND_KEYS + ENERGY_KEYS
    assert list(summary["backends"]["numba"]) == BACKEND_KEYS  # no meter reported on it
    assert summary["blocks"] == {"candidates": 0, "accepted": 0}
    assert (summary["energy_source"], summary["energy_exact"], summary["recent_watts"]) == ("rapl", True, 0.7)


def test_views_give_their_part_of_the_summary_and_nothing_else() -> None:
    pool = doubles.pool(accepted=3)
    assert pool.to_json()["accepted"] == 3 and "connects" in pool.to_json()
    energy = metered()
    assert energy.to_json()["joules"] == 5.0 and energy.to_json()["energy_source"] == "rapl"
    assert "recent_watts" not in energy.to_json()
    view = doubles.backend(state="paused", energy=energy)
    assert view.to_json()["state"] == "paused" and view.to_json()["energy_note"] == "package 0"
    with pytest.raises(TypeError):
        pool["accepted"]  # type: ignore[index]  # a view is read by attribute, not by key


def test_no_view_carries_a_password() -> None:
    secret = "stratum+tcp://bob:hunter2#x@pool.example:3333"
    stats = doubles.stats(pools=(doubles.pool(secret),), active_pool=secret)
    assert stats.pools[0].url == stats.active_pool == "stratum+tcp://bob@pool.example:3333"
    assert "hunter2" not in json.dumps(stats.to_json())


def test_snapshot_sums_and_the_active_pool() -> None:
    stats = doubles.stats(pools=(doubles.pool("a:1", unanswered=2, difficulty_accepted=1.5),
                                 doubles.pool("b:1", unanswered=1, difficulty_accepted=0.5)),
                          backends={"c": doubles.backend(duty=0.5, threads=3), "numba": doubles.backend(threads=1)},
                          active_pool="b:1")
    assert (stats.unanswered, stats.difficulty_accepted, stats.mean_duty) == (3, 2.0, 0.625)
    assert stats.pool_at(stats.active_pool) is stats.pools[1] and stats.pool_at("c:1") is None


def test_throttle_view_budget_and_power_target() -> None:
    throttle: ThrottleControl = ThrottleDouble(50.0, policy="surplus" * 20)
    assert budget_watts(throttle) == 50.0 and budget_watts(None) is None
    assert ThrottleView.from_status(throttle.status()).policy == ("surplus" * 20)[:80]
    assert power_target(12) == 12.0
    for bad in (0, -1, float("nan"), True, "5"):
        with pytest.raises(ConfigError, match="above 0"):
            power_target(bad)


def test_the_miner_double_records_knob_calls_and_shows_their_effects() -> None:
    miner: MinerControl = MinerDouble(doubles.stats(backends={"c": doubles.backend(threads=4, active_threads=4)}))
    miner.pause()
    miner.set_duty("c", 0.25)
    miner.set_threads("c", 9)
    index = miner.add_pool("stratum+tcp://carol:pw@pool.example:1")
    miner.disable_pool(index)
    stats = miner.stats()
    assert stats.paused and stats.backends["c"].duty == 0.25 and miner.active_threads("c") == 4
    assert stats.pools[index].url == "stratum+tcp://carol@pool.example:1" and not stats.pools[index].enabled
    assert isinstance(miner, MinerDouble)
    assert [call[0] for call in miner.calls] == ["pause", "set_duty", "set_threads", "add_pool", "disable_pool"]
    with pytest.raises(ConfigError):
        miner.set_duty("opencl", 1.0)
