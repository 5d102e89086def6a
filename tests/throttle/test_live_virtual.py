"""The live throttle's loop on a virtual clock, against a miner double whose meter sees
the whole device (an idle floor under the mining power, as RAPL does)."""

from __future__ import annotations

import asyncio

import pytest

from hashcore.app.live import LivePlan, LiveThrottle
from hashcore.control import EnergyView, MinerStats
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.policies import FollowBudget
from tests import doubles

from .conftest import steps

IDLE_W = 50.0


class MeteredMiner:
    """Knobs of the engine, and a package meter: idle 50 W plus 12 W per busy thread
    (the model below says 10: the controller has to learn the rest)."""

    def __init__(self, clock: VirtualClock, threads: int = 2) -> None:
        self.clock = clock
        self._max_threads = threads
        self.paused = False
        self._duty, self._threads = 1.0, threads
        self._joules = self._hashes = 0.0
        self._at = clock.now()
        self._started = clock.now()

    def set_duty(self, backend: str, duty: float) -> None:
        self._advance()
        self._duty = duty

    def set_threads(self, backend: str, threads: int) -> None:
        self._advance()
        self._threads = threads

    def duty(self, backend: str) -> float:
        return self._duty

    def max_threads(self, backend: str) -> int:
        return self._max_threads

    def has_operating_points(self, backend: str) -> bool:
        return False

    def active_threads(self, backend: str) -> int:
        return self._threads

    def mining_watts(self) -> float:
        return 0.0 if self.paused else 12.0 * self._threads * self._duty

    def _advance(self) -> None:
        dt = self.clock.now() - self._at
        self._joules += (IDLE_W + self.mining_watts()) * dt
        self._hashes += self.mining_watts() / 1e-7 * dt
        self._at = self.clock.now()

    def stats(self) -> MinerStats:
        self._advance()
        return doubles.stats(energy=EnergyView(joules=self._joules, source="rapl"),
                             seconds=self.clock.now() - self._started, hashes=int(self._hashes))


async def run_until(throttle: LiveThrottle, clock: VirtualClock, t: float) -> None:
    while clock.now() < t:
        await asyncio.sleep(0)


async def test_a_measured_meter_is_calibrated_paused_then_followed_above_its_idle_floor():
    clock = VirtualClock(0.0)
    miner = MeteredMiner(clock)
    fleet = FleetModel((BackendModel("c", 20.0, 2e8, threads=2, source="rapl"),))
    budget = steps([(0, 15.0), (30, 6.0), (60, 30.0), (1000, 30.0)])
    throttle = LiveThrottle(miner, LivePlan(budget, FollowBudget(), fleet, tick_s=1.0), clock=clock)
    throttle.start()
    assert throttle.status()["state"] == "calibrating" and miner.duty("c") == 0.0
    await run_until(throttle, clock, 5)
    status = throttle.status()
    assert status["idle_w"] == pytest.approx(IDLE_W)
    await run_until(throttle, clock, 29)
    assert miner.mining_watts() == pytest.approx(15.0, rel=0.02)  # 15 W above the floor, not 15 W in all
    assert throttle.controller.gain == pytest.approx(1.2, rel=0.02)
    await run_until(throttle, clock, 33)
    assert miner.mining_watts() == pytest.approx(6.0, rel=0.02)  # the learned gain lands the step at once
    await run_until(throttle, clock, 65)
    assert miner.mining_watts() == pytest.approx(24.0) and throttle.status()["state"] == "full"
    figures = throttle.status()["figures"]
    assert figures["energy_over_budget_j"] < 0.02 * figures["energy_j"]
    await throttle.stop()


async def test_while_the_operator_pauses_the_miner_the_gain_does_not_learn_the_silence():
    clock = VirtualClock(0.0)
    miner = MeteredMiner(clock)
    fleet = FleetModel((BackendModel("c", 24.0, 2e8, threads=2, source="rapl"),))
    throttle = LiveThrottle(miner, LivePlan(steps([(0, 12.0), (100, 12.0)]), FollowBudget(), fleet, tick_s=1.0,
                                            idle_watts=IDLE_W), clock=clock)
    throttle.start()
    await run_until(throttle, clock, 10)
    gain = throttle.controller.gain
    miner.paused = True
    await run_until(throttle, clock, 30)
    assert throttle.controller.gain == gain and throttle.status()["state"] == "paused by operator"
    miner.paused = False
    await run_until(throttle, clock, 40)
    assert miner.mining_watts() == pytest.approx(12.0, rel=0.02)
    await throttle.stop()
