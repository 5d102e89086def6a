"""Pools that send garbage, over real TCP: the miner stays up and submits nothing unverified."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from hashcore.engine import Miner
from hashcore.stratum.pool import EmbeddedPool
from tests.live import FAST, wait_until
from tests.test_mining_e2e import DIFFICULTY

GARBAGE = [
    b"this is not json\n",
    b"\x00\xff\xfe garbage bytes \x80\n",
    b'{"id": 4242, "result": true, "error": null}\n',  # reply to an id never sent
    b'{"id": null, "method": "mining.unknown", "params": []}\n',
    b'{"id": 7, "method": "mining.do_something", "params": {}}\n',
    b'{"id": null, "method": "mining.notify", "params": [1, 2, 3]}\n',
    b'{"id": null, "method": "mining.notify", "params": ["x", "zz", "", "", [], "1", "2", "3", "no"]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": ["a lot"]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": [-5]}\n',
    b'{"id": null, "method": "mining.set_extranonce", "params": [42, "four"]}\n',
    b'{"id": null, "method": "mining.set_version_mask", "params": [null]}\n',
    b'{"id": null, "method": "client.reconnect", "params": ["127.0.0.1", "not a port", 1]}\n',
    b"[1, 2, 3]\n",
    b'{"method": 5}\n',
    b'{"id": null, "method": "mining.notify", "par',  # half a line: the rest never comes...
    b'\n',  # ...and the next newline ends it as a malformed line
]


#: Whole lines only: a half line would swallow the real message written after it.
WHOLE_LINES = [g for g in GARBAGE if g.endswith(b"\n")]


class GarblingPool(EmbeddedPool):
    """The embedded pool, with a garbage line written before every real message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.garbage_sent = 0

    def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if data and not writer.is_closing():
            chunk = WHOLE_LINES[self.garbage_sent % len(WHOLE_LINES)]
            self.garbage_sent += 1
            writer.write(chunk + data)


async def test_garbage_between_real_messages_never_stops_mining_or_causes_a_bad_submit():
    async with GarblingPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        async with Miner([pool.url], "alice", backends=["reference"], threads=1, **FAST) as miner:
            for _ in range(4):
                await wait_until(lambda: miner.stats().accepted >= 1, what="shares despite garbage")
                pool.new_job(clean=True)
            await wait_until(lambda: pool.stats.accepted >= 3, what="more shares")
            stats = miner.stats()
        assert pool.garbage_sent >= 5
        # Only shares already on the wire when a clean job went out may be refused (stale);
        # nothing the pool finds wrong (codes 20, 22-25) is ever sent.
        assert stats.rejected == 0 and set(pool.stats.rejected) <= {21}


async def _serve_script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: list[bytes],
                        seen: list[dict[str, Any]]) -> None:
    """A fake pool: answers handshake requests, then plays ``script`` and records requests."""
    try:
        while line := await reader.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            seen.append(message)
            if message.get("method") == "mining.subscribe":
                writer.write(json.dumps({"id": message["id"], "result": [[], "aabbccdd", 4],
                                         "error": None}).encode() + b"\n")
            elif message.get("method") == "mining.authorize":
                writer.write(json.dumps({"id": message["id"], "result": True, "error": None}).encode() + b"\n")
                for chunk in script:
                    writer.write(chunk)
                    await writer.drain()
            elif message.get("method") == "mining.configure":
                writer.write(b'{"id": ' + str(message["id"]).encode() + b', "result": "what", "error": null}\n')
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def test_a_pool_of_nothing_but_garbage_gets_no_submit_and_a_huge_line_makes_the_miner_reconnect():
    seen: list[dict[str, Any]] = []
    connections = 0
    huge = b'{"id": null, "method": "mining.notify", "params": ["' + b"a" * 2_000_000 + b'"]}\n'

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _serve_script(reader, writer, [*GARBAGE, huge], seen)

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        miner = Miner([f"stratum+tcp://127.0.0.1:{port}"], "alice", backends=["reference"], threads=1, **FAST)
        async with miner:
            run = asyncio.create_task(miner.run(None))
            await wait_until(lambda: connections >= 3, what="reconnects after the huge line")
            assert not run.done(), "the miner must stay up"
            run.cancel()
        assert [m for m in seen if m.get("method") == "mining.submit"] == []
        assert miner.stats().hashes == 0  # no valid job ever arrived: nothing to hash
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_pool_trips_the_watchdog(caplog):
    caplog.set_level(logging.INFO, logger="hashcore.stratum")
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()  # say nothing at all
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        miner = Miner([f"stratum+tcp://127.0.0.1:{port}"], "alice", backends=["reference"], threads=1,
                      **{**FAST, "idle_timeout": 0.3})
        async with miner:
            await wait_until(lambda: connections >= 2, timeout=10, what="a watchdog reconnect")
        assert any("watchdog: nothing from the pool" in r.getMessage() for r in caplog.records)
    finally:
        server.close()
        await server.wait_closed()
