"""Live DVFS: the throttle sets an emulated BM1366 chain's clock and voltage to follow a
budget, with the curve measured by ``hashcore bench --sweep``, while the chain mines
shares the embedded pool accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from hashcore.app.inputs import load_fleet
from hashcore.app.live import LivePlan, LiveThrottle
from hashcore.engine import Miner
from hashcore.errors import ConfigError
from hashcore.stratum.pool import EmbeddedPool
from hashcore.throttle.policies import FollowBudget
from hashcore.throttle.signals import ConstantSignal
from tests.live import FAST, wait_until


@pytest.fixture(scope="module")
def sweep_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hashcore.cli", "bench", "--sweep", "--backend", "asic", "--asic-port", "emulator",
         "--sweep-mhz", "250,350,450,485", "--sweep-seconds", "0.5", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("sweep") / "bm1366.json"
    path.write_text(done.stdout.strip().splitlines()[-1])
    return str(path)


async def test_the_throttle_moves_the_chain_s_operating_point_with_the_budget(sweep_model: str) -> None:
    fleet = load_fleet(sweep_model)
    (chip,) = fleet.backends
    points = {round(p.freq_mhz): p for p in chip.curve.points}  # type: ignore[union-attr]
    # Between the 350 and 450 MHz points: DVFS must slow the chain below stock, not duty-cycle it.
    budget = ConstantSignal((points[350].watts + points[450].watts) / 2)
    async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0) as pool:
        miner = Miner([pool.url], "alice", backends=["asic"],
                      backend_options={"asic": {"port": "emulator", "chip": "bm1366"}}, **FAST)
        async with miner:
            (chain,) = miner._scanners["asic"]
            throttle = LiveThrottle(miner, LivePlan(budget, FollowBudget(), fleet, tick_s=0.25, actuator="dvfs"))
            throttle.start()
            try:
                await wait_until(lambda: 350 <= chain.driver.frequency_mhz < 450, timeout=20,
                                 what="the chain clocked between 350 and 450 MHz")
                assert miner.duty("asic") == 1.0  # the operating point did it, not duty cycling
                before = miner.stats().accepted
                await wait_until(lambda: miner.stats().accepted > before, timeout=30, what="shares at the lower clock")
                dvfs = throttle.status()["controller"]["backends"]["asic"]
            finally:
                await throttle.stop()
        assert miner.stats().rejected == 0
        assert json.dumps(dvfs)  # the controller's view of the chain is reportable


async def test_dvfs_is_refused_for_a_backend_without_clock_control(sweep_model: str) -> None:
    fleet = load_fleet(sweep_model)
    async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0) as pool:
        miner = Miner([pool.url], "alice", backends=["reference"], threads=1, **FAST)
        renamed = type(fleet)(tuple(replace(b, name="reference") for b in fleet.backends))
        async with miner:
            with pytest.raises(ConfigError, match="reference has no clock or voltage control"):
                LiveThrottle(miner, LivePlan(ConstantSignal(1.0), FollowBudget(), renamed, actuator="dvfs"))
