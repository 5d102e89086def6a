"""The site's cgminer link against hashcore's real API server (over the miner and
throttle doubles) and against the stand-in miners, on loopback."""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hashcore.api import AllowList, ApiServer
from hashcore.app.site.cgminer import CgminerLink
from hashcore.app.site.links import MinerLinkError
from hashcore.control import EnergyView
from hashcore.errors import ConfigError
from hashcore.throttle.site import READ_ONLY, REFUSED, SLEEP, TARGET, TIMEOUT
from tests import doubles
from tests.doubles import MinerDouble, ThrottleDouble
from tests.site.standins import MinerModel, Standin, StandinFleet


def miner(**fields: Any) -> MinerDouble:
    """A miner drawing 56.25 W (RAPL), hashing at 2.5 MH/s, ten million hashes done."""
    defaults: dict[str, Any] = {
        "seconds": 100.0, "hashes": 10_000_000, "recent_hashrate_hs": 2.5e6,
        "energy": EnergyView(joules=1234.5, watts=50.0, source="rapl", exact=True, recent_watts=56.25),
    }
    return MinerDouble(doubles.stats(**{**defaults, **fields}))


@contextlib.asynccontextmanager
async def api(double: MinerDouble | None = None, *, allow: str | None = "W:127.0.0.1",
              throttle: ThrottleDouble | None = None, port: int = 0) -> AsyncIterator[ApiServer]:
    async with ApiServer(double or miner(), "127.0.0.1", port, allow, throttle=throttle) as server:
        yield server


def link(server: ApiServer, kind: str = "hashcore") -> CgminerLink:
    return CgminerLink(f"127.0.0.1:{server.port}", kind, timeout_s=2.0)


def unused_port() -> int:
    """A port that nothing listens on: bound by the kernel's choice, then let go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- reading ---------------------------------------------------------------------------------


async def test_read_takes_power_hashrate_energy_and_the_target_from_summary():
    async with api(throttle=ThrottleDouble(40.0)) as server:
        got = await link(server).read()
    assert got.reading.watts == 56.25 and got.reading.hashrate_hs == pytest.approx(2.5e6)
    assert got.energy_j == 1234.5 and got.hashes == pytest.approx(1e7) and got.energy_source == "rapl"
    assert got.reading.control == TARGET and got.reading.target_w == 40.0 and got.reading.asleep is False
    assert got.note == ""


async def test_a_miner_without_a_meter_reads_as_no_power_and_no_source():
    double = miner(energy=EnergyView())  # no meter: Power null, source "none"
    async with api(double, throttle=ThrottleDouble(None)) as server:
        got = await link(server).read()
    assert got.reading.watts is None and got.energy_source is None
    assert got.reading.control == TARGET and got.reading.target_w is None  # a throttle with no budget yet


async def test_write_access_without_a_throttle_is_sleep_control_and_the_note_says_how_to_get_targets():
    async with api() as server:
        got = await link(server).read()
    assert got.reading.control == SLEEP and got.reading.target_w is None
    assert "--power-budget" in got.note


async def test_without_write_access_the_link_is_read_only_and_the_note_names_the_sites_address():
    async with api(allow="127.0.0.1", throttle=ThrottleDouble(40.0)) as server:
        got = await link(server).read()
    assert got.reading.control == READ_ONLY and got.reading.target_w is None
    assert "--api-allow W:127.0.0.1" in got.note


async def test_a_paused_miner_reads_asleep():
    double = miner()
    double.pause()
    async with api(double) as server:
        got = await link(server).read()
    assert got.reading.asleep is True


# --- steering --------------------------------------------------------------------------------


async def test_power_target_pause_and_resume_reach_the_miner():
    double, throttle = miner(), ThrottleDouble(40.0)
    async with api(double, throttle=throttle) as server:
        site = link(server)
        await site.set_target(12.5)
        assert throttle.targets == [12.5]
        assert (await site.read()).reading.target_w == 12.5
        await site.sleep()
        assert double.calls[-1] == ("pause",) and (await site.read()).reading.asleep is True
        await site.wake()
        assert double.calls[-1] == ("resume",) and (await site.read()).reading.asleep is False


async def test_a_power_target_without_a_throttle_is_refused_with_the_miners_words():
    async with api() as server:
        with pytest.raises(MinerLinkError, match="No throttle") as caught:
            await link(server).set_target(100.0)
    assert caught.value.failure == TIMEOUT


@pytest.mark.parametrize("watts", [0.0, -5.0, math.nan, math.inf])
async def test_a_power_target_that_is_not_watts_above_zero_is_a_config_error(watts: float):
    with pytest.raises(ConfigError, match="above 0"):
        await CgminerLink("127.0.0.1:4028").set_target(watts)


async def test_an_access_denied_order_turns_the_link_read_only():
    async with api(throttle=ThrottleDouble(40.0)) as server:
        site = link(server)
        assert (await site.read()).reading.control == TARGET
        server.allow = AllowList.parse("127.0.0.1")  # the operator took write access away
        with pytest.raises(MinerLinkError, match="Access denied") as caught:
            await site.sleep()
        assert caught.value.failure == TIMEOUT
        assert (await site.read()).reading.control == READ_ONLY


async def test_a_miner_restarted_with_other_flags_is_probed_again_after_a_failure():
    async with api(throttle=ThrottleDouble(40.0)) as first:
        port = first.port
        site = link(first)
        assert (await site.read()).reading.control == TARGET
    with pytest.raises(MinerLinkError) as caught:
        await site.read()
    assert caught.value.failure == REFUSED
    async with api(allow="127.0.0.1", throttle=ThrottleDouble(40.0), port=port):
        assert (await site.read()).reading.control == READ_ONLY


async def test_a_miner_restarted_between_two_reads_is_probed_again_when_its_elapsed_goes_back():
    async with api(miner(seconds=500.0), throttle=ThrottleDouble(40.0)) as first:
        port = first.port
        site = link(first)
        assert (await site.read()).reading.control == TARGET
    async with api(miner(seconds=3.0), allow="127.0.0.1", port=port):  # back at once, without W:
        got = await site.read()
    assert got.reading.control == READ_ONLY


async def test_a_port_nothing_listens_on_is_refused_and_named():
    address = f"127.0.0.1:{unused_port()}"
    with pytest.raises(MinerLinkError, match=address) as caught:
        await CgminerLink(address).read()
    assert caught.value.failure == REFUSED


async def test_an_ipv6_address_in_brackets_reaches_the_miner():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        server = ApiServer(miner(), "::1", 0, "W:::1", throttle=ThrottleDouble(40.0))
        await server.start()
    except ConfigError:
        pytest.skip("::1 is not configured here")
    try:
        got = await CgminerLink(f"[::1]:{server.port}").read()
    finally:
        await server.stop()
    assert got.reading.control == TARGET and got.reading.watts == 56.25


# --- other firmware ---------------------------------------------------------------------------


async def test_a_cgminer_kind_is_read_only_and_never_sends_an_order():
    double, throttle = miner(), ThrottleDouble(40.0)
    async with api(double, throttle=throttle) as server:
        site = link(server, kind="cgminer")
        got = await site.read()
        assert got.reading.control == READ_ONLY and got.reading.watts == 56.25
        assert "only reads" in got.note
        for order in (site.set_target(10.0), site.sleep(), site.wake()):
            with pytest.raises(MinerLinkError, match="only reads"):
                await order
    assert throttle.targets == [] and double.calls == []


@pytest.mark.parametrize(("address", "kind", "timeout", "named"), [
    ("nonsense", "hashcore", 2.0, "nonsense"),
    ("10.0.0.1:99999", "hashcore", 2.0, "99999"),
    ("::1:4028", "hashcore", 2.0, "brackets"),
    ("10.0.0.1:0", "hashcore", 2.0, "port 0"),
    ("10.0.0.1:4028", "antminer", 2.0, "antminer"),
    ("10.0.0.1:4028", "hashcore", 0.0, "timeout_s"),
    ("10.0.0.1:4028", "hashcore", math.nan, "timeout_s"),
])
def test_a_link_that_cannot_work_is_a_config_error_naming_what_is_wrong(address: str, kind: str, timeout: float,
                                                                          named: str):
    with pytest.raises(ConfigError, match=named):
        CgminerLink(address, kind, timeout_s=timeout)


def test_an_ipv6_address_and_its_port_are_read_from_brackets():
    site = CgminerLink("[::1]:4028")
    assert (site.host, site.port, site.address) == ("::1", 4028, "[::1]:4028")


# --- the stand-ins ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_link_reads_and_steers_a_stand_in_that_follows_its_target():
    clock = FakeClock()
    model = MinerModel(max_watts=3000.0, j_per_th=30.0, lag_s=2.0, clock=clock)
    async with StandinFleet([model]) as fleet:
        site = CgminerLink(fleet.addresses[0])
        first = await site.read()
        assert first.reading.control == TARGET and first.reading.watts == pytest.approx(3000.0)
        assert first.reading.hashrate_hs == pytest.approx(100e12, rel=1e-6)
        await site.set_target(1200.0)
        clock.now += 20.0  # ten time constants
        later = await site.read()
    assert later.reading.target_w == 1200.0 and later.reading.watts == pytest.approx(1200.0, abs=1.0)
    assert later.energy_j is not None and first.energy_j is not None
    assert later.energy_j - first.energy_j == pytest.approx(1200.0 * 20 + 1800.0 * 2.0 * (1 - math.exp(-10)),
                                                            rel=1e-3)


async def test_the_link_tells_apart_the_three_kinds_of_stand_in():
    fleet = StandinFleet([MinerModel(), MinerModel(), MinerModel(throttled=False)])
    fleet.standins[1].write = False
    async with fleet:
        controls = [(await CgminerLink(a).read()).reading.control for a in fleet.addresses]
    assert controls == [TARGET, READ_ONLY, SLEEP]


async def test_a_stopped_stand_in_is_refused_and_answers_again_on_the_same_address():
    standin = Standin(MinerModel())
    await standin.start()
    site = CgminerLink(standin.address)
    try:
        await site.read()
        await standin.stop()
        with pytest.raises(MinerLinkError) as caught:
            await site.read()
        assert caught.value.failure == REFUSED
        await standin.start()
        assert (await site.read()).reading.control == TARGET
    finally:
        await standin.stop()
