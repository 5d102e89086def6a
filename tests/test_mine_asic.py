"""The ASIC backend end to end: an emulated BM1366 chain behind a real pty mines shares
that the embedded pool accepts, version-rolled by the chip itself."""

from __future__ import annotations

import hashlib

import pytest

from hashcore.engine import Miner
from hashcore.errors import ConfigError
from hashcore.stratum.pool import EmbeddedPool
from tests.live import FAST, wait_until


async def test_emulated_bm1366_chain_gets_version_rolled_shares_accepted():
    async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0) as pool:
        miner = Miner([pool.url], "alice", backends=["asic"],
                      backend_options={"asic": {"port": "emulator", "chip": "bm1366", "emulator_hashrate": 2e6}},
                      **FAST)
        async with miner:
            await wait_until(lambda: miner.stats().accepted >= 3, timeout=60, what="3 accepted ASIC shares")
            await wait_until(
                lambda: any(header[:4] != b"\x00\x00\x00\x20" for _, header, _, _ in pool.stats.shares),
                timeout=60, what="a share the chip version-rolled",
            )
            stats = miner.stats()
        assert stats.rejected == 0
        backend = stats.backends["asic"]
        assert backend.hashes > 0
        assert backend.energy.source == "asic" and backend.energy.exact is True
        for _, header, digest, _ in pool.stats.shares:
            assert hashlib.sha256(hashlib.sha256(header).digest()).digest() == digest
            assert int.from_bytes(header[:4], "little") & ~0x1FFFE000 == 0x20000000


async def test_the_miner_sets_an_emulated_chain_s_clock_and_voltage():
    async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0) as pool:
        miner = Miner([pool.url], "alice", backends=["asic"],
                      backend_options={"asic": {"port": "emulator", "chip": "bm1366"}}, **FAST)
        async with miner:
            (chain,) = miner._scanners["asic"]
            miner.set_operating_point("asic", 250)
            assert chain.driver.frequency_mhz == pytest.approx(250, abs=5)
            low_mv = chain.driver.voltage_mv
            miner.set_operating_point("asic", 450)
            assert chain.driver.frequency_mhz == pytest.approx(450, abs=5)
            assert low_mv is not None and chain.driver.voltage_mv > low_mv  # voltage follows the V/f table
            with pytest.raises(ConfigError, match="not running"):
                miner.set_operating_point("c", 100)
