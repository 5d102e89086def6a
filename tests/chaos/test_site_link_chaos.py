"""Miners that misbehave on the cgminer API, against the site's link and the site itself.

A :class:`HostileMiner` is a real cgminer API on loopback whose answers are whatever a
test makes them: garbage, a reply cut short, figures no machine reports, a reply that
trickles or never ends, a reset. Each case proves the site's rule for a miner's reply: a
clear error naming the miner and what was wrong, counted as the allocator counts a miner
that did not answer, within the miner's deadline, and never the end of the site's tick or
of the steering of the other miners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from hashcore.app.site import controller as controller_module
from hashcore.app.site.cgminer import CgminerLink
from hashcore.app.site.config import parse_site_config
from hashcore.app.site.controller import SiteController
from hashcore.app.site.links import MinerLinkError
from hashcore.throttle.site import MAX_MINER_HASHRATE_HS, MAX_MINER_WATTS, TIMEOUT
from hashcore.web.responses import json_text
from tests.site.standins import MinerModel, StandinFleet

#: What a misbehaving miner does with one request: bytes to send, or a coroutine given the stream.
Behaviour = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]

DEADLINE_S = 0.5
#: What a call may take beyond its deadline on a loaded machine.
SLACK_S = 0.5


def status(severity: str = "S", code: int = 11, message: str = "Summary") -> list[dict[str, Any]]:
    return [{"STATUS": severity, "When": 1, "Code": code, "Msg": message, "Description": "hostile 1.0"}]


def reply(body: Mapping[str, Any]) -> bytes:
    return json.dumps({**body, "id": 1}).encode() + b"\x00"


def summary(**fields: Any) -> bytes:
    """A hashcore instance's SUMMARY (a throttled one drawing 50 W), ``fields`` replaced (None: left out)."""
    row = {"Elapsed": 100, "MHS 5s": 2.5, "Power": 50.0, "Energy": 1000.0, "Total MH": 10.0, "Paused": False,
           "Power Limit": 40.0, "Energy Source": "rapl", **fields}
    return reply({"STATUS": status(), "SUMMARY": [{k: v for k, v in row.items() if v is not None}]})


GRANTED = reply({"STATUS": status(code=46, message="Privileged access OK")})


class HostileMiner:
    """A cgminer API on loopback answering each command as ``replies`` says (``"*"``: any
    command not named); ``requests`` counts the commands received."""

    def __init__(self, replies: Mapping[str, Behaviour]) -> None:
        self.replies = {"privileged": GRANTED, **replies}
        self.requests: dict[str, int] = {}
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> HostileMiner:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = await _request(reader)
            self.requests[command] = self.requests.get(command, 0) + 1
            behaviour = self.replies.get(command, self.replies.get("*", b""))
            if isinstance(behaviour, bytes):
                writer.write(behaviour)
                await writer.drain()
            else:
                await behaviour(writer)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the site gave up on it: what it does next is no one's concern
        finally:
            writer.close()


async def _request(reader: asyncio.StreamReader) -> str:
    data = b""
    while True:
        data += await asyncio.wait_for(reader.read(4096), 5)
        try:
            return str(json.loads(data)["command"])
        except json.JSONDecodeError:
            if not data or len(data) > 4096:
                raise ValueError("no request") from None


async def trickle(writer: asyncio.StreamWriter) -> None:
    for byte in summary():  # one byte every 50 ms: two seconds for the whole reply
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.05)


async def never_finish(writer: asyncio.StreamWriter) -> None:
    writer.write(summary()[:-1])  # the whole JSON, never the NUL, never the end of the stream
    await writer.drain()
    await asyncio.sleep(30)


async def silence(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def read_error(replies: Mapping[str, Behaviour]) -> tuple[MinerLinkError, float, str]:
    """The error a read of a miner answering ``replies`` ends in, how long it took, and the address."""
    async with HostileMiner(replies) as miner:
        link = CgminerLink(miner.address, timeout_s=DEADLINE_S)
        began = time.monotonic()
        with pytest.raises(MinerLinkError) as caught:
            await link.read()
        return caught.value, time.monotonic() - began, miner.address


# --- one link, one misbehaving miner ---------------------------------------------------------


@pytest.mark.parametrize(("answer", "named"), [
    (b"\x01\x02garbage\xff\x00", "not UTF-8"),
    (summary()[:40], "not valid JSON"),
    (summary(Power=50.0).replace(b"50.0", b"NaN"), "not a JSON number"),
    (summary(Power=50.0).replace(b"50.0", b"-Infinity"), "not a JSON number"),
    (summary(Power=50.0).replace(b"50.0", b"1e400"), "not a JSON number"),
    (summary(Power=10 ** 400), "401 digits is beyond any figure"),
    (summary(Elapsed=10 ** 400), "401 digits is beyond any figure"),
    (summary(Power=1e300), "Power is 1e+300, above"),
    (summary(**{"MHS 5s": 1e300}), "MHS 5s is 1e+300, above"),
    (summary(Energy=1e300), "Energy is 1e+300, above"),
    (summary(Power=-5), "Power is -5, not a finite number >= 0"),
    (summary(Power="50"), 'Power is "50", not a number'),
    (summary(**{"Power Limit": -5}), "Power Limit is -5"),
    (summary(Elapsed="yesterday"), 'Elapsed is "yesterday", not a number'),
    (summary(Paused="no"), "Paused is"),
    (b"[" * 40 + b"]" * 40 + b"\x00", "nested deeper"),
    (b"[1, 2]\x00", "not a JSON object"),
    (reply({"STATUS": status(), "SUMMARY": {"Power": 1}}), "no SUMMARY row"),
    (reply({"SUMMARY": [{"Power": 1}]}), "no STATUS"),
    (summary()[:-2] + b',"id":2}\x00', "appears twice"),
    (b" " * 100_000, "over 64 KiB"),
    (b"", "closed the connection without a summary reply"),
])
async def test_a_garbled_summary_is_a_timeout_naming_the_miner_and_what_was_wrong(answer: bytes, named: str):
    error, took, address = await read_error({"summary": answer})
    assert error.failure == TIMEOUT and address in str(error) and named in str(error), str(error)
    assert took < DEADLINE_S + SLACK_S


@pytest.mark.parametrize(("behaviour", "named"), [
    (trickle, "no summary reply within 0.5 s"),
    (never_finish, "no summary reply within 0.5 s"),
    (silence, "no summary reply within 0.5 s"),
    (reset, "summary failed: Connection reset by peer"),
])
async def test_a_miner_that_trickles_stalls_or_resets_ends_within_its_deadline(behaviour: Behaviour, named: str):
    error, took, _ = await read_error({"summary": behaviour})
    assert error.failure == TIMEOUT and named in str(error), str(error)
    assert took < DEADLINE_S + SLACK_S


async def test_a_garbled_privileged_answer_is_a_timeout_and_is_asked_again_next_read():
    async with HostileMiner({"privileged": reply({"STATUS": [{"STATUS": "E", "Code": 10 ** 400}]}),
                             "*": summary()}) as miner:
        link = CgminerLink(miner.address, timeout_s=DEADLINE_S)
        for _ in range(2):
            with pytest.raises(MinerLinkError, match="privileged reply is not valid JSON"):
                await link.read()
        assert miner.requests == {"privileged": 2}


async def test_a_miner_whose_elapsed_goes_back_every_read_is_asked_its_access_each_time_and_read():
    elapsed = 1000

    async def going_back(writer: asyncio.StreamWriter) -> None:
        nonlocal elapsed
        elapsed -= 1
        writer.write(summary(Elapsed=elapsed))

    async with HostileMiner({"summary": going_back}) as miner:
        link = CgminerLink(miner.address, timeout_s=DEADLINE_S)
        for _ in range(3):
            assert (await link.read()).reading.watts == 50.0
        assert miner.requests == {"privileged": 3, "summary": 3}  # a restart each time: its flags may differ


# --- the site, with one misbehaving miner among good ones ------------------------------------


def site_with(hostile: str, others: list[str], budget: float) -> SiteController:
    document = {
        "site": {"power_budget": budget, "tick": 0.2, "min_on_s": 0, "min_off_s": 0, "timeout_s": DEADLINE_S},
        "miners": [{"address": a, "max_watts": 3000} for a in [hostile, *others]],
    }
    return SiteController(parse_site_config(document, "site.toml"))


def leaping(key: str, to: float) -> Behaviour:
    """A miner whose counter ``key`` reads 0, then leaps to ``to`` on its third answer."""
    answers = 0

    async def answer(writer: asyncio.StreamWriter) -> None:
        nonlocal answers
        answers += 1
        writer.write(summary(**{"Energy": None, "Total MH": None, key: 0.0 if answers < 3 else to}))
        await writer.drain()

    return answer


@pytest.mark.parametrize(("answer", "state", "others_w"), [
    (summary(Energy=None, **{"MHS 5s": 5e-324}), "sleeping", 2500),  # next to no hashes: J/TH beyond a float
    (summary(Energy=None, Power=900, **{"MHS 5s": 1e-300}), "sleeping", 2000),
    (leaping("Energy", 1e15), "sleeping", 2500),  # a leap of a thousand terajoules in a tick
    (leaping("Total MH", 1e24), "sleeping", 2500),
    # Not answering: counted at its full power (it was never read), the others share the rest.
    (summary(Power=10 ** 400), "unresponsive", 0),
    (reply({"STATUS": status()}), "unresponsive", 0),
    (trickle, "unresponsive", 0),
])
async def test_a_hostile_miner_neither_stops_the_site_nor_the_steering_of_the_others(
        answer: Behaviour, state: str, others_w: float):
    models = [MinerModel(max_watts=3000, j_per_th=j, lag_s=0) for j in (20, 30)]
    async with HostileMiner({"*": answer}) as hostile, StandinFleet(models) as fleet:
        site = site_with(hostile.address, fleet.addresses, budget=4000)
        for _ in range(5):
            began = time.monotonic()
            await site.tick()
            assert time.monotonic() - began < DEADLINE_S + SLACK_S
            view = site.view()
            json_text(view.to_json())  # the page and --json can carry every figure
            await asyncio.sleep(0.1)
        bad, *good = view.miners
        assert bad.state == state
        if state == "unresponsive":
            assert bad.error and hostile.address in bad.error
        assert all(m.error is None for m in good)
        # No figure beyond what three machines could do: a leaping counter is not booked.
        assert view.hashes <= MAX_MINER_HASHRATE_HS * 3 * view.seconds
        assert view.energy_j <= MAX_MINER_WATTS * 3 * view.seconds
        # The good miners were steered: together they draw what the budget leaves them.
        assert any(m.paused or m.target_w is not None for m in models)
        assert others_w <= sum(m.aim_w() for m in models) <= 4000


async def test_a_miner_that_grants_writes_then_refuses_every_one_shows_the_refusal_on_every_tick():
    refusal = reply({"STATUS": status("E", 14, "Invalid command: the firmware is locked")})
    drawing = summary(Energy=None, Power=2000.0, **{"MHS 5s": 1.0, "Power Limit": 2000.0})  # the dearest by far
    models = [MinerModel(max_watts=3000, j_per_th=j, lag_s=0) for j in (20, 30)]
    async with HostileMiner({"summary": drawing, "*": refusal}) as hostile, StandinFleet(models) as fleet:
        site = site_with(hostile.address, fleet.addresses, budget=4000)
        for _ in range(8):
            await site.tick()
            bad, *good = site.view().miners
            assert bad.error == f"sleep failed: miner {hostile.address} refused pause: " \
                                "Invalid command: the firmware is locked"
            assert all(m.error is None for m in good)
        assert hostile.requests["pause"] >= 2  # told again as its readings show it still runs
        # The others are steered still, within the budget less its headroom.
        assert any(m.paused or m.target_w is not None for m in models)
        assert sum(m.aim_w() for m in models) <= 4000 * 0.95


async def test_a_refusal_shows_until_the_order_is_taken():
    paused, refusals = False, 1

    async def read(writer: asyncio.StreamWriter) -> None:
        writer.write(summary(Energy=None, Power=5.0 if paused else 2000.0, Paused=paused,
                             **{"MHS 5s": 1.0, "Power Limit": 2000.0}))

    async def pause(writer: asyncio.StreamWriter) -> None:
        nonlocal paused, refusals
        if refusals:
            refusals -= 1
            writer.write(reply({"STATUS": status("E", 14, "busy")}))
        else:
            paused = True
            writer.write(reply({"STATUS": status(message="PAUSE")}))

    async with HostileMiner({"summary": read, "pause": pause}) as hostile, \
            StandinFleet([MinerModel(max_watts=3000, lag_s=0)]) as fleet:
        site = site_with(hostile.address, fleet.addresses, budget=3000)
        errors = []
        for _ in range(8):
            await site.tick()
            errors.append(site.view().miners[0].error)
        assert errors[0] == f"sleep failed: miner {hostile.address} refused pause: busy"
        assert paused and errors[-1] is None


async def test_a_vast_budget_offers_a_miner_of_unknown_power_no_more_than_a_machine_draws():
    models = [MinerModel(max_watts=3000, lag_s=0)]
    async with StandinFleet(models) as fleet, HostileMiner({"*": summary(**{"Power Limit": 5e6})}) as own_limit:
        document = {"site": {"power_budget": 1e9, "tick": 0.2, "timeout_s": DEADLINE_S},
                    "miners": [{"address": fleet.addresses[0]}, {"address": own_limit.address}]}
        site = SiteController(parse_site_config(document, "site.toml"))
        for _ in range(3):
            await site.tick()
        learning, limited = site.view().miners
        assert models[0].target_w is not None and models[0].target_w <= MAX_MINER_WATTS
        assert learning.state == "on" and learning.error is None
        # A miner started with a power budget of its own above a machine's draw is read as it is.
        assert limited.error is None and limited.target_w == 5e6


async def test_silent_miners_holding_every_connection_neither_stretch_the_tick_nor_starve_the_others(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(controller_module, "MAX_CONCURRENT", 2)  # as 256 are, with thousands of miners
    models = [MinerModel(max_watts=3000, j_per_th=j, lag_s=0) for j in (20, 30)]
    async with contextlib.AsyncExitStack() as stack:
        silent = [await stack.enter_async_context(HostileMiner({"*": silence, "privileged": silence}))
                  for _ in range(6)]
        fleet = await stack.enter_async_context(StandinFleet(models))
        site = site_with(silent[0].address, [m.address for m in silent[1:]] + fleet.addresses, budget=4000)
        for _ in range(5):
            began = time.monotonic()
            await site.tick()
            assert time.monotonic() - began < DEADLINE_S + SLACK_S  # not three rounds of silence
        *dark, first, second = site.view().miners
        assert all(m.state == "unresponsive" for m in dark)
        assert first.error is None and second.error is None  # read first, once the silent ones showed
        assert any(m.paused or m.target_w is not None for m in models)
