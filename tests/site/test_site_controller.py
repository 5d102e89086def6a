"""The site controller over stand-in miners: its energy book from the miners' counters
(a restarted miner's counter back at zero, a miner without counters, one that went down),
its deadlines (a miner that never answers holds no tick), and its stop (SIGTERM writes the
run folder and the ``--json`` line)."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hashcore.app.site.config import SiteConfig, parse_site_config
from hashcore.app.site.controller import SiteController
from hashcore.app.site.links import LinkReading
from hashcore.throttle.clock import VirtualClock
from hashcore.throttle.site import REFUSED
from tests.site.fleet import ROOT, FleetProcess
from tests.site.standins import MinerModel, StandinLink

A, B = "127.0.0.1:4028", "127.0.0.1:4029"


def site(*addresses: str, budget: float = 1000.0, **miner: Any) -> SiteConfig:
    rules = {"max_watts": 100.0, "sleep_watts": 2.0, "min_on_s": 0, "min_off_s": 0, **miner}
    return parse_site_config({"site": {"power_budget": budget, "tick": 1.0, "listen": "off", "headroom": 0.0},
                              "miners": [{"address": a, **rules} for a in addresses]})


def standin(clock: VirtualClock, address: str = A) -> StandinLink:
    return StandinLink(MinerModel(max_watts=100.0, j_per_th=30.0, sleep_watts=2.0, lag_s=0.0, clock=clock.now), address)


class _NoCounters(StandinLink):
    """A miner that reports its power but keeps no energy or hash counter."""

    async def read(self) -> LinkReading:
        reading = await super().read()
        return LinkReading(reading.reading, energy_source=reading.energy_source)


class _Silent(StandinLink):
    """A miner whose every call waits for ever (a host that takes the connection and says nothing)."""

    async def read(self) -> LinkReading:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def set_target(self, watts: float) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        await asyncio.Event().wait()


async def ticks(controller: SiteController, clock: VirtualClock, count: int) -> None:
    for _ in range(count):
        await controller.tick()
        clock.advance(1.0)


async def test_a_restarted_miners_counter_back_at_zero_books_its_power_not_a_negative_tick() -> None:
    clock = VirtualClock(1000.0)
    link = standin(clock)
    controller = SiteController(site(A), {A: link}, clock=clock)
    await ticks(controller, clock, 3)  # two ticks booked at its full 100 W
    assert controller.book.energy_j == pytest.approx(200.0)
    link.model.energy_j = link.model.hashes = 0.0  # restarted between two reads
    await ticks(controller, clock, 2)
    assert controller.book.energy_j == pytest.approx(400.0)
    assert controller.view().miners[0].energy_j == pytest.approx(400.0)
    assert controller.book.hashes == pytest.approx(4 * 100.0 / 30.0 * 1e12)


async def test_a_miner_without_counters_is_booked_at_its_power_times_the_tick() -> None:
    clock = VirtualClock(1000.0)
    controller = SiteController(site(A), {A: _NoCounters(standin(clock).model, A)}, clock=clock)
    await ticks(controller, clock, 4)
    assert controller.book.energy_j == pytest.approx(300.0)
    assert controller.book.hashes == pytest.approx(3 * 100.0 / 30.0 * 1e12)


async def test_a_miner_that_went_down_is_booked_at_its_sleep_power_and_counted_afresh_on_its_return() -> None:
    clock = VirtualClock(1000.0)
    link = standin(clock)
    controller = SiteController(site(A), {A: link}, clock=clock)
    await ticks(controller, clock, 2)
    link.failure = REFUSED
    await ticks(controller, clock, 3)  # the tick it went down in at its last power, then its sleep power
    assert controller.book.energy_j == pytest.approx(100.0 + 100.0 + 2 * 2.0)
    assert controller.view().miners[0].state == "down"
    link.failure = None
    link.model.energy_j = link.model.hashes = 0.0  # its counters start again with it
    await ticks(controller, clock, 2)  # the tick it came back in at the power it reports, then its counter
    assert controller.book.energy_j == pytest.approx(204.0 + 100.0 + 100.0)
    assert controller.view().miners[0].state == "on"


async def test_a_miner_that_never_answers_holds_the_tick_no_longer_than_its_deadline() -> None:
    clock = VirtualClock(1000.0)
    config = site(A, B, timeout_s=0.2)
    good = standin(clock, B)
    controller = SiteController(config, {A: _Silent(standin(clock).model, A), B: good}, clock=clock)
    began = time.monotonic()
    await ticks(controller, clock, 2)
    assert time.monotonic() - began < 2 * (0.2 + 1.0) + 1.0
    view = {m.address: m for m in controller.view().miners}
    assert view[A].state == "unresponsive" and "no answer within 0.2 s" in (view[A].error or "")
    assert view[B].state == "on" and good.orders
    began = time.monotonic()
    await controller.close()  # the run folder is written after it
    assert time.monotonic() - began < 0.2 + 1.0 + 1.0


async def test_a_wall_clock_stepped_back_an_hour_does_not_stop_the_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site keeps its own time from the monotonic clock: a wall clock set back (NTP at
    boot, an operator) would have it wait an hour for its next tick, and hold every miner
    it had just switched in its minimum on or off time for an hour more."""
    config = parse_site_config({"site": {"power_budget": 1000, "tick": 0.25, "listen": "off"},
                                "miners": [{"address": A, "max_watts": 100}]})
    controller = SiteController(config, {A: StandinLink(MinerModel(max_watts=100.0, lag_s=0.0), A)})
    wall = time.time
    controller.on_tick = lambda view: monkeypatch.setattr(time, "time", lambda: wall() - 3600.0)
    began = time.monotonic()
    view = await asyncio.wait_for(controller.run(duration=1.0), timeout=10.0)
    assert view.ticks >= 3 and time.monotonic() - began < 5.0


def test_sigterm_ends_a_site_with_its_run_folder_and_its_json_line(tmp_path: Path) -> None:
    with FleetProcess(2) as fleet:
        miners = "".join(f'\n[[miners]]\naddress = "{a}"\nmax_watts = 3000\nmin_on_s = 0\nmin_off_s = 0\n'
                         for a in fleet.addresses)
        config = tmp_path / "site.toml"
        config.write_text(f'[site]\npower_budget = 4000\ntick = 0.5\nlisten = "off"\n{miners}')
        run = tmp_path / "run"
        process = subprocess.Popen([sys.executable, "-m", "hashcore.cli", "site", "--config", str(config), "--json",
                                    "--run", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=ROOT)
        try:
            time.sleep(4.0)  # started, and a few ticks booked
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err

    def refuse(constant: str) -> float:
        raise AssertionError(f"{constant} in the --json line")

    figures = json.loads(out.strip().splitlines()[-1], parse_constant=refuse)
    assert {"seconds", "budget_energy_j", "energy_j", "energy_over_budget_j", "curtailed_j", "hashes",
            "ticks"} <= figures.keys()
    assert figures["ticks"] >= 2 and figures["energy_j"] > 0
    assert [m["address"] for m in figures["miners"]] == fleet.addresses
    for miner in figures["miners"]:
        assert {"address", "kind", "state", "watts", "hashrate_hs", "j_per_th", "energy_j"} <= miner.keys()
    numbers = [v for v in figures.values() if isinstance(v, float)]
    assert all(math.isfinite(v) for v in numbers)
    meta = json.loads((run / "run.json").read_text())
    assert meta["kind"] == "site" and meta["ticks"] == figures["ticks"]
