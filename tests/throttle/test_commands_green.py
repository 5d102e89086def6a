"""``hashcore simulate`` with a device model, DVFS, a forecast, a battery and a carbon
account; ``mine``'s live battery and account; from the command line's flags to the
application's options and runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hashcore.app.budget import plan_budget, write_live_run
from hashcore.app.live import LiveThrottle
from hashcore.app.simulate import run_simulate
from hashcore.cli.budget import add_budget_arguments
from hashcore.cli.simulate import add_simulate_arguments
from hashcore.control import EnergyView, MinerStats
from hashcore.errors import ConfigError
from hashcore.throttle.clock import VirtualClock
from tests import doubles

from .test_commands import REQUIRED_KEYS, parse

GREEN_KEYS = {"curtailed_j", "battery_in_j", "battery_out_j", "battery_loss_j", "co2_location_g", "co2_market_g",
              "g_co2_per_th"}


@pytest.fixture
def trace(tmp_path: Path) -> str:
    """Two hours: a ramp of surplus with a cloud in it."""
    path = tmp_path / "ramp.csv"
    rows = [0, 800, 1600, 2400, 400, 3200, 3600, 2800, 2000, 1200, 400, 0, 0]
    lines = ["# interpolation: step", "timestamp,watts"] + [f"{600 * i},{w}" for i, w in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_simulate_keeps_every_key_and_adds_the_green_ones(trace: str):
    args = parse(add_simulate_arguments, ["--trace", trace, "--device-model", "asic-bm1366", "--miner-watts", "3000",
                                          "--actuator", "dvfs", "--forecast", "perfect", "--battery-kwh", "1",
                                          "--grid-intensity", "400", "--tick", "10"])
    data = run_simulate(args).to_json()
    assert set(data) >= REQUIRED_KEYS | GREEN_KEYS
    json.dumps(data)
    assert data["actuator"] == "dvfs" and data["device_model"] == "asic-bm1366"
    assert data["battery"]["power_kw"] == 0.5  # half the capacity per hour by default
    assert data["battery"]["conservation_error_j"] == 0.0
    assert data["fleet"][0]["operating_points"][-1]["freq_mhz"] == 485.0
    assert data["carbon_account"]["budget_source"] == "surplus"


def test_simulate_dvfs_beats_duty_through_the_command(trace: str):
    figures = {}
    for actuator in ("duty", "dvfs"):
        args = parse(add_simulate_arguments, ["--trace", trace, "--device-model", "asic-bm1366", "--miner-watts",
                                              "4000", "--actuator", actuator, "--tick", "10"])
        figures[actuator] = run_simulate(args).to_json()
    assert figures["dvfs"]["hashes"] > 1.15 * figures["duty"]["hashes"]
    assert figures["dvfs"]["energy_j"] == pytest.approx(figures["duty"]["energy_j"], rel=1e-3)


def test_a_trace_with_an_intensity_is_a_grid_budget_unless_told(tmp_path: Path):
    path = tmp_path / "grid.csv"
    path.write_text("timestamp,watts,gco2_per_kwh\n0,1000,300\n3600,1000,300\n")
    argv = ["--trace", str(path), "--device-model", "cpu", "--miner-watts", "500", "--tick", "60"]
    data = run_simulate(parse(add_simulate_arguments, argv)).to_json()
    assert data["carbon_account"]["budget_source"] == "grid"
    assert data["co2_location_g"] == pytest.approx(150.0, rel=1e-3)
    data = run_simulate(parse(add_simulate_arguments, [*argv, "--budget-source", "surplus"])).to_json()
    assert data["co2_location_g"] == 0.0 and data["surplus_j"] == pytest.approx(1.8e6, rel=1e-3)


def test_bad_combinations_are_one_clear_error(trace: str, tmp_path: Path):
    with pytest.raises(ConfigError, match="dvfs needs operating points"):
        model = tmp_path / "m.json"
        model.write_text(json.dumps({"backend": "c", "watts": 8.0, "hashrate_hs": 4e7}))
        run_simulate(parse(add_simulate_arguments, ["--trace", trace, "--model", str(model), "--actuator", "dvfs"]))
    with pytest.raises(ConfigError, match="give one"):
        run_simulate(parse(add_simulate_arguments, ["--trace", trace, "--model", "x.json", "--device-model", "cpu"]))
    with pytest.raises(ConfigError, match="clearsky needs the PV site"):
        run_simulate(parse(add_simulate_arguments, ["--trace", trace, "--device-model", "cpu", "--forecast",
                                                    "clearsky"]))
    with pytest.raises(ConfigError, match="battery-kwh"):
        run_simulate(parse(add_simulate_arguments, ["--trace", trace, "--device-model", "cpu", "--battery-kw", "1"]))


class BatterySiteMiner:
    """An engine double mining at whatever duty it is given, 1 kW at full duty, its meter
    counting only what mining adds (the estimate's kind)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._max_threads = 1
        self.paused = False
        self._duty, self._threads = 1.0, 1
        self._joules = self._hashes = 0.0
        self._at = self._started = clock.now()

    def _advance(self) -> None:
        dt = self.clock.now() - self._at
        watts = 1000.0 * self._duty * self._threads
        self._joules += watts * dt
        self._hashes += watts / 1e-10 * dt
        self._at = self.clock.now()

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

    def stats(self) -> MinerStats:
        self._advance()
        return doubles.stats(energy=EnergyView(joules=self._joules, source="estimate"),
                             seconds=self.clock.now() - self._started, hashes=int(self._hashes), accepted=7)


async def test_mine_leans_on_a_live_battery_through_a_lull_and_writes_its_account(tmp_path: Path):
    budget = tmp_path / "budget.txt"
    battery = tmp_path / "battery.json"
    budget.write_text("600")
    battery.write_text('{"soc": 0.7}')
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"backend": "c", "threads": 1, "watts": 1000.0, "hashrate_hs": 1e13,
                                 "energy_source": "estimate"}))
    args = parse(add_budget_arguments, ["--power-budget", str(budget), "--budget-poll", "1", "--model", str(model),
                                        "--battery-state", str(battery), "--battery-kwh", "5", "--battery-kw", "2",
                                        "--grid-intensity", "300", "--account-dir", str(tmp_path / "run")])
    plan = plan_budget(args, ["c"])
    assert plan is not None and plan.battery is not None
    clock = VirtualClock(0.0)
    miner = BatterySiteMiner(clock)
    throttle = LiveThrottle(miner, plan, clock=clock)
    throttle.start()
    while clock.now() < 300:
        await asyncio.sleep(0)
    assert miner.duty("c") == pytest.approx(0.6, abs=0.02)
    budget.write_text("0")  # a cloud
    while clock.now() < 330:
        await asyncio.sleep(0)
    status = throttle.status()
    assert status["battery"]["soc"] == 0.7 and status["dispatch"]["reason"] == "carry"
    assert miner.duty("c") > 0.3  # held up by the battery, not dropped to nothing
    await throttle.stop()
    carbon = status["carbon"]
    assert carbon["battery_j"] > 0 and carbon["shares_kind"] == "accepted" and carbon["shares"] == 7
    written = write_live_run(args, throttle)
    assert written == str(tmp_path / "run") and (tmp_path / "run" / "account.csv").exists()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["kind"] == "live" and meta["co2_location_g"] is not None


def test_a_live_battery_needs_its_size_and_its_state(tmp_path: Path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"backend": "c", "watts": 10.0, "hashrate_hs": 1e8}))
    with pytest.raises(ConfigError, match="--battery-kwh"):
        plan_budget(parse(add_budget_arguments, ["--power-budget", "5", "--model", str(model), "--battery-state",
                                                 "b.json"]), ["c"])
    with pytest.raises(ConfigError, match="--battery-state"):
        plan_budget(parse(add_budget_arguments, ["--power-budget", "5", "--model", str(model), "--battery-kwh",
                                                 "5"]), ["c"])
