"""Pool addresses nobody can resolve, and credentials typed in the wrong place: one line
and no password shown, or a failed pool the miner moves on from; never a crash."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from hashcore.errors import ConfigError
from hashcore.stratum.urls import parse_pool_url
from tests.chaos.hostile_pool import HostilePool, Script
from tests.chaos.test_hostile_pools import DIFFICULTY, miner_for, settle
from tests.live import wait_until


@pytest.mark.parametrize("host", ["a..b", "a" * 64, ".", "-" * 300])
def test_a_host_name_no_resolver_can_encode_is_refused_as_the_url_is_read(host):
    with pytest.raises(ConfigError, match="not a host name"):
        parse_pool_url(f"stratum+tcp://u:SECRET@{host}:3333")


@pytest.mark.parametrize("url", ["stratum+tcp://u:SECRET@a..b:3333", "stratum+tcp://u:SECRET:127.0.0.1:3333",
                                 "u:SECRET:pool.example:3333"])
def test_the_cli_names_the_mistake_in_one_line_without_the_password(url):
    done = subprocess.run([sys.executable, "-m", "hashcore.cli", "mine", "--pool", url, "--user", "w",
                           "--api-listen", "off"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SECRET" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


async def test_a_redirect_to_an_unencodable_host_is_a_failed_connection_not_a_crash(caplog):
    caplog.set_level(logging.INFO, logger="hashcore.stratum")
    redirect = b'{"id":null,"method":"client.reconnect","params":["a..b",3333,0]}\n'
    async with HostilePool(Script(difficulty=DIFFICULTY, lines_after_shares=[(1, redirect)])) as pool:
        async with miner_for([pool.url], allow_redirect=True) as miner:
            await wait_until(lambda: pool.counts.connections >= 2 and pool.counts.accepted >= 2,
                             what="back on the pool after the failed redirect")
            await settle(miner)
    assert any("cannot look up 'a..b'" in r.getMessage() for r in caplog.records)


async def test_the_summary_after_a_stop_names_the_pool_and_says_stopped():
    async with HostilePool(Script(difficulty=DIFFICULTY)) as pool:
        url = pool.url
        async with miner_for([url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 1, what="a share")
        stats = miner.stats()
    assert stats.active_pool == url and stats.pools[0].connected
    assert stats.backends["reference"].state == "stopped"
