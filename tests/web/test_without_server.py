"""The chart history, what the page is sent, and the listen address: no server needed."""

from __future__ import annotations

import math

import pytest

from hashcore.control import EnergyView, MinerStats, ThrottleView, redact_url
from hashcore.errors import ConfigError
from hashcore.web import parse_listen
from hashcore.web.history import History
from hashcore.web.snapshot import bench_rows, snapshot
from tests import doubles


def test_hour_ring_keeps_the_last_hour_of_one_second_points() -> None:
    history = History()
    for second in range(5000):
        history.add(1_000_000 + second, 100.0, 10.0, None)
    hour = history.hour()
    assert len(hour) == 3600
    assert hour[-1][0] - hour[0][0] == 3599
    assert hour[-1] == (1_000_000 + 4999, 100.0, 10.0, None)


def test_day_ring_averages_each_minute_and_keeps_the_current_one() -> None:
    history = History()
    start = 60.0 * 1000
    for second in range(150):  # two full minutes and half of a third
        budget = 50.0 if second < 60 else None
        history.add(start + second, float(second), 2.0 * second, budget)
    day = history.day()
    assert [p[0] for p in day] == [start, start + 60, start + 120]
    assert day[0] == (start, 29.5, 59.0, 50.0)
    assert day[1] == (start + 60, 89.5, 179.0, None)  # no budget known that minute
    assert day[2][1] == pytest.approx(134.5)


def test_a_replayed_day_fits_the_day_ring_and_a_restart_clears_it() -> None:
    history = History()
    for minute in range(2000):
        history.add(minute * 60.0, 1.0, 1.0, 1.0)
    assert len(history.day()) == 1440
    history.add(5.0, 2.0, 2.0, 2.0)  # the clock went back: a new replay
    assert history.hour() == [(5.0, 2.0, 2.0, 2.0)]
    assert history.day() == [(0.0, 2.0, 2.0, 2.0)]


def test_figures_that_json_cannot_carry_become_unknown() -> None:
    history = History()
    point = history.add(1.0, math.nan, math.inf, None)
    assert point == (1.0, None, None, None)


def test_credentials_are_stripped_from_urls() -> None:
    assert redact_url("stratum+tcp://bob:secret@pool.example:3333") == "stratum+tcp://bob@pool.example:3333"
    assert redact_url("stratum+tcp://:secret@pool.example:3333") == "stratum+tcp://pool.example:3333"
    assert redact_url("stratum+tcp://bob@pool.example:3333") == "stratum+tcp://bob@pool.example:3333"
    assert redact_url("stratum+tcp://pool.example:3333") == "stratum+tcp://pool.example:3333"
    assert redact_url("bob:pa@ss@pool.example:3333", keep_user=False) == "pool.example:3333"


def test_only_four_throttle_fields_leave_and_only_as_plain_values() -> None:
    view = ThrottleView.from_status({"budget_w": 12, "power_w": math.nan, "policy": "carbon" * 40, "state": None,
                                     "api_key": "x"}).to_json()
    assert view == {"budget_w": 12.0, "power_w": None, "policy": ("carbon" * 40)[:80], "state": None}
    assert ThrottleView.from_status({}).to_json() == {"budget_w": None, "power_w": None, "policy": None, "state": None}


def test_bench_rows_keep_the_table_columns_only() -> None:
    rows = bench_rows({"backend": "c", "threads": 2, "hashrate_hs": 1e6, "energy_exact": 1, "energy_note": "n"})
    assert rows[0]["backend"] == "c" and rows[0]["threads"] == 2 and rows[0]["energy_exact"] is True
    assert "energy_note" not in rows[0] and rows[0]["j_per_th"] is None
    with pytest.raises(ValueError, match="report 0"):
        bench_rows([{"hashrate_hs": 1}])
    with pytest.raises(ValueError):
        bench_rows("bench.json")


def _stats(**changes: object) -> MinerStats:
    fields: dict[str, object] = {
        "hashrate_hs": 100.0, "recent_hashrate_hs": 120.0, "accepted": 3, "rejected": 1,
        "pools": (doubles.pool("stratum+tcp://a:pw@h:1", user="a"),),
        "backends": {"c": doubles.backend(duty=0.5, threads=3, state="retrying: " + "x" * 200),
                     "numba": doubles.backend(duty=1.0, threads=1)},
        "energy": EnergyView(joules=5.0, watts=0.5, recent_watts=math.nan, j_per_th=5e9, source="estimate",
                             note="CPU time"),
        "active_pool": "stratum+tcp://a:pw@h:1",
    }
    fields.update(changes)
    return doubles.stats(**fields)


def test_snapshot_is_the_summary_plus_the_live_figures() -> None:
    stats = _stats()
    snap = snapshot(stats, ThrottleView(budget_w=30.0, policy="solar"), now=100.0, state="mining", control=False)
    expected = stats.to_json()
    expected["recent_watts"] = None
    expected["backends"]["c"]["state"] = "retrying: " + "x" * 70  # a label's length
    assert snap["summary"] == expected
    assert snap["summary"]["pools"][0]["url"] == "stratum+tcp://a@h:1"
    assert snap["live"] == {"recent_hashrate_hs": 120.0, "active_pool": "stratum+tcp://a@h:1", "duty": 0.625}
    assert snap["point"] == [100.0, 120.0, None, 30.0]
    assert snap["throttle"] == {"budget_w": 30.0, "power_w": None, "policy": "solar", "state": None}
    assert "pw" not in str(snap)
    assert _stats(backends={}).mean_duty is None


def test_listen_addresses_parse_and_bad_ones_are_named() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad, message in (("8080", "HOST:PORT"), ("::1:80", "brackets"), ("h:http", "not a port"),
                         ("h:70000", "0-65535")):
        with pytest.raises(ConfigError, match=message):
            parse_listen(bad)
