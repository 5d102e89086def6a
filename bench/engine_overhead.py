"""Engine overhead: mining through the embedded pool against the bare backend scan.

Runs, in one process and alternating A B A B..., ``hashcore.bench`` on a backend and a
Miner on the same backend against the embedded pool (real TCP, vardiff, share
verification with hashlib), and prints each pair's ratio mine/bench and the median.

    python bench/engine_overhead.py --backend c --threads 1 --seconds 8 --pairs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics

from hashcore.bench import bench
from hashcore.engine import Miner
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import VardiffPolicy


async def mine_rate(backend: str, threads: int, seconds: float) -> tuple[float, int]:
    vardiff = VardiffPolicy(target_seconds=2.0, retarget_seconds=4.0)
    async with EmbeddedPool(difficulty=0.01, vardiff=vardiff, job_interval=30) as pool:
        async with Miner([pool.url], "bench", backends=[backend], threads=threads) as miner:
            await miner.run(1.0)  # let the chunk sizer settle, then measure
            start = miner.stats()
            await miner.run(seconds)
            end = miner.stats()
    return (end.hashes - start.hashes) / (end.seconds - start.seconds), end.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="c")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    ratios = []
    for _ in range(args.pairs):
        bench_rate = bench(args.backend, args.seconds, args.threads, baseline=False).hashrate_hs
        mined, accepted = asyncio.run(mine_rate(args.backend, args.threads, args.seconds))
        ratios.append(mined / bench_rate)
        print(json.dumps({"bench_hs": round(bench_rate), "mine_hs": round(mined), "accepted": accepted,
                          "ratio": round(mined / bench_rate, 4)}))
    print(json.dumps({"backend": args.backend, "threads": args.threads, "median_ratio": statistics.median(ratios)}))


if __name__ == "__main__":
    main()
