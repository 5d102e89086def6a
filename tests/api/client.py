"""Helpers for the API tests: a real TCP client, a parser for cgminer's text form, and a
miner mining against the embedded pool with the API in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.api import ApiServer
from hashcore.engine import Miner
from hashcore.stratum.pool import EmbeddedPool
from tests.live import FAST

#: About 140,000 hashes a share: several shares a second with the reference backend.
DIFFICULTY = 3e-5


async def ask(port: int, request: bytes | str, *, half_close: bool = True, timeout: float = 10.0) -> bytes:
    """Send one request and read the reply up to the server's close (EOF)."""
    data = request.encode() if isinstance(request, str) else request
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def ask_json(port: int, command: str, parameter: str | None = None, **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command}
    if parameter is not None:
        body["parameter"] = parameter
    reply = await ask(port, json.dumps(body), **kwargs)
    assert reply.endswith(b"\x00"), reply[-40:]
    result = json.loads(reply[:-1])
    assert isinstance(result, dict)
    return result


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split cgminer text on ``separator`` where it is not escaped by a backslash; keep escapes."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


@dataclass
class TextRow:
    label: str | None  # "SUMMARY" in "SUMMARY,Elapsed=1"; None for keyed rows and STATUS
    fields: dict[str, str]


def parse_text(reply: bytes) -> list[TextRow]:
    """cgminer's text form: rows split by ``|``, fields by ``,``, key and value by ``=``."""
    assert reply.endswith(b"\x00"), reply[-40:]
    rows = []
    for raw in split_unescaped(reply[:-1].decode(), "|"):
        if not raw:
            continue
        label, fields = None, {}
        for item in split_unescaped(raw, ","):
            key, sep, value = item.partition("=")
            if not sep:
                label = unescape(key)
                continue
            fields[unescape(key)] = unescape(value)
        rows.append(TextRow(label, fields))
    return rows


def status_of(reply: Mapping[str, Any]) -> dict[str, Any]:
    status = reply["STATUS"][0]
    assert set(status) == {"STATUS", "When", "Code", "Msg", "Description"}
    return dict(status)


@dataclass
class Rig:
    pools: list[EmbeddedPool]
    miner: Miner
    api: ApiServer

    @property
    def port(self) -> int:
        return self.api.port


@contextlib.asynccontextmanager
async def rig(
    pools: int = 1,
    allow: str | None = None,
    api_options: Mapping[str, Any] | None = None,
    **miner_options: Any,
) -> AsyncIterator[Rig]:
    """Embedded pools, a reference-backend miner mining on them, and the API on port 0."""
    async with contextlib.AsyncExitStack() as stack:
        embedded = [
            await stack.enter_async_context(EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0))
            for _ in range(pools)
        ]
        settings = {"backends": ["reference"], "threads": 1, **FAST, **miner_options}
        miner = Miner([p.url for p in embedded], "alice", "x", **settings)
        await stack.enter_async_context(miner)
        api = ApiServer(miner, "127.0.0.1", 0, allow, **(api_options or {}))
        await stack.enter_async_context(api)
        yield Rig(embedded, miner, api)
