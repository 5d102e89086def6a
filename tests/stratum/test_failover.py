"""The pool list's failover bookkeeping, driven with made-up times and no sockets."""

from __future__ import annotations

import pytest

from hashcore.errors import ConfigError, PoolError
from hashcore.stratum.failover import MIN_WAIT, PoolList
from hashcore.stratum.urls import parse_pool_url


def pools(count: int = 3) -> PoolList:
    """``count`` pools whose delay after n failures in a row is exactly 10 * n seconds."""
    endpoints = [parse_pool_url(f"stratum+tcp://pool{i}.example:3333") for i in range(count)]
    return PoolList(endpoints, backoff=lambda failures: 10.0 * failures)


def test_the_best_pool_whose_retry_time_has_come_is_tried_next():
    p = pools()
    assert p.next_pool(now=0.0) == 0
    assert p.failed(0, "refused", now=100.0) == 10.0
    assert p.next_pool(now=105.0) == 1
    assert p.next_pool(now=110.0) == 0


def test_failures_in_a_row_back_off_further_and_a_proved_connection_starts_afresh():
    p = pools(1)
    delays = [p.failed(0, "timed out", now=0.0) for _ in range(3)]
    assert delays == [10.0, 20.0, 30.0]
    assert p.status[0].last_error == "timed out"
    p.disconnected(0, proved=False)
    assert p.failed(0, "closed", now=0.0) == 40.0
    p.disconnected(0, proved=True)
    assert p.failed(0, "closed", now=0.0) == 10.0


def test_with_no_pool_ready_the_wait_is_until_the_soonest_retry():
    p = pools(2)
    p.failed(0, "x", now=0.0)  # back at 10
    p.failed(1, "x", now=0.0)
    p.failed(1, "x", now=0.0)  # back at 20
    assert p.next_pool(now=1.0) is None
    assert p.wait(now=1.0) == 9.0
    assert p.wait(now=10.0) == MIN_WAIT
    p.disable(0)
    assert p.wait(now=1.0) == 19.0


def test_a_pool_that_drops_a_configure_handshake_is_retried_at_once_with_a_plain_one():
    p = pools(1)
    p.configure_dropped(0)
    assert p.failed(0, "closed", now=0.0) is None
    assert p.status[0].plain_handshake and p.status[0].failures == 0
    assert p.next_pool(now=0.0) == 0
    assert p.failed(0, "closed", now=0.0) == 10.0  # learnt once: the next drop is a failure


def test_redirects_before_any_share_back_off_like_failures_and_after_one_wait_as_asked():
    p = pools(1)
    assert p.redirected(0, wait=1.0, now=0.0) == 1.0
    assert p.redirected(0, wait=1.0, now=0.0) == 10.0
    assert p.redirected(0, wait=1.0, now=0.0) == 20.0
    assert p.status[0].retry_at == 20.0
    p.disconnected(0, proved=True)
    assert p.redirected(0, wait=1.0, now=5.0) == 1.0
    assert p.status[0].retry_at == 6.0


def test_the_operator_reorders_enables_and_disables_pools():
    p = pools()
    p.prefer(2)
    assert p.priority == [2, 0, 1] and p.rank(2) == 0
    assert p.better_than(1) == [2, 0]
    p.disable(0)
    assert p.better_than(1) == [2]
    assert p.next_pool(now=0.0) == 2
    p.failed(1, "x", now=0.0)
    p.enable(1)
    assert p.status[1].enabled and p.status[1].retry_at == 0.0
    p.disable(2)
    assert p.first_enabled() == 1
    with pytest.raises(ConfigError, match="last enabled pool"):
        p.disable(1)
    with pytest.raises(ConfigError, match=r"no pool 3 \(pools are 0..2\)"):
        p.enable(3)


def test_an_added_pool_comes_last():
    p = pools(2)
    index = p.add(parse_pool_url("stratum+tcp://u:secret@late.example:3333"))
    assert index == 2 and p.priority == [0, 1, 2]
    assert p.status[2].url == "stratum+tcp://late.example:3333"


def test_fail_fast_only_when_every_enabled_pool_failed_and_none_was_ever_reached():
    p = pools(2)
    p.failed(0, "refused", now=0.0)
    p.check_reached()  # pool 1 has not been tried yet
    p.failed(1, "no route", now=0.0)
    with pytest.raises(PoolError, match=r"no pool could be reached .*refused.*no route"):
        p.check_reached()
    p.connected(1)
    p.disconnected(1, proved=False)
    p.check_reached()  # pool 1 was reached once: a later outage is not "unreachable"
