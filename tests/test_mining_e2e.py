"""The miner against real pools over real TCP on loopback: no socket is mocked."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from typing import Any

import pytest

from hashcore.engine import Miner
from hashcore.errors import ConfigError, PoolError
from hashcore.stratum.blocktemplate import REGTEST_NBITS
from hashcore.stratum.pool import EmbeddedPool
from hashcore.work import difficulty_to_target, nbits_to_target
from tests.live import FAST, free_port, wait_until

DIFFICULTY = 1e-4  # about 430,000 hashes a share: a few shares a second with hashlib




def miner_for(urls: list[str], **kwargs: Any) -> Miner:
    settings = {"backends": ["reference"], "threads": 1, **FAST, **kwargs}
    return Miner(urls, "alice", "x", **settings)


def assert_pool_shares_are_real(pool: EmbeddedPool) -> None:
    """Re-check every share the pool accepted, independently of both sides' code."""
    for _job_id, header, digest, _user in pool.stats.shares:
        assert hashlib.sha256(hashlib.sha256(header).digest()).digest() == digest
        assert int.from_bytes(digest, "little") <= difficulty_to_target(DIFFICULTY)


async def test_subscribe_authorize_mine_and_shares_accepted_and_reverified():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 3, what="3 accepted shares")
            miner.set_duty("reference", 0.0)
            await asyncio.sleep(0.5)  # the last scan returns
            await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")
            stats = miner.stats()
        assert stats.rejected == 0 and stats.stale == 0
        assert pool.stats.accepted == stats.accepted
        assert stats.hashes > 0 and stats.backends["reference"].hashes == stats.hashes
        assert_pool_shares_are_real(pool)


async def test_stats_changes_nothing_and_the_recent_power_is_sampled_on_the_engines_tick():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().hashes > 0, what="hashing")
            await asyncio.sleep(1.5)  # a second sample of the total energy
            samples = list(miner._power._samples)
            assert len(samples) >= 2
            snapshots = [miner.stats() for _ in range(50)]
            assert list(miner._power._samples) == samples  # reading the figures records nothing
            energy = snapshots[-1].energy
            assert energy.recent_watts is not None and energy.recent_watts > 0 and energy.joules > 0


async def test_version_rolled_shares_are_accepted():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        # Small spans per header make the engine roll version bits within seconds.
        async with miner_for([pool.url], nonce_span=1 << 14) as miner:
            await wait_until(
                lambda: any(header[:4] != b"\x00\x00\x00\x20" for _, header, _, _ in pool.stats.shares),
                what="a version-rolled share",
            )
            assert miner.stats().rejected == 0
        for _, header, _, _ in pool.stats.shares:
            version = int.from_bytes(header[:4], "little")
            assert version & ~0x1FFFE000 == 0x20000000  # only granted bits rolled
        assert_pool_shares_are_real(pool)


async def test_without_version_rolling_no_rolled_share_is_sent():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0, version_mask=0) as pool:
        async with miner_for([pool.url], nonce_span=1 << 14) as miner:
            await wait_until(lambda: miner.stats().accepted >= 3, what="3 accepted shares")
        assert all(header[:4] == b"\x00\x00\x00\x20" for _, header, _, _ in pool.stats.shares)


async def test_after_clean_jobs_no_share_of_an_old_job_is_sent():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        miner = miner_for([pool.url])
        cleaned: list[str] = []  # job ids made stale by a clean notify the miner processed
        violations: list[str] = []
        original_add = miner.source.add
        original_send = miner.client.send_share

        def add(template: Any) -> None:
            if template.job.clean_jobs:
                cleaned.extend(k[1] for k in miner.source._templates)
            original_add(template)

        def send_share(link: Any, origin: Any, nonce: int) -> Any:
            if origin.job_id in cleaned:
                violations.append(origin.job_id)
            return original_send(link, origin, nonce)

        miner.source.add = add  # type: ignore[method-assign]
        miner.client.send_share = send_share  # type: ignore[method-assign]
        async with miner:
            for _ in range(8):
                await asyncio.sleep(0.4)
                pool.new_job(clean=True)
            await wait_until(lambda: miner.stats().accepted >= 2, what="shares after the clean jobs")
        assert len(cleaned) >= 7
        # Shares already on the wire when the pool cleaned may come back stale; none may
        # be sent once the miner has read the clean notify.
        assert violations == []


async def test_pool_killed_and_restarted_miner_reconnects_and_goes_on():
    port = free_port()
    pool = EmbeddedPool(port=port, difficulty=DIFFICULTY, vardiff=None, job_interval=0)
    await pool.start()
    async with miner_for([pool.url]) as miner:
        await wait_until(lambda: miner.stats().accepted >= 1, what="a share before the kill")
        await pool.stop()
        await wait_until(lambda: not miner.stats().pools[0].connected, what="the miner to notice")
        before = miner.stats().accepted
        pool = EmbeddedPool(port=port, difficulty=DIFFICULTY, vardiff=None, job_interval=0)
        await pool.start()
        await wait_until(lambda: miner.stats().accepted >= before + 2, what="shares after the restart")
        assert miner.client.status[0].connects >= 2
    await pool.stop()
    assert pool.stats.accepted >= 2


async def test_failover_to_the_second_pool_and_back_to_the_first():
    primary_port = free_port()
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as backup:
        primary_url = f"stratum+tcp://127.0.0.1:{primary_port}"
        async with miner_for([primary_url, backup.url]) as miner:
            await wait_until(lambda: backup.stats.accepted >= 1, what="shares on the backup")
            assert miner.stats().active_pool == backup.url
            primary = EmbeddedPool(port=primary_port, difficulty=DIFFICULTY, vardiff=None, job_interval=0)
            await primary.start()
            try:
                await wait_until(lambda: miner.stats().pools[0].accepted >= 1, what="shares back on the primary")
                assert miner.stats().active_pool == primary_url
                assert miner.stats().pools[1].accepted >= 1 and primary.stats.accepted >= 1
            finally:
                await primary.stop()
        assert miner.stats().rejected == 0


async def test_block_target_nonce_below_share_difficulty_is_submitted_once_per_job():
    # Regtest nbits: nearly every hash meets the block target, none meets the share target.
    async with EmbeddedPool(difficulty=1e12, nbits=REGTEST_NBITS, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().blocks_accepted >= 1, what="a block candidate")
            for _ in range(3):
                pool.new_job(clean=True)
                await asyncio.sleep(0.6)
            await wait_until(lambda: miner.stats().blocks_accepted >= 4, what="one candidate per job")
            miner.set_duty("reference", 0.0)
            await asyncio.sleep(0.5)
            await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")
            stats = miner.stats()
        assert stats.block_candidates == stats.blocks_accepted == pool.stats.blocks
        assert stats.accepted == 0  # counted apart from shares
        jobs = [job_id for job_id, _, _, _ in pool.stats.shares]
        assert len(jobs) == len(set(jobs)) == 4  # exactly one per job
        for _, header, digest, _ in pool.stats.shares:
            assert int.from_bytes(digest, "little") <= nbits_to_target(REGTEST_NBITS)
            assert int.from_bytes(digest, "little") > difficulty_to_target(1e12)
            assert hashlib.sha256(hashlib.sha256(header).digest()).digest() == digest


async def test_set_extranonce_mid_session_keeps_shares_valid():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a first share")
            pool.set_extranonce()
            pool.new_job(clean=True)
            before = miner.stats().accepted
            await wait_until(lambda: miner.stats().accepted >= before + 2, what="shares with the new extranonce1")
            assert miner.stats().rejected == 0


async def test_tls_pool_with_verified_certificate_and_refused_when_untrusted(tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0, ssl_context=context) as pool:
        assert pool.url.startswith("stratum+ssl://")
        async with miner_for([pool.url], tls_ca=str(cert)) as miner:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a share over TLS")
        untrusted = miner_for([pool.url], fail_fast=True)
        with pytest.raises(PoolError, match="certificate"):
            async with untrusted:
                await untrusted.run(10)
        insecure = miner_for([pool.url], tls_verify=False)
        async with insecure:
            await wait_until(lambda: insecure.stats().accepted >= 1, what="a share with --tls-insecure")


async def test_unreachable_pools_fail_fast_with_every_reason():
    miner = miner_for([f"stratum+tcp://127.0.0.1:{free_port()}", f"stratum+tcp://127.0.0.1:{free_port()}"],
                      fail_fast=True)
    with pytest.raises(PoolError, match="no pool could be reached"):
        async with miner:
            await miner.run(10)


async def test_client_reconnect_to_the_same_host_is_followed():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a first share")
            message = {"id": None, "method": "client.reconnect", "params": ["127.0.0.1", pool.port, 0]}
            await pool.broadcast_raw(json.dumps(message).encode() + b"\n")
            await wait_until(lambda: miner.client.status[0].connects >= 2, what="the reconnect")
            before = miner.stats().accepted
            await wait_until(lambda: miner.stats().accepted > before, what="shares after the reconnect")


def _self_signed(tmp_path: Any) -> tuple[Any, Any]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "pool.crt", tmp_path / "pool.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_operator_switches_disables_and_adds_pools():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as first, \
            EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as second, \
            EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as third:
        async with miner_for([first.url, second.url]) as miner:
            await wait_until(lambda: first.stats.accepted >= 1, what="shares on the first pool")
            miner.switch_pool(1)
            await wait_until(lambda: second.stats.accepted >= 1, what="shares after switchpool")
            assert miner.stats().active_pool == second.url
            index = miner.add_pool(third.url)
            assert index == 2 and miner.stats().pools[2].priority == 2
            miner.disable_pool(1)  # the current one: fail over down the list
            await wait_until(lambda: miner.stats().active_pool == first.url, what="failover after disablepool")
            miner.disable_pool(0)
            await wait_until(lambda: third.stats.accepted >= 1, what="shares on the added pool")
            with pytest.raises(ConfigError, match="last enabled pool"):
                miner.disable_pool(2)
            miner.enable_pool(1)
            assert [p.enabled for p in miner.stats().pools] == [False, True, True]
            with pytest.raises(ConfigError, match="no pool 7"):
                miner.switch_pool(7)
            assert miner.stats().rejected == 0


async def test_pause_keeps_the_connection_and_resume_goes_on_mining():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with miner_for([pool.url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a first share")
            miner.pause()
            await asyncio.sleep(0.5)  # the scan in progress finishes
            hashes = miner.stats().hashes
            await asyncio.sleep(1.0)
            paused = miner.stats()
            assert paused.paused and paused.hashes == hashes
            assert paused.pools[0].connected and paused.active_pool == pool.url
            before = paused.accepted
            miner.resume()
            await wait_until(lambda: miner.stats().accepted > before, what="shares after resume")
            assert not miner.stats().paused


async def test_credentials_in_the_pool_url_are_used_and_never_shown():
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0,
                            accounts={"bob": "s3cret/pw"}) as pool:
        url = pool.url.replace("://", "://bob:s3cret%2Fpw@")
        async with miner_for([url]) as miner:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a share as bob")
            stats = miner.stats()
        assert pool.stats.shares[-1][3] == "bob"
        assert stats.pools[0].url == pool.url and stats.pools[0].user == "bob"
        assert "s3cret" not in json.dumps(stats.to_json())
