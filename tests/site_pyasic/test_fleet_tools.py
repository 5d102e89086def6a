"""docs/fleet-tools.md, run as written against a real hashcore API server."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from pyasic.errors import APIError

from hashcore.api import ApiServer
from hashcore.cli.main import build_parser
from tests.doubles import MinerDouble, ThrottleDouble

DOC = Path(__file__).parents[2] / "docs" / "fleet-tools.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def pyasic_snippet() -> dict[str, Any]:
    """The doc's pyasic code, executed as a module: its functions by name."""
    (code,) = blocks("python")
    namespace: dict[str, Any] = {"__name__": "fleet_tools_snippet"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def shell_requests() -> list[bytes]:
    """What each `echo ... | nc HOST PORT` line of the doc sends."""
    lines = [line for line in blocks("sh")[1].splitlines() if line.strip()]
    sent = []
    for line in lines:
        echo, nc = line.split("|", 1)
        words = shlex.split(echo)
        assert words[0] == "echo" and shlex.split(nc)[0] == "nc"
        sent.append(words[1].encode() + b"\n")
    return sent


async def send_like_nc(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_the_docs_pyasic_snippet_pauses_resumes_and_sets_the_target_of_a_write_client():
    steer = pyasic_snippet()
    miner, throttle = MinerDouble(), ThrottleDouble(budget_w=1500.0)
    async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1", throttle=throttle) as api:
        await asyncio.wait_for(steer["pause"]("127.0.0.1", port=api.port), 10)
        assert miner.paused
        await asyncio.wait_for(steer["set_power_target"]("127.0.0.1", 1200, port=api.port), 10)
        await asyncio.wait_for(steer["resume"]("127.0.0.1", port=api.port), 10)
        await asyncio.wait_for(steer["set_power_target"]("127.0.0.1", "off", port=api.port), 10)
    assert miner.calls == [("pause",), ("resume",)] and not miner.paused
    assert throttle.targets == [1200.0, None]


async def test_without_write_access_the_docs_pyasic_snippet_is_refused_and_nothing_changes():
    steer = pyasic_snippet()
    miner, throttle = MinerDouble(), ThrottleDouble(budget_w=1500.0)
    async with ApiServer(miner, "127.0.0.1", 0, "R:127.0.0.1", throttle=throttle) as api:
        for call, args in (("pause", ()), ("resume", ()), ("set_power_target", (1200,))):
            with pytest.raises(APIError, match="Access denied"):
                await asyncio.wait_for(steer[call]("127.0.0.1", *args, port=api.port), 10)
    assert miner.calls == [] and throttle.targets == []


async def test_without_a_power_budget_powertarget_is_refused_and_pause_still_works():
    steer = pyasic_snippet()
    miner = MinerDouble()
    async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1") as api:
        with pytest.raises(APIError, match="No throttle is running"):
            await asyncio.wait_for(steer["set_power_target"]("127.0.0.1", 1200, port=api.port), 10)
        await asyncio.wait_for(steer["pause"]("127.0.0.1", port=api.port), 10)
    assert miner.paused


async def test_the_docs_shell_lines_pause_set_the_target_and_resume():
    miner, throttle = MinerDouble(), ThrottleDouble(budget_w=1500.0)
    async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1", throttle=throttle) as api:
        for request in shell_requests():
            reply = json.loads((await send_like_nc(api.port, request)).rstrip(b"\x00"))
            assert reply["STATUS"][0]["STATUS"] == "S", reply
    assert miner.calls == [("pause",), ("resume",)] and throttle.targets == [1200.0]


def test_the_docs_operator_command_line_is_one_hashcore_mine_accepts():
    words = shlex.split(blocks("sh")[0].replace("\\\n", " "))
    assert words[0] == "hashcore"
    args = build_parser().parse_args(words[1:])
    assert args.api_allow == "W:10.0.0.5,R:10.0.0.0/24" and args.power_budget == "1500"


async def test_pyasics_firmware_detection_finds_no_firmware_in_hashcores_answers():
    """pyasic.get_miner tells firmwares apart by the text of their `version` and
    `devdetails` answers on port 4028; hashcore's match none of them."""
    from pyasic.miners.factory import MinerFactory

    async with ApiServer(MinerDouble(), "127.0.0.1", 0) as api:
        answers = [await send_like_nc(api.port, json.dumps({"command": command}).encode())
                   for command in ("version", "devdetails")]
    assert all(b"hashcore" in answer for answer in answers)
    assert [MinerFactory._parse_socket_type(answer.decode()) for answer in answers] == [None, None]
