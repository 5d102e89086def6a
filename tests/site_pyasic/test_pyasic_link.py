"""The pyasic link, over pyasic's own miner classes and data classes.

No firmware runs here, so each test takes the pyasic miner object of the firmware's own
class (as pyasic's factory makes it) and gives its ``get_data`` a real ``MinerData``
with pyasic's hashrate classes, or runs pyasic's real code against real sockets: a closed
port, a silent listener, and a real hashcore API server read by pyasic's generic
cgminer class.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pyasic import MinerData
from pyasic.device.algorithm.hashrate import SHA256HashRate
from pyasic.device.algorithm.hashrate.unit.sha256 import SHA256Unit
from pyasic.errors import APIError
from pyasic.miners.backends.cgminer import CGMiner
from pyasic.miners.factory import MINER_CLASSES, MinerTypes

from hashcore.api import ApiServer
from hashcore.api.protocol import API_VERSION
from hashcore.app.site import pyasic_link
from hashcore.app.site.links import MinerLinkError
from hashcore.app.site.pyasic_link import PYASIC_KINDS, PyasicLink, hashrate_hs, pyasic_control
from hashcore.errors import ConfigError
from hashcore.throttle.site import READ_ONLY, REFUSED, SLEEP, TARGET, TIMEOUT
from tests.doubles import MinerDouble, ThrottleDouble, pool, stats
from tests.live import free_port

TH = SHA256Unit.TH


def pyasic_miner(miner_type: str, model: str | None = None, version: str | None = None, *, port: int) -> Any:
    """The object pyasic's factory makes for that firmware and model, its API at ``port``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyasic warns of models it knows no chip count for
        miner = MINER_CLASSES[MinerTypes[miner_type]][model]("127.0.0.1", version)
    if miner.rpc is not None:
        miner.rpc.port = port
    elif miner.web is not None:
        miner.web.port = port
    return miner


def miner_data(hashrate: Any = None, wattage: int | None = None, wattage_limit: int | None = None,
               is_mining: bool | None = None) -> MinerData:
    """A MinerData filled as pyasic's get_data fills it: only the items it read."""
    data = MinerData(ip="127.0.0.1")
    for name, value in (("hashrate", hashrate), ("wattage", wattage), ("wattage_limit", wattage_limit),
                        ("is_mining", is_mining)):
        if value is not None:
            setattr(data, name, value)
    return data


def answering(miner: Any, data: MinerData) -> list[list[str]]:
    """Make ``miner.get_data`` return ``data``; returns the list of what each call asked for."""
    asked: list[list[str]] = []

    async def get_data(*, include: list[str] | None = None, **_: Any) -> MinerData:
        asked.append(list(include or []))
        return data

    miner.get_data = get_data
    return asked


@pytest.fixture
def detected(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """Make pyasic's detection (pyasic.get_miner) find the given miner object."""
    import pyasic

    def use(miner: Any) -> None:
        async def get_miner(ip: str) -> Any:
            assert ip == "127.0.0.1"
            return miner

        monkeypatch.setattr(pyasic, "get_miner", get_miner)

    return use


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never answers."""
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


# --- kinds and control -------------------------------------------------------------------


def test_every_kind_names_pyasic_miner_types_and_every_pyasic_type_has_a_kind():
    named = {miner_type for types in PYASIC_KINDS.values() for miner_type in types}
    assert named <= {member.name for member in MinerTypes}
    assert {member.name for member in MinerTypes} <= named
    assert PYASIC_KINDS["pyasic"] == ()  # any firmware pyasic detects
    assert set(PYASIC_KINDS["espminer"]) == {"BITAXE", "LUCKYMINER"}


@pytest.mark.parametrize(("miner_type", "model", "version", "control"), [
    ("BRAIINS_OS", "ANTMINER S19", None, TARGET),        # BOSer: gRPC power target
    ("BRAIINS_OS", None, None, TARGET),                  # BOSMiner: the legacy class
    ("WHATSMINER", "M30SV10", None, TARGET),             # API v2
    ("WHATSMINER", "M30SV10", "20250101", TARGET),       # API v3 (firmware after 2024-11)
    ("LUX_OS", None, None, TARGET),
    ("VNISH", None, None, TARGET),
    ("AURADINE", None, None, TARGET),
    ("MARATHON", None, None, TARGET),
    ("AVALONMINER", None, None, SLEEP),                  # set_power_limit picks a work level, not watts
    ("ANTMINER", "ANTMINER S19", None, SLEEP),           # stock web interface: sleep mode
    ("HIVEON", "ANTMINER S19", None, SLEEP),
    ("EPIC", None, None, SLEEP),
    ("GOLDSHELL", None, None, SLEEP),
    ("ANTMINER", "ANTMINER L3+", None, READ_ONLY),       # old stock firmware over cgminer
    ("INNOSILICON", None, None, READ_ONLY),
    ("BITAXE", None, None, READ_ONLY),
    ("ICERIVER", None, None, READ_ONLY),
])
def test_control_follows_what_the_firmwares_pyasic_class_implements(miner_type, model, version, control):
    assert pyasic_control(pyasic_miner(miner_type, model, version, port=4028)) == control


def test_pyasics_generic_cgminer_class_is_read_only():
    assert pyasic_control(CGMiner("127.0.0.1")) == READ_ONLY


# --- readings ------------------------------------------------------------------------------


@pytest.mark.parametrize(("hashrate", "expected_hs"), [
    (SHA256HashRate(rate=104.5, unit=TH), 104.5e12),
    (SHA256HashRate(rate=1.2, unit=TH).into(SHA256Unit.GH), 1.2e12),   # 1200 GH/s
    (SHA256HashRate(rate=650, unit=SHA256Unit.GH), 650e9),           # a BitAxe
])
def test_pyasic_hashrates_in_any_unit_are_read_in_hashes_a_second(hashrate, expected_hs):
    assert hashrate_hs(hashrate) == pytest.approx(expected_hs)


async def test_a_reading_carries_power_hashrate_target_and_state_from_pyasics_miner_data(detected):
    miner = pyasic_miner("BRAIINS_OS", "ANTMINER S19", port=free_port())
    asked = answering(miner, miner_data(SHA256HashRate(rate=104.5, unit=TH), 3250, 3300, True))
    detected(miner)
    link = PyasicLink("127.0.0.1", "braiins")
    answer = await link.read()
    assert answer.reading.watts == 3250 and answer.reading.hashrate_hs == pytest.approx(104.5e12)
    assert answer.reading.target_w == 3300 and answer.reading.asleep is False
    assert answer.reading.control == TARGET and link.control == TARGET
    assert answer.energy_source == "braiins" and "BOSMinerS19" in answer.note  # a BOSer class
    assert asked == [["hashrate", "wattage", "wattage_limit", "is_mining"]]


async def test_a_firmware_that_reports_no_power_reads_watts_none_and_no_energy_source(detected):
    miner = pyasic_miner("BITAXE", port=free_port())
    answering(miner, miner_data(SHA256HashRate(rate=650, unit=SHA256Unit.GH)))
    detected(miner)
    answer = await PyasicLink("127.0.0.1", "bitaxe").read()
    assert answer.reading.watts is None and answer.energy_source is None
    assert answer.reading.hashrate_hs == pytest.approx(650e9)
    assert answer.reading.control == READ_ONLY and "read only" in answer.note


async def test_a_miner_that_is_not_mining_reads_asleep_and_a_sleep_only_one_shows_no_target(detected):
    miner = pyasic_miner("EPIC", port=free_port())
    answering(miner, miner_data(SHA256HashRate(rate=0, unit=TH), 45, 3000, False))
    detected(miner)
    answer = await PyasicLink("127.0.0.1", "epic").read()
    assert answer.reading.asleep is True and answer.reading.hashrate_hs == 0
    assert answer.reading.control == SLEEP and answer.reading.target_w is None


# --- orders -------------------------------------------------------------------------------


def recording(miner: Any, answer: bool = True) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def method(name: str) -> Callable[..., Any]:
        async def call(*args: Any) -> bool:
            calls.append((name, *args))
            return answer
        return call

    for name in ("set_power_limit", "stop_mining", "resume_mining"):
        setattr(miner, name, method(name))
    return calls


async def test_target_sleep_and_wake_go_through_pyasics_own_methods(detected):
    miner = pyasic_miner("WHATSMINER", "M30SV10", port=free_port())
    calls = recording(miner)
    detected(miner)
    link = PyasicLink("127.0.0.1", "whatsminer")
    await link.set_target(3199.6)
    await link.sleep()
    await link.wake()
    assert calls == [("set_power_limit", 3200), ("stop_mining",), ("resume_mining",)]


async def test_a_sleep_only_firmware_is_not_sent_a_target_and_a_read_only_one_is_not_put_to_sleep(detected):
    epic = pyasic_miner("EPIC", port=free_port())
    calls = recording(epic)
    detected(epic)
    with pytest.raises(MinerLinkError, match="cannot take the power target 1000 W"):
        await PyasicLink("127.0.0.1", "epic").set_target(1000)
    bitaxe = pyasic_miner("BITAXE", port=free_port())
    detected(bitaxe)
    with pytest.raises(MinerLinkError, match="read only"):
        await PyasicLink("127.0.0.1", "bitaxe").sleep()
    assert calls == []


async def test_a_false_answer_is_refused_where_nothing_listens_and_a_timeout_where_something_does(
        detected, silent_port):
    closed = pyasic_miner("LUX_OS", port=free_port())
    recording(closed, answer=False)
    detected(closed)
    with pytest.raises(MinerLinkError) as refused:
        await PyasicLink("127.0.0.1", "luxos", timeout_s=2).sleep()
    assert refused.value.failure == REFUSED and "127.0.0.1" in str(refused.value)
    listening = pyasic_miner("LUX_OS", port=silent_port)
    recording(listening, answer=False)
    detected(listening)
    with pytest.raises(MinerLinkError, match="did not take the power target 900 W") as late:
        await PyasicLink("127.0.0.1", "luxos", timeout_s=2).set_target(900)
    assert late.value.failure == TIMEOUT


# --- failures -----------------------------------------------------------------------------


async def test_pyasics_real_read_of_a_closed_port_is_refused_and_of_a_silent_one_a_timeout(monkeypatch, silent_port):
    import pyasic

    async def no_detection(ip: str) -> Any:
        raise AssertionError("a forwarded port is not detected")

    monkeypatch.setattr(pyasic, "get_miner", no_detection)
    closed = PyasicLink(f"127.0.0.1:{free_port()}", "luxos", timeout_s=2)
    with pytest.raises(MinerLinkError) as refused:
        await closed.read()
    assert refused.value.failure == REFUSED
    silent = PyasicLink(f"127.0.0.1:{silent_port}", "luxos", timeout_s=0.5)
    start = asyncio.get_running_loop().time()
    with pytest.raises(MinerLinkError) as late:
        await silent.read()
    assert late.value.failure == TIMEOUT and asyncio.get_running_loop().time() - start < 1.5


@pytest.mark.parametrize("swallows_cancellation", [False, True])
async def test_a_pyasic_call_that_never_returns_ends_by_the_deadline(detected, swallows_cancellation):
    miner = pyasic_miner("BRAIINS_OS", "ANTMINER S19", port=free_port())
    ended = asyncio.Event()

    async def get_data(**_: Any) -> MinerData:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not swallows_cancellation:
                raise
            await asyncio.sleep(2.0)  # runs on past its cancellation, as some of pyasic's code does
        finally:
            ended.set()
        return miner_data()

    miner.get_data = get_data
    detected(miner)
    link = PyasicLink("127.0.0.1", "braiins", timeout_s=0.3)
    start = asyncio.get_running_loop().time()
    with pytest.raises(MinerLinkError, match=r"no answer to read within 0\.3 s") as late:
        await link.read()
    assert late.value.failure == TIMEOUT and asyncio.get_running_loop().time() - start < 1.3
    await asyncio.wait_for(ended.wait(), 5)
    await link.close()


@pytest.mark.parametrize(("error", "failure"), [
    (APIError("No data returned from the API."), TIMEOUT),
    (httpx.ConnectTimeout("timed out"), TIMEOUT),
    (ValueError("bad JSON"), TIMEOUT),
])
async def test_pyasic_and_httpx_errors_become_link_errors_naming_the_miner(detected, error, failure):
    miner = pyasic_miner("VNISH", port=free_port())

    async def get_data(**_: Any) -> MinerData:
        raise error

    miner.get_data = get_data
    detected(miner)
    with pytest.raises(MinerLinkError) as caught:
        await PyasicLink("127.0.0.1", "vnish").read()
    assert caught.value.failure == failure
    assert "127.0.0.1" in str(caught.value) and type(error).__name__ in str(caught.value)


async def test_a_connection_refused_anywhere_in_the_chain_is_refused_and_the_password_is_never_shown(detected):
    miner = pyasic_miner("VNISH", port=free_port())

    async def get_data(**_: Any) -> MinerData:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            try:
                raise httpx.ConnectError("All connection attempts failed")
            except httpx.ConnectError as error:
                raise APIError("login to http://127.0.0.1/?pw=s3cret failed") from error

    miner.get_data = get_data
    detected(miner)
    with pytest.raises(MinerLinkError) as caught:
        await PyasicLink("127.0.0.1", "vnish", password="s3cret").read()
    assert caught.value.failure == REFUSED and "s3cret" not in str(caught.value)

    async def failing(**_: Any) -> MinerData:
        raise APIError("login with s3cret refused")

    miner.get_data = failing
    with pytest.raises(MinerLinkError) as caught:
        await PyasicLink("127.0.0.1", "vnish", password="s3cret").read()
    assert caught.value.failure == TIMEOUT and "s3cret" not in str(caught.value) and "***" in str(caught.value)


async def test_a_firmware_other_than_the_configured_kind_is_a_clear_error(detected):
    miner = pyasic_miner("LUX_OS", port=free_port())
    answering(miner, miner_data(SHA256HashRate(rate=90, unit=TH), 3100))
    detected(miner)
    with pytest.raises(MinerLinkError, match=r"pyasic detects luxos firmware there .* not braiins"):
        await PyasicLink("127.0.0.1", "braiins").read()
    answer = await PyasicLink("127.0.0.1", "pyasic").read()
    assert answer.energy_source == "luxos" and answer.reading.control == TARGET


async def test_credentials_go_to_pyasics_apis_and_never_into_the_links_repr(detected):
    miner = pyasic_miner("BRAIINS_OS", port=free_port())
    answering(miner, miner_data(SHA256HashRate(rate=13, unit=TH), 1300))
    detected(miner)
    link = PyasicLink("127.0.0.1", "braiins", username="operator", password="s3cret")
    await link.read()
    assert miner.web.username == "operator"
    assert miner.web.pwd == miner.rpc.pwd == miner.ssh.pwd == "s3cret"
    assert "s3cret" not in repr(link) and "operator" not in repr(link)


def test_a_forwarded_port_sets_pyasics_api_port_and_needs_a_single_firmware_kind():
    with pytest.raises(ConfigError, match="ports 4028, 80 and 443"):
        PyasicLink("127.0.0.1:4029", "pyasic")
    with pytest.raises(ConfigError, match="ports 4028, 80 and 443"):
        PyasicLink("127.0.0.1:4029", "espminer")
    PyasicLink("[::1]:4029", "whatsminer")


@pytest.mark.parametrize(("address", "kind", "message"), [
    ("127.0.0.1", "bosminer", "kind 'bosminer' is not one pyasic serves; one of: antminer"),
    ("", "braiins", "must be HOST or HOST:PORT"),
    ("127.0.0.1:http", "braiins", "'http' is not a port number"),
    ("127.0.0.1:70000", "braiins", "port 70000 is not 0-65535"),
    ("127.0.0.1:0", "braiins", "port 0 is no miner's port"),
    ("[::1", "braiins", "IPv6 address in brackets"),
])
def test_bad_config_is_a_config_error_naming_what_is_wrong(address, kind, message):
    with pytest.raises(ConfigError, match=message):
        PyasicLink(address, kind)


def test_without_pyasic_a_pyasic_kind_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyasic", None)  # import pyasic now raises ImportError
    with pytest.raises(ConfigError) as caught:
        PyasicLink("192.0.2.7:4028", "luxos")
    assert str(caught.value) == "miner 192.0.2.7:4028 kind luxos needs pyasic: pip install 'hashcore[site]'"
    assert pyasic_link.PYASIC_KINDS["luxos"] == ("LUX_OS",)  # the kinds are known without pyasic


# --- pyasic's generic cgminer class against a real hashcore -----------------------------------


async def test_pyasics_generic_cgminer_class_reads_hashcore_but_cannot_curtail_it():
    """pyasic's CGMiner reads hashcore's API (version, pools, uptime, and the hashrate from
    bmminer's ``GHS 5s``, which hashcore's summary carries beside cgminer's ``MHS 5s``), but
    its stop_mining and set_power_limit are pyasic's base methods: they send nothing, even
    to a client hashcore gives write access."""
    double = MinerDouble(stats(pools=(pool(),), hashrate_hs=2.5e9, recent_hashrate_hs=2.5e9))
    throttle = ThrottleDouble(budget_w=40.0)
    async with ApiServer(double, "127.0.0.1", 0, "W:127.0.0.1", throttle=throttle) as api:
        miner = CGMiner("127.0.0.1")
        miner.rpc.port = api.port
        summary = await miner.rpc.summary()
        data = await asyncio.wait_for(miner.get_data(include=["hashrate", "api_ver", "pools", "uptime"]), 10)
        assert summary["SUMMARY"][0]["MHS 5s"] == pytest.approx(2500)
        assert summary["SUMMARY"][0]["GHS 5s"] == pytest.approx(2.5)
        assert data.api_ver == API_VERSION
        assert [p.url.host for p in data.pools] == ["pool.example"] and data.uptime == 10
        assert data.hashrate is not None and float(data.hashrate.into(data.hashrate.unit.H)) == pytest.approx(2.5e9)
        assert await miner.stop_mining() is False
        assert await miner.set_power_limit(20) is False
    assert double.calls == [] and throttle.targets == [] and not double.paused
    assert pyasic_control(miner) == READ_ONLY
