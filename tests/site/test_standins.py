"""The stand-in miners themselves: they answer as hashcore's own API server does, and
their model follows its target as a miner with a lag would."""

from __future__ import annotations

import asyncio
import json
import math
import signal
from typing import Any

import pytest

from hashcore.api import ApiServer
from hashcore.api.protocol import MAX_REQUEST, Code
from hashcore.app.site.cgminer import CgminerLink
from hashcore.app.site.links import MinerLinkError
from hashcore.throttle.site import READ_ONLY, REFUSED, SLEEP, TARGET
from tests.api.client import ask, ask_json, parse_text, status_of
from tests.doubles import MinerDouble, ThrottleDouble
from tests.site.fleet import FleetProcess
from tests.site.standins import MinerModel, Standin, StandinFleet, StandinLink, fleet_models


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def kinds(row: dict[str, Any]) -> dict[str, str]:
    """Each field's JSON type (a number is a number, int or float alike)."""
    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, (int, float)):
            return "number"
        return type(value).__name__
    return {key: kind(value) for key, value in row.items()}


async def test_summary_has_the_keys_and_types_of_a_throttled_hashcore_instance():
    real = ApiServer(MinerDouble(), "127.0.0.1", 0, "W:127.0.0.1", throttle=ThrottleDouble(40.0))
    async with real, StandinFleet([MinerModel()]) as fleet:
        expected = await ask_json(real.port, "summary")
        got = await ask_json(fleet.standins[0].port, "summary")
    assert set(got) == set(expected) == {"STATUS", "SUMMARY", "id"}
    assert status_of(got)["STATUS"] == "S" and status_of(got)["Code"] == Code.SUMMARY
    row, real_row = got["SUMMARY"][0], expected["SUMMARY"][0]
    assert list(row) == list(real_row) and "Power Limit" in row
    real_kinds = kinds(real_row)
    mismatched = {k: (v, real_kinds[k]) for k, v in kinds(row).items() if real_kinds[k] != "NoneType"
                  and v != real_kinds[k]}
    assert not mismatched
    assert row["Energy Source"] == "standin" and row["Power"] > 0 and row["MHS 5s"] > 0


async def test_the_text_form_parses_as_cgminer_text():
    async with StandinFleet([MinerModel(max_watts=2000.0)]) as fleet:
        rows = parse_text(await ask(fleet.standins[0].port, "summary"))
    assert rows[0].fields["STATUS"] == "S" and rows[1].label == "SUMMARY"
    assert float(rows[1].fields["Power"]) == pytest.approx(2000.0) and rows[1].fields["Paused"] == "false"


@pytest.mark.parametrize(("command", "parameter", "code"), [
    ("privileged", None, Code.ACCESS_OK),
    ("pause", None, Code.PAUSED),
    ("resume", None, Code.RESUMED),
    ("powertarget", "150", Code.POWER_TARGET),
])
async def test_write_commands_answer_success_with_access_and_access_denied_without(command: str,
                                                                                   parameter: str | None,
                                                                                   code: Code):
    fleet = StandinFleet([MinerModel(), MinerModel()])
    fleet.standins[1].write = False
    async with fleet:
        allowed = await ask_json(fleet.standins[0].port, command, parameter)
        denied = await ask_json(fleet.standins[1].port, command, parameter)
    assert status_of(allowed)["STATUS"] == "S" and status_of(allowed)["Code"] == code
    assert status_of(denied)["STATUS"] == "E" and status_of(denied)["Code"] == Code.ACCESS_DENIED
    assert allowed["id"] == denied["id"] == 1


async def test_a_stand_in_without_a_throttle_has_no_power_limit_and_refuses_targets():
    async with StandinFleet([MinerModel(throttled=False)]) as fleet:
        port = fleet.standins[0].port
        row = (await ask_json(port, "summary"))["SUMMARY"][0]
        refused = await ask_json(port, "powertarget", "100")
    assert "Power Limit" not in row
    assert status_of(refused)["STATUS"] == "E" and status_of(refused)["Code"] == Code.NO_THROTTLE


async def test_one_request_per_connection_each_reply_ended_by_a_nul_then_closed():
    async with StandinFleet([MinerModel()]) as fleet:
        reader, writer = await asyncio.open_connection("127.0.0.1", fleet.standins[0].port)
        try:
            writer.write(b'{"command":"summary"}')
            reply = await asyncio.wait_for(reader.readuntil(b"\x00"), 5)
            writer.write(b'{"command":"summary"}')
            rest = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    assert json.loads(reply[:-1])["SUMMARY"] and rest == b""
    assert fleet.standins[0].requests == 1


async def test_a_request_without_an_end_is_answered_after_a_quiet_spell_as_hashcore_does():
    async with StandinFleet([MinerModel()]) as fleet:
        reply = await ask(fleet.standins[0].port, "summary", half_close=False, timeout=5)
    assert parse_text(reply)[1].label == "SUMMARY"


async def test_an_oversized_request_gets_hashcores_request_too_large():
    async with StandinFleet([MinerModel()]) as fleet:
        body = await ask_json(fleet.standins[0].port, "summary", "x" * (MAX_REQUEST + 10))
    assert status_of(body)["Code"] == Code.REQUEST_TOO_LARGE


# --- the model -------------------------------------------------------------------------------


def test_the_model_follows_a_target_with_a_first_order_lag_and_integrates_energy_and_hashes():
    clock = FakeClock()
    model = MinerModel(max_watts=3000.0, j_per_th=25.0, sleep_watts=10.0, lag_s=2.0, clock=clock)
    model.set_target(1000.0)
    clock.now += 2.0
    model.advance()
    assert model.watts == pytest.approx(1000.0 + 2000.0 * math.exp(-1))
    energy = 1000.0 * 2.0 + 2000.0 * 2.0 * (1 - math.exp(-1))
    assert model.energy_j == pytest.approx(energy)
    assert model.hashes == pytest.approx(energy / 25.0 * 1e12)
    assert model.hashrate_hs() == pytest.approx(model.watts / 25.0 * 1e12)


def test_a_target_above_full_power_holds_at_full_power_and_a_paused_model_falls_to_sleep_power():
    clock = FakeClock()
    model = MinerModel(max_watts=2000.0, sleep_watts=15.0, lag_s=1.0, clock=clock)
    model.set_target(5000.0)
    clock.now += 30.0
    model.advance()
    assert model.watts == pytest.approx(2000.0)
    model.pause()
    hashes = model.hashes
    clock.now += 30.0
    model.advance()
    assert model.watts == pytest.approx(15.0) and model.hashrate_hs() == 0.0 and model.hashes == hashes


def test_a_fleets_models_are_mixed_and_the_same_each_time():
    first, again = fleet_models(50), fleet_models(50)
    assert [(m.max_watts, m.j_per_th) for m in first] == [(m.max_watts, m.j_per_th) for m in again]
    assert len({m.j_per_th for m in first}) > 10 and len({m.max_watts for m in first}) > 10


# --- the in-process link ----------------------------------------------------------------------


async def test_the_in_process_link_reads_as_the_cgminer_link_reads_the_same_model():
    clock = FakeClock()
    models = [MinerModel(clock=clock), MinerModel(clock=clock), MinerModel(throttled=False, clock=clock)]
    fleet = StandinFleet(models)
    fleet.standins[1].write = False
    async with fleet:
        for model in models[:2]:
            model.set_target(1500.0)
        clock.now += 5.0
        remote = [await CgminerLink(a).read() for a in fleet.addresses]
    local = [await StandinLink(m, f"local-{i}", write=i != 1).read() for i, m in enumerate(models)]
    assert [r.reading.control for r in local] == [r.reading.control for r in remote] == [TARGET, READ_ONLY, SLEEP]
    for near, far in zip(local, remote, strict=True):
        assert near.reading.watts == pytest.approx(far.reading.watts, rel=1e-4)
        assert near.reading.target_w == far.reading.target_w
        assert near.energy_j == pytest.approx(far.energy_j, rel=1e-4)


async def test_the_in_process_link_steers_its_model_and_fails_as_it_is_told():
    clock = FakeClock()
    model = MinerModel(clock=clock)
    site = StandinLink(model, "local-0")
    await site.set_target(800.0)
    await site.sleep()
    assert model.target_w == 800.0 and model.paused and site.orders == [("powertarget", 800.0), ("pause", None)]
    site.failure = REFUSED
    with pytest.raises(MinerLinkError) as caught:
        await site.read()
    assert caught.value.failure == REFUSED
    read_only = StandinLink(MinerModel(clock=clock), "local-1", write=False)
    with pytest.raises(MinerLinkError, match="Access denied"):
        await read_only.wake()


# --- a fleet in its own process ---------------------------------------------------------------


async def test_a_fleet_process_prints_its_addresses_serves_them_and_stops_when_its_stdin_ends():
    fleet = FleetProcess(5)
    try:
        readings = [await CgminerLink(a).read() for a in fleet.addresses]
    finally:
        fleet.close()
    assert len(readings) == 5 and all(r.reading.control == TARGET for r in readings)
    assert fleet.process.returncode == 0


async def test_a_fleet_process_stops_on_sigterm():
    fleet = FleetProcess(2, extra_args=["--read-only"])
    try:
        reading = await CgminerLink(fleet.addresses[0]).read()
        fleet.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(fleet.process.wait, 10)
    finally:
        fleet.close()
    assert reading.reading.control == READ_ONLY and code == 0


async def test_a_stand_in_counts_each_request_it_answers():
    standin = Standin(MinerModel())
    await standin.start()
    try:
        for _ in range(3):
            await ask_json(standin.port, "summary")
    finally:
        await standin.stop()
    assert standin.requests == 3
