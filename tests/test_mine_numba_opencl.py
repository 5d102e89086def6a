"""The miner with the numba and opencl backends against the embedded pool, over real TCP.

Shares found by each backend are accepted by the pool, which re-checks every one with
hashlib; a regtest target (nearly every nonce a block) drives each backend's
result-overflow path through the engine. The OpenCL tests run wherever an OpenCL
platform exists (CI installs PoCL); a machine without one skips them, saying why.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from hashcore.backends import base
from hashcore.engine import Miner
from hashcore.errors import BackendUnavailable
from hashcore.stratum.blocktemplate import REGTEST_NBITS
from hashcore.stratum.pool import EmbeddedPool
from hashcore.work import difficulty_to_target, nbits_to_target
from tests.live import FAST, wait_until

DIFFICULTY = 1e-3  # about 4.3 million hashes a share: several a second at these backends' rates


def _options(name: str) -> dict[str, Any]:
    if name == "opencl":
        info = base.probe("opencl")
        if not info.available:
            if os.environ.get("CI") or os.environ.get("HASHCORE_REQUIRE_OPENCL"):
                raise BackendUnavailable(info.detail)
            pytest.skip(f"NO OPENCL PLATFORM: the OpenCL mining test is skipped ({info.detail})")
        return {"tune": False}
    return {}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path / "cache"))


def _miner(url: str, name: str) -> Miner:
    return Miner([url], "alice", "x", backends=[name], threads=1, backend_options={name: _options(name)}, **FAST)


@pytest.mark.parametrize("name", ["numba", "opencl"])
async def test_shares_found_by_the_backend_are_accepted_by_the_pool(name: str) -> None:
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with _miner(pool.url, name) as miner:
            await wait_until(lambda: miner.stats().accepted >= 3, timeout=60, what=f"3 shares from {name}")
            stats = miner.stats()
        assert stats.rejected == 0
        assert stats.backends[name].hashes == stats.hashes > 0
        assert pool.stats.accepted >= 3
        for _job, header, digest, _user in pool.stats.shares:
            assert hashlib.sha256(hashlib.sha256(header).digest()).digest() == digest
            assert int.from_bytes(digest, "little") <= difficulty_to_target(DIFFICULTY)


@pytest.mark.parametrize("name", ["numba", "opencl"])
async def test_a_block_candidate_under_an_every_nonce_target_is_accepted(name: str) -> None:
    # Regtest nbits: nearly every hash meets the block target, so a scan's results
    # overflow whatever buffer the backend has; the candidate must still be exact.
    async with EmbeddedPool(difficulty=1e12, nbits=REGTEST_NBITS, vardiff=None, job_interval=0) as pool:
        async with _miner(pool.url, name) as miner:
            await wait_until(lambda: miner.stats().blocks_accepted >= 1, timeout=60, what=f"a block from {name}")
            stats = miner.stats()
        assert stats.rejected == 0 and stats.block_candidates >= 1
        for _job, header, digest, _user in pool.stats.shares:
            assert hashlib.sha256(hashlib.sha256(header).digest()).digest() == digest
            assert int.from_bytes(digest, "little") <= nbits_to_target(REGTEST_NBITS)
