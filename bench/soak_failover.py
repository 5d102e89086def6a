"""Soak and failover figures: a miner against pools that restart, die and fall silent.

Three measurements, each on real TCP on loopback with a real backend:

* ``soak``: the embedded pool is stopped and restarted on the same port every few
  seconds for minutes. Reports each reconnect time (restart to first share accepted by
  the new pool) and whether any share was lost or counted twice: the miner's accepted
  count must equal the sum of every pool instance's, and every share it sent must be
  answered or counted as unanswered.
* ``dies``: two pools; the primary is stopped mid-run. Reports the failover time (primary
  gone to first share accepted by the backup) with the default client settings.
* ``silent``: the primary accepts TCP and never speaks; a healthy backup. Reports the
  share of a run spent hashing and the failover time, with the default settings (the
  handshake deadline and failback probes included).

    python bench/soak_failover.py soak --minutes 3 --restart-every 5
    python bench/soak_failover.py dies
    python bench/soak_failover.py silent --seconds 90
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from hashcore.engine import Miner
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import VardiffPolicy

DIFFICULTY = 0.002


def new_pool(port: int = 0) -> EmbeddedPool:
    return EmbeddedPool(port=port, difficulty=DIFFICULTY, vardiff=VardiffPolicy(target_seconds=1.0), job_interval=10)


async def until(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` holds, or None after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            return None
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    pool = new_pool()
    await pool.start()
    port = pool.port
    accepted_by_pools = 0
    reconnects: list[float] = []
    missed = 0
    async with Miner([pool.url], "soak", backends=[args.backend], threads=args.threads) as miner:
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            await asyncio.sleep(args.restart_every)
            await pool.stop()
            accepted_by_pools += pool.stats.accepted
            await asyncio.sleep(args.down_seconds)
            pool = new_pool(port)
            await pool.start()
            took = await until(lambda current=pool: current.stats.accepted >= 1, timeout=60)
            if took is None:
                missed += 1
            else:
                reconnects.append(took + args.down_seconds)
        for name in miner.stats().backends:
            miner.set_duty(name, 0.0)
        await asyncio.sleep(0.5)
        await until(lambda: miner.shares_in_flight == 0, timeout=10)
        await pool.stop()
        accepted_by_pools += pool.stats.accepted
    stats = miner.stats()
    unanswered = sum(p.unanswered for p in stats.pools)
    return {
        "mode": "soak",
        "backend": args.backend,
        "minutes": args.minutes,
        "restarts": len(reconnects) + missed,
        "reconnect_s": _spread(reconnects),
        "restarts_without_a_share_in_60s": missed,
        "miner_accepted": stats.accepted,
        "pools_accepted": accepted_by_pools,
        "double_counted": max(0, stats.accepted - accepted_by_pools),
        "lost": max(0, accepted_by_pools - stats.accepted),
        "unanswered": unanswered,
        "stale": stats.stale,
        "rejected": stats.rejected,
        "hashrate_hs": stats.hashrate_hs,
    }


async def dies(args: argparse.Namespace) -> dict[str, Any]:
    async with new_pool() as backup:
        primary = new_pool()
        await primary.start()
        async with Miner([primary.url, backup.url], "soak", backends=[args.backend], threads=args.threads) as miner:
            await until(lambda: primary.stats.accepted >= 2, timeout=60)
            await primary.stop()
            took = await until(lambda: backup.stats.accepted >= 1, timeout=120)
            stats = miner.stats()
    return {"mode": "dies", "backend": args.backend, "failover_s": took, "accepted": stats.accepted}


async def silent(args: argparse.Namespace) -> dict[str, Any]:
    connections = 0

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()
        writer.close()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    silent_url = f"stratum+tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    hashing = 0.0
    async with new_pool() as backup:
        async with Miner([silent_url, backup.url], "soak", backends=[args.backend], threads=args.threads) as miner:
            started = time.monotonic()
            took = await until(lambda: backup.stats.accepted >= 1, timeout=args.seconds)
            last_hashes, last = 0, started
            while time.monotonic() - started < args.seconds:
                await asyncio.sleep(0.25)
                hashes = miner.stats().hashes
                if hashes > last_hashes:
                    hashing += time.monotonic() - last
                last_hashes, last = hashes, time.monotonic()
            stats = miner.stats()
    server.close()
    return {
        "mode": "silent",
        "backend": args.backend,
        "seconds": args.seconds,
        "failover_s": took,
        "hashing_fraction": hashing / args.seconds,
        "silent_pool_connections": connections,
        "accepted": stats.accepted,
        "active_pool_is_backup": stats.active_pool == backup.url,
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "count": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["soak", "dies", "silent"])
    parser.add_argument("--backend", default="c")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=3.0, help="soak: how long")
    parser.add_argument("--restart-every", type=float, default=5.0, help="soak: seconds between restarts")
    parser.add_argument("--down-seconds", type=float, default=0.5, help="soak: seconds the pool stays down")
    parser.add_argument("--seconds", type=float, default=90.0, help="silent: the run's length")
    args = parser.parse_args()
    run = {"soak": soak, "dies": dies, "silent": silent}[args.mode]
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
