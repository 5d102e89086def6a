"""`hashcore mine` as a user runs it, against pools that flood and fall silent.

A real process: --duration and SIGTERM are honoured within two seconds whatever the
pool does, the summary is printed, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import psutil

from tests.chaos.hostile_pool import HostilePool, Script
from tests.live import wait_until

#: Seconds a fresh interpreter takes to import hashcore and open the C backend here,
#: beyond which a run counts as late.
STARTUP_ALLOWANCE = 6.0
#: Resident memory a miner may reach under a flood (a normal run is well under 150 MB).
MAX_RSS = 400 * 2**20


async def run_miner(url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hashcore.cli", "mine", "--pool", url, "--user", "alice", "--backend", "c",
        "--threads", "1", "--api-listen", "off", "--json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def watch_rss(process: asyncio.subprocess.Process, peak: list[int]) -> None:
    handle = psutil.Process(process.pid)
    while process.returncode is None:
        try:
            peak[0] = max(peak[0], handle.memory_info().rss)
        except psutil.Error:
            return
        await asyncio.sleep(0.1)


async def terminate(process: asyncio.subprocess.Process) -> tuple[bytes, bytes, float]:
    """SIGTERM the miner; its stdout, stderr and the seconds it took to exit."""
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    return stdout, stderr, time.monotonic() - signalled


def summary_of(stdout: bytes) -> dict[str, object]:
    last = stdout.decode().strip().splitlines()[-1]
    summary = json.loads(last)
    assert isinstance(summary, dict)
    return summary


async def test_duration_is_honoured_under_a_share_flood_with_memory_bounded():
    async with HostilePool(Script(difficulty=1e-8)) as pool:
        started = time.monotonic()
        process = await run_miner(pool.url, "--duration", "4", "--max-share-rate", "10")
        peak = [0]
        watcher = asyncio.create_task(watch_rss(process, peak))
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        elapsed = time.monotonic() - started
        await watcher
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert elapsed < 4 + 2 + STARTUP_ALLOWANCE
    summary = summary_of(stdout)
    assert summary["capped"] > 0 and summary["accepted"] == pool.counts.accepted
    assert pool.counts.submits <= 10 * 5  # --max-share-rate 10, over a 4 s run
    assert pool.counts.unverified == 0
    assert 0 < peak[0] < MAX_RSS
    assert stderr.count(b"\n") < 40, "warnings must not repeat per share"


async def test_sigterm_stops_the_miner_within_two_seconds_under_a_flood_with_its_summary():
    async with HostilePool(Script(difficulty=1e-8, answer_delay=0.5)) as pool:
        process = await run_miner(pool.url)
        await wait_until(lambda: pool.counts.submits >= 10, timeout=30, what="shares flowing")
        await asyncio.sleep(1.0)
        stdout, stderr, stopped_in = await terminate(process)
    assert stopped_in < 2.0, f"took {stopped_in:.1f} s"
    assert b"Traceback" not in stderr
    summary = summary_of(stdout)
    pools = summary["pools"]
    assert isinstance(pools, list)
    # Every share sent is accounted for: answered, or counted as unanswered at exit.
    answered = summary["accepted"] + summary["rejected"] + summary["stale"]
    assert answered + pools[0]["unanswered"] == pool.counts.submits


async def test_sigterm_is_honoured_while_the_only_pool_is_silent():
    async with HostilePool(Script(silent=True)) as pool:
        process = await run_miner(pool.url)
        await wait_until(lambda: pool.counts.connections >= 1, timeout=30, what="a connection")
        await asyncio.sleep(0.5)
        _, stderr, stopped_in = await terminate(process)
    assert stopped_in < 2.0, f"took {stopped_in:.1f} s"
    assert b"Traceback" not in stderr
