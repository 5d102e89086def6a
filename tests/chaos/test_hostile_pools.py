"""The miner against pools that misbehave the way real pools do, over real TCP.

Each test asserts the invariants as well as the case: the miner stops when told, every
share it sent was valid (the pool re-hashes each one), and its counts equal the pool's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hashcore.engine import Miner
from hashcore.stratum.blocktemplate import REGTEST_NBITS
from hashcore.stratum.client import StratumClient
from hashcore.stratum.options import ClientOptions
from tests.chaos.hostile_pool import HostilePool, Script
from tests.live import FAST, wait_until

#: A few shares a second with the reference backend (~0.85 MH/s).
DIFFICULTY = 1e-4


def miner_for(urls: list[str], **kwargs: Any) -> Miner:
    settings = {"backends": ["reference"], "threads": 1, **FAST, **kwargs}
    return Miner(urls, "alice", "x", **settings)


async def settle(miner: Miner) -> None:
    """Stop hashing and wait for every answer, so both sides' counts are final."""
    for name in miner.stats().backends:
        miner.set_duty(name, 0.0)
    await asyncio.sleep(0.4)
    await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")


def assert_counts_agree(miner: Miner, *pools: HostilePool) -> None:
    stats = miner.stats()
    assert sum(p.counts.unverified for p in pools) == 0, "a share that meets no target was sent"
    assert stats.accepted == sum(p.counts.accepted for p in pools)
    assert stats.rejected + stats.stale == sum(p.counts.rejected_total for p in pools) - sum(
        p.counts.rejected.get("below pool mindiff", 0) for p in pools)
    assert stats.duplicates == 0 or sum(p.counts.rejected.get("duplicate share", 0) for p in pools) == 0


async def test_a_line_of_100000_brackets_mid_session_is_a_protocol_error_and_mining_goes_on(caplog):
    caplog.set_level(logging.WARNING)
    nested = b"[" * 100_000 + b"\n"
    script = Script(difficulty=DIFFICULTY, lines_after_shares=[(2, nested)])
    async with HostilePool(script) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 5, what="shares after the nested line")
            await settle(miner)
            assert_counts_agree(miner, pool)
        assert pool.counts.connections == 1, "the nested line must not even cost a reconnect"
    assert any("nested deeper" in r.getMessage() for r in caplog.records)


async def test_a_difficulty_where_every_hash_is_a_share_is_capped_at_the_share_rate(caplog):
    caplog.set_level(logging.WARNING, logger="hashcore.engine")
    async with HostilePool(Script(difficulty=1e-8)) as pool:
        async with Miner([pool.url], "alice", backends=["c"], threads=1, max_share_rate=20, **FAST) as miner:
            await asyncio.sleep(3.0)
            submits_after_3s = pool.counts.submits
            started = time.monotonic()
            await miner.stop()
            stopped_in = time.monotonic() - started
            stats = miner.stats()
        # 20 in any second at most.
        assert 5 <= submits_after_3s <= 3 * 20
        assert stats.capped > 0 and stats.hashes > 1_000_000
        assert pool.counts.unverified == 0
        assert stopped_in < 2.0
    assert sum("sending shares at difficulty" in r.getMessage() for r in caplog.records) >= 1


async def test_a_silent_primary_is_left_within_the_handshake_deadline_and_never_probed_back():
    async with HostilePool(Script(silent=True)) as silent, HostilePool(Script(difficulty=DIFFICULTY)) as backup:
        miner = miner_for([silent.url, backup.url], handshake_timeout=1.0, failback_interval=0.5)
        async with miner:
            started = time.monotonic()
            await wait_until(lambda: miner.stats().active_pool == backup.url, timeout=5, what="failover")
            failover = time.monotonic() - started
            await asyncio.sleep(3.0)  # several failback probes of the silent pool
            assert miner.stats().active_pool == backup.url
            assert backup.counts.connections == 1, "a probe that only connects must not count as 'back'"
            assert silent.counts.connections >= 2  # the first try and the probes
            await wait_until(lambda: backup.counts.accepted >= 2, what="shares on the backup")
            await settle(miner)
            assert_counts_agree(miner, silent, backup)
        assert failover < 1.0 + 1.5


async def test_a_primary_that_stops_answering_shares_is_left_within_the_answer_deadline():
    quiet = Script(difficulty=DIFFICULTY, answer_submits=False)
    async with HostilePool(quiet) as primary, HostilePool(Script(difficulty=DIFFICULTY)) as backup:
        miner = miner_for([primary.url, backup.url], submit_timeout=1.0, failback_interval=60)
        async with miner:
            await wait_until(lambda: primary.counts.submits >= 1, what="a share to the quiet pool")
            sent = time.monotonic()
            await wait_until(lambda: miner.stats().active_pool == backup.url, timeout=5, what="failover")
            assert time.monotonic() - sent < 1.0 + 1.0
            await wait_until(lambda: backup.counts.accepted >= 2, what="shares on the backup")
            await settle(miner)
            stats = miner.stats()
        assert stats.pools[0].unanswered == primary.counts.submits
        assert stats.accepted == backup.counts.accepted


async def test_a_pool_that_drops_mining_configure_gets_a_plain_handshake_and_shares(caplog):
    caplog.set_level(logging.WARNING, logger="hashcore.stratum")
    async with HostilePool(Script(difficulty=DIFFICULTY, drop_on_configure=True)) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 2, what="shares after the fallback")
            await settle(miner)
            assert_counts_agree(miner, pool)
            assert miner.client.status[0].plain_handshake
    assert pool.counts.first_messages[:2] == ["mining.configure", "mining.subscribe"]
    assert pool.counts.connections == 2
    assert sum("plain handshake" in r.getMessage() for r in caplog.records) == 1


async def test_a_pool_that_refuses_block_candidates_below_its_difficulty_gets_one_and_never_bans():
    # Regtest: about half of all hashes meet the block target, far below the share difficulty.
    script = Script(difficulty=DIFFICULTY, nbits=REGTEST_NBITS, refuse_below_share=True, ban_after=3)
    async with HostilePool(script) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 4, what="shares at the pool's difficulty")
            await settle(miner)
            stats = miner.stats()
        assert pool.counts.rejected.get("below pool mindiff", 0) == 1
        assert not any("banned" in reason for reason in pool.counts.rejected)
        assert stats.block_candidates == 1 and stats.rejected == 0
        assert stats.accepted == pool.counts.accepted and pool.counts.unverified == 0


async def test_block_candidates_still_go_to_a_pool_that_accepts_them():
    script = Script(difficulty=DIFFICULTY, nbits=REGTEST_NBITS)
    async with HostilePool(script) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().blocks_accepted >= 1, what="a block accepted")
            await wait_until(lambda: pool.counts.accepted >= 2, what="shares")
            await settle(miner)
            assert_counts_agree(miner, pool)


async def test_a_job_storm_without_clean_jobs_loses_no_share():
    async with HostilePool(Script(difficulty=DIFFICULTY, storm_hz=100)) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 6, what="shares during the storm")
            await settle(miner)
            stats = miner.stats()
            assert_counts_agree(miner, pool)
        assert stats.stale == 0 and stats.discarded == 0
        assert pool.counts.rejected.get("job not found", 0) == 0


async def test_a_pool_that_authorizes_and_drops_sees_a_growing_backoff():
    async with HostilePool(Script(difficulty=DIFFICULTY, drop_after_authorize=0.0)) as pool:
        miner = miner_for([pool.url], backoff_base=0.2, backoff_max=10.0)
        async with miner:
            await asyncio.sleep(4.0)
        # 0.2, 0.4, 0.8, 1.6 s (each +-50%): at most 6 tries in 4 s; a reset on authorize made ~20.
        assert 3 <= pool.counts.connections <= 6


def test_reconnect_jitter_never_passes_the_cap():
    client = StratumClient(["stratum+tcp://127.0.0.1:1"], ClientOptions("u", backoff_base=1, backoff_max=60),
                           lambda *_: None)
    delays = [client._backoff(failures) for failures in range(1, 40) for _ in range(20)]
    assert max(delays) <= 60.0 and min(delays) >= 0.5


async def test_shares_found_before_the_authorize_answer_are_held_and_sent_after_it(caplog):
    caplog.set_level(logging.WARNING)
    script = Script(difficulty=DIFFICULTY / 4, job_before_authorize=True, authorize_delay=1.5)
    async with HostilePool(script) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 3, what="shares")
            await settle(miner)
            stats = miner.stats()
            assert_counts_agree(miner, pool)
    early = [t for t in pool.counts.submit_times if t < 0.05]
    assert early, "the test needs shares found while authorize was pending"
    assert all(t >= 0 for t in pool.counts.submit_times), "a share was sent before the worker was authorized"
    assert stats.pools[0].unanswered == 0
    assert not any("gone" in r.getMessage() for r in caplog.records)


async def test_a_pools_message_reaches_the_log_with_control_characters_escaped(caplog):
    caplog.set_level(logging.INFO, logger="hashcore.stratum")
    line = b'{"id":null,"method":"client.show_message","params":["\\u001b[2Jhi\\u0000there\\nfake log line"]}\n'
    async with HostilePool(Script(difficulty=DIFFICULTY, lines_after_authorize=[line])) as pool:
        async with miner_for([pool.url]):
            await wait_until(lambda: any("says" in r.getMessage() for r in caplog.records), what="the message")
    said = next(r.getMessage() for r in caplog.records if "says" in r.getMessage())
    assert "\x1b" not in said and "\x00" not in said and "\n" not in said
    assert "hi" in said and "there" in said


async def test_after_client_reconnect_the_log_names_the_new_port(caplog):
    caplog.set_level(logging.INFO, logger="hashcore.stratum")
    async with HostilePool(Script(difficulty=DIFFICULTY)) as target:
        port = target.port
        line = b'{"id":null,"method":"client.reconnect","params":["127.0.0.1",%d,0]}\n' % port
        async with HostilePool(Script(difficulty=DIFFICULTY, lines_after_authorize=[line])) as first:
            async with miner_for([first.url]):
                await wait_until(lambda: target.counts.authorized >= 1, what="the redirect")
                await asyncio.sleep(0.1)
    connects = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to")]
    assert connects[-1].endswith(f":{port}")


async def test_shares_unanswered_when_the_miner_stops_are_counted():
    async with HostilePool(Script(difficulty=DIFFICULTY, answer_submits=False)) as pool:
        miner = miner_for([pool.url], submit_timeout=60)
        async with miner:
            await wait_until(lambda: pool.counts.submits >= 2, what="unanswered shares")
            miner.set_duty("reference", 0.0)
            await asyncio.sleep(0.4)
        stats = miner.stats()
    assert stats.pools[0].unanswered == pool.counts.submits
    assert stats.accepted == 0


async def test_stop_is_prompt_while_the_pool_is_silent_and_shares_wait_for_answers():
    async with HostilePool(Script(difficulty=DIFFICULTY, answer_delay=30)) as pool:
        miner = miner_for([pool.url], submit_timeout=60)
        await miner.start()
        await wait_until(lambda: pool.counts.submits >= 1, what="a share in flight")
        started = time.monotonic()
        await miner.stop()
        assert time.monotonic() - started < 2.0


async def test_a_pool_that_redirects_to_itself_in_a_loop_backs_off_and_the_backup_serves():
    async with HostilePool(Script(redirect_self=True)) as looping, HostilePool(Script(difficulty=DIFFICULTY)) as backup:
        async with miner_for([looping.url, backup.url], backoff_base=0.2, backoff_max=5, failback_interval=60) as miner:
            await asyncio.sleep(4.0)
            await wait_until(lambda: backup.counts.accepted >= 2, what="shares on the backup")
            await settle(miner)
            assert_counts_agree(miner, looping, backup)
        # A loop without backoff made hundreds of connections a second.
        assert looping.counts.connections <= 12


async def test_a_pool_that_stops_reading_is_left_within_the_answer_deadline():
    flood = Script(difficulty=DIFFICULTY, stop_reading=True, ping_flood=200_000)
    async with HostilePool(flood) as deaf, HostilePool(Script(difficulty=DIFFICULTY)) as backup:
        async with miner_for([deaf.url, backup.url], submit_timeout=1.0, failback_interval=60) as miner:
            await wait_until(lambda: deaf.counts.authorized >= 1, what="the deaf pool's handshake")
            started = time.monotonic()
            await wait_until(lambda: miner.stats().active_pool == backup.url, timeout=15, what="failover")
            # The answer deadline, plus reading the flood (200,000 lines) on a loaded machine.
            assert time.monotonic() - started < 8.0
            await wait_until(lambda: backup.counts.accepted >= 1, what="shares on the backup")
            await settle(miner)


async def test_a_job_id_reused_for_another_job_never_carries_a_share_of_the_old_one():
    # A new job under the same id every half second; shares often enough that several
    # land inside each job's life.
    script = Script(difficulty=DIFFICULTY / 4, reuse_job_id=True, job_interval=0.5, job_clean=True)
    async with HostilePool(script) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 20, what="shares across reused ids")
            await settle(miner)
            stats = miner.stats()
    # Only a share already on its way when the pool reused the id can be refused.
    assert pool.counts.unverified == 0, "a share of the old job was sent as the new one's"
    assert stats.rejected == pool.counts.unverified_in_flight


async def test_a_narrowed_version_mask_is_in_force_at_once_without_a_new_job():
    script = Script(difficulty=DIFFICULTY, narrow_mask_after=1.0)
    async with HostilePool(script) as pool:
        # Small spans per header: version bits roll many times a second.
        async with miner_for([pool.url], nonce_span=1 << 14) as miner:
            await asyncio.sleep(1.2)
            accepted_before = pool.counts.accepted
            await wait_until(lambda: pool.counts.accepted >= accepted_before + 4, what="shares under the new mask")
            await settle(miner)
            assert_counts_agree(miner, pool)
    assert pool.counts.rejected.get("version bits outside the mask", 0) == 0


async def test_a_flood_of_answers_to_unknown_ids_is_logged_a_few_times_not_per_line(caplog):
    caplog.set_level(logging.WARNING, logger="hashcore.stratum")
    flood = [b'{"id":%d,"result":true,"error":null}\n' % (900_000 + i) for i in range(20_000)]
    async with HostilePool(Script(difficulty=DIFFICULTY, lines_after_authorize=flood)) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: pool.counts.accepted >= 2, what="shares after the flood")
            await settle(miner)
            assert_counts_agree(miner, pool)
    assert len([r for r in caplog.records if "unknown request id" in r.getMessage()]) <= 10


async def test_a_pool_that_hangs_mid_session_is_left_after_a_few_of_its_job_gaps():
    hung = Script(difficulty=1.0, job_interval=0.2, silent_after=1.5)  # no share due at difficulty 1
    async with HostilePool(hung) as primary, HostilePool(Script(difficulty=DIFFICULTY)) as backup:
        async with miner_for([primary.url, backup.url], job_silence_min=1.0, failback_interval=60) as miner:
            await asyncio.sleep(1.5)
            silent_from = time.monotonic()
            await wait_until(lambda: miner.stats().active_pool == backup.url, timeout=10, what="failover")
            assert time.monotonic() - silent_from < 1.0 + 1.5
            await wait_until(lambda: backup.counts.accepted >= 1, what="shares on the backup")
            await settle(miner)


async def test_answers_with_ids_echoed_as_strings_are_counted():
    async with HostilePool(Script(difficulty=DIFFICULTY, string_ids=True)) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 3, what="answered shares")
            await settle(miner)
            assert_counts_agree(miner, pool)
