"""Hostile miners against the embedded pool over real loopback TCP.

Each test checks the pool's promise: a peer's bytes or silence never cost it a traceback,
a malformed field gets its error code, a dead or slow peer gives its slot back within
the deadlines, and a well-behaved miner is served afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from hashcore.engine import Miner
from hashcore.stratum.fields import job_from_notify
from hashcore.stratum.pool import EmbeddedPool
from hashcore.work import Work, difficulty_to_target, rolled_version, verify_nonce
from tests.live import FAST, free_port, wait_until

DIFFICULTY = 1e-5  # about 43,000 hashes a share: the test finds one in Python quickly


class Peer:
    """A raw Stratum client: sends what it is told, reads lines as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.notify: list[Any] | None = None
        self.extranonce1 = b""

    @classmethod
    async def connect(cls, pool: EmbeddedPool) -> Peer:
        return cls(*await asyncio.open_connection(pool.host, pool.port))

    async def send(self, data: bytes | dict[str, Any]) -> None:
        self.writer.write(data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n")
        await self.writer.drain()

    async def message(self, timeout: float = 5.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert line, "the pool closed the connection"
        message: dict[str, Any] = json.loads(line)
        if message.get("method") == "mining.notify":
            self.notify = message["params"]
        return message

    async def reply(self, request_id: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The answer to ``request_id``; notifications read on the way are kept."""
        while True:
            message = await self.message(timeout)
            if "method" not in message and message.get("id") == request_id:
                return message

    async def call(self, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        await self.send({"id": request_id, "method": method, "params": params})
        return await self.reply(request_id)

    async def handshake(self) -> None:
        await self.call(1, "mining.configure", [["version-rolling"], {"version-rolling.mask": "1fffe000"}])
        subscribed = await self.call(2, "mining.subscribe", ["hostile/1.0"])
        self.extranonce1 = bytes.fromhex(subscribed["result"][1])
        assert (await self.call(3, "mining.authorize", ["alice", "x"]))["result"] is True
        while self.notify is None:
            await self.message()

    async def closed_by_pool(self, timeout: float) -> bool:
        """Whether the pool closes the connection within ``timeout`` (reading what it sends)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def find_share(peer: Peer, extranonce2: bytes = b"\x00\x00\x00\x07") -> int:
    """A nonce meeting the pool's difficulty for the peer's job, found as a miner would."""
    assert peer.notify is not None
    job = job_from_notify(peer.notify)
    version = rolled_version(job.version, 0x1FFFE000, 0)
    work = Work(job.header76(job.merkle_root(peer.extranonce1, extranonce2), version=version),
                difficulty_to_target(DIFFICULTY))
    return next(n for n in range(1 << 24) if verify_nonce(work, n).value <= work.target)


def hostile_pool(**limits: Any) -> EmbeddedPool:
    return EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0, seed=b"hostile", **limits)


async def assert_a_real_miner_is_served(pool: EmbeddedPool) -> None:
    async with Miner([pool.url], "bob", "x", backends=["reference"], threads=1, **FAST) as miner:
        await wait_until(lambda: miner.stats().accepted >= 1, what="a share from a well-behaved miner")


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No error, no traceback: every hostile act cost at most an info line."""
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    assert "Traceback" not in caplog.text


# --- malformed lines -----------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    b"[" * 100_000,
    b"[" * 5000 + b"]" * 5000,
    b'{"id": 9, "method": "mining.subscribe", "params": ' + b"[" * 50 + b"]" * 50 + b"}",
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"\xff\xfe\xfd not json",
], ids=["100k-open-brackets", "5000-deep-array", "50-deep-params", "3000-deep-object", "bad-utf8"])
async def test_a_deeply_nested_or_broken_line_gets_a_json_rpc_error_and_the_connection_stays(caplog, line):
    async with hostile_pool() as pool:
        peer = await Peer.connect(pool)
        await peer.send(line + b"\n")
        answer = await peer.reply(None)
        assert answer["error"][0] == 20 and answer["result"] is None
        await peer.handshake()  # the same connection still works
        nonce = find_share(peer)
        fields = ["alice", peer.notify[0], "00000007", peer.notify[7], f"{nonce:08x}", "00000000"]
        assert (await peer.call(10, "mining.submit", fields))["result"] is True
        peer.close()
        await assert_a_real_miner_is_served(pool)
    assert_quiet(caplog)


async def test_a_line_over_the_length_cap_closes_the_connection_with_one_log_line(caplog):
    caplog.set_level(logging.INFO, logger="hashcore.pool")
    async with hostile_pool() as pool:
        peer = await Peer.connect(pool)
        peer.writer.write(b"[" * (300 * 1024))
        assert await peer.closed_by_pool(5.0)
        await wait_until(lambda: pool.connections == 0, timeout=5.0, what="the slot released")
        await assert_a_real_miner_is_served(pool)
    assert sum("line over" in r.getMessage() for r in caplog.records) == 1
    assert_quiet(caplog)


# --- malformed fields in mining.submit -----------------------------------------------------

BAD_U32: list[Any] = ["-0000001", "+0000001", " 0000001", "0x000001", "000000001", "0000_001", "\u0660" * 8,
                      1, None, True, 1.5, ["00000001"]]


async def test_malformed_submit_fields_get_code_20_and_a_good_share_then_counts(caplog):
    async with hostile_pool() as pool:
        peer = await Peer.connect(pool)
        await peer.handshake()
        assert peer.notify is not None
        good = ["alice", peer.notify[0], "00000007", peer.notify[7], "00000000", "00000000"]
        sent = 0
        for position in (2, 3, 4, 5):  # extranonce2, ntime, nonce, version bits
            for value in [*BAD_U32, "00 00 00", "0000000"]:
                fields = list(good)
                fields[position] = value
                answer = await peer.call(100 + sent, "mining.submit", fields)
                assert answer["error"][0] == 20, (position, value, answer)
                sent += 1
        good[4] = f"{find_share(peer):08x}"
        assert (await peer.call(99, "mining.submit", good))["result"] is True
        assert pool.stats.rejected == {20: sent} and pool.stats.accepted == 1
        peer.close()
        await assert_a_real_miner_is_served(pool)
    assert_quiet(caplog)


async def test_odd_values_in_every_other_method_get_code_20(caplog):
    async with hostile_pool() as pool:
        peer = await Peer.connect(pool)
        calls = [
            ("mining.configure", [["version-rolling"], {"version-rolling.mask": "-1"}]),
            ("mining.configure", [["version-rolling"], {"version-rolling.mask": "0x1fffe000"}]),
            ("mining.configure", "version-rolling"),
            ("mining.subscribe", {"agent": "x"}),
            ("mining.suggest_difficulty", [float("inf")]),
            ("mining.suggest_difficulty", [10**400]),
            ("mining.suggest_difficulty", ["1"]),
            ("mining.suggest_difficulty", [True]),
            ("mining.bogus", []),
        ]
        for request_id, (method, params) in enumerate(calls, 10):
            assert (await peer.call(request_id, method, params))["error"][0] == 20, method
        await peer.call(2, "mining.subscribe", [])
        for request_id, user in enumerate([7, None, "", "x" * 1000, "\u001b[2J"], 30):
            assert (await peer.call(request_id, "mining.authorize", [user, "x"]))["error"][0] == 20, user
        peer.close()
        await assert_a_real_miner_is_served(pool)
    assert_quiet(caplog)


# --- deadlines and the connection cap ------------------------------------------------------


async def test_a_silent_socket_is_closed_at_the_handshake_deadline_and_its_slot_released(caplog):
    async with hostile_pool(handshake_timeout=0.5, idle_timeout=None, line_timeout=None) as pool:
        peer = await Peer.connect(pool)
        await wait_until(lambda: pool.connections == 1, timeout=5.0, what="the connection served")
        assert await peer.closed_by_pool(5.0)
        await wait_until(lambda: pool.connections == 0, timeout=5.0, what="the slot released")
    assert_quiet(caplog)


async def test_a_chatty_peer_that_never_authorizes_is_closed_at_the_handshake_deadline(caplog):
    async with hostile_pool(handshake_timeout=1.0, idle_timeout=None, line_timeout=None) as pool:
        peer = await Peer.connect(pool)
        await peer.call(1, "mining.subscribe", [])

        async def chatter() -> None:
            for request_id in range(100, 200):
                await peer.send({"id": request_id, "method": "mining.extranonce.subscribe", "params": []})
                await asyncio.sleep(0.1)

        chatting = asyncio.create_task(chatter())
        try:
            assert await peer.closed_by_pool(5.0)
        finally:
            chatting.cancel()
            await asyncio.gather(chatting, return_exceptions=True)
        await wait_until(lambda: pool.connections == 0, timeout=5.0, what="the slot released")
    assert_quiet(caplog)


async def test_an_authorized_miner_that_goes_silent_is_closed_at_the_idle_timeout(caplog):
    async with hostile_pool(idle_timeout=1.0) as pool:
        peer = await Peer.connect(pool)
        await peer.handshake()
        assert pool.connections == 1
        assert await peer.closed_by_pool(5.0)
        await wait_until(lambda: pool.connections == 0, timeout=5.0, what="the slot released")
    assert_quiet(caplog)


async def test_a_client_trickling_one_byte_a_second_is_closed_at_the_line_deadline(caplog):
    async with hostile_pool(handshake_timeout=None, idle_timeout=None, line_timeout=1.5) as pool:
        peer = await Peer.connect(pool)
        line = json.dumps({"id": 1, "method": "mining.subscribe", "params": []}).encode() + b"\n"

        async def trickle() -> None:
            for byte in line:
                peer.writer.write(bytes([byte]))
                await asyncio.sleep(1.0)

        trickling = asyncio.create_task(trickle())
        try:
            assert await peer.closed_by_pool(6.0)
        finally:
            trickling.cancel()
            await asyncio.gather(trickling, return_exceptions=True)
        await wait_until(lambda: pool.connections == 0, timeout=5.0, what="the slot released")
        await assert_a_real_miner_is_served(pool)
    assert_quiet(caplog)


async def test_sockets_beyond_the_cap_are_refused_and_a_real_miner_still_served(caplog):
    async with hostile_pool(max_connections=4, handshake_timeout=None) as pool:
        holders = [await Peer.connect(pool) for _ in range(3)]
        await wait_until(lambda: pool.connections == 3, timeout=5.0, what="three slots held")
        # The fourth slot: taken by one more idle socket, then given back.
        fourth = await Peer.connect(pool)
        await wait_until(lambda: pool.connections == 4, timeout=5.0, what="the pool full")
        extra = [await Peer.connect(pool) for _ in range(40)]
        for peer in extra:
            told = await peer.message()
            assert told == {"id": None, "method": "client.show_message", "params": ["pool full, try later"]}
            assert await peer.closed_by_pool(5.0)
        assert pool.stats.refused == 40 and pool.connections == 4
        fourth.close()
        await wait_until(lambda: pool.connections == 3, timeout=5.0, what="a slot released")
        await assert_a_real_miner_is_served(pool)
        for peer in holders:
            peer.close()
    assert sum("pool full" in r.getMessage() for r in caplog.records) == 1  # one line, not one per socket
    assert_quiet(caplog)


# --- stopping ------------------------------------------------------------------------------


async def test_stop_with_connected_clients_cancels_their_tasks_quietly(caplog, capfd):
    pool = hostile_pool()
    await pool.start()
    miner_peer = await Peer.connect(pool)
    await miner_peer.handshake()
    half_line = await Peer.connect(pool)
    await half_line.send(b'{"id": 1, "method": "mining.subscr')
    silent = await Peer.connect(pool)
    await wait_until(lambda: pool.connections == 3, timeout=5.0, what="three connections")
    await half_line.send(b'ribe", "params": []}\n')  # data arriving as stop() cancels must not delay it
    async with asyncio.timeout(2.0):  # told to stop, it stops within 2 s whatever its peers do
        await pool.stop()
    assert pool.connections == 0
    assert not [t for t in asyncio.all_tasks() if "_serve" in repr(t.get_coro())]
    for peer in (miner_peer, half_line, silent):
        assert await peer.closed_by_pool(2.0)
    await asyncio.sleep(0.1)  # any late callback of the stream server runs now
    assert_quiet(caplog)
    assert "Traceback" not in capfd.readouterr().err


def test_sigterm_stops_the_pool_command_quietly_with_a_miner_connected():
    port = free_port()
    command = [sys.executable, "-c", "import sys; from hashcore.cli import main; sys.exit(main())",
               "pool", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        assert "embedded pool on" in process.stdout.readline()

        async def connect_and_stop() -> None:
            pool = EmbeddedPool(port=port)  # only for its host and port
            peer = await Peer.connect(pool)
            await peer.handshake()
            process.send_signal(signal.SIGTERM)
            assert await peer.closed_by_pool(5.0)

        asyncio.run(connect_and_stop())
        _out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "Traceback" not in err and "ERROR" not in err, err
