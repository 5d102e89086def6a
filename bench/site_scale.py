"""How a site tick's cost grows with the fleet: ``hashcore site``'s controller steering
stand-in miners (tests/site/standins.py) over loopback TCP, each answering the cgminer
API as a throttled hashcore instance does, and in the same process without a socket.

    python bench/site_scale.py                       # 10, 100 and 1,000 miners
    python bench/site_scale.py --miners 1000 --ticks 30 --json

Over loopback the stand-ins run in their own process, pinned to the last core and the
controller to the first where the machine has two, so the figure is the controller's
cost (reads, allocation, orders) and not the stand-ins'. Each tick is timed from its
first read to its last order; the first tick (probing every miner's write access) is
reported apart. The budget steps down and up through the run so that orders are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hashcore.app.site.config import parse_site_config  # noqa: E402
from hashcore.app.site.controller import SiteController  # noqa: E402
from tests.site.fleet import FleetProcess  # noqa: E402
from tests.site.standins import StandinLink, fleet_models  # noqa: E402


def _config(addresses: list[str], budget_file: Path) -> Any:
    data = {
        "site": {"power_budget": str(budget_file), "budget_poll": 0.1, "tick": 1.0, "min_on_s": 0.0,
                 "min_off_s": 0.0, "listen": "off", "timeout_s": 5.0},
        "miners": [{"address": a} for a in addresses],
    }
    return parse_site_config(data, "site_scale")


def _budget(miners: int, tick: int) -> float:
    """Watts for this tick: about half the fleet, with a step every fifth tick."""
    return miners * 1250.0 * (1.0 if tick // 5 % 2 == 0 else 0.6)


async def _run(controller: SiteController, budget_file: Path, miners: int, ticks: int) -> list[float]:
    costs = []
    try:
        for tick in range(ticks):
            budget_file.write_text(f"{_budget(miners, tick)}\n")
            await asyncio.sleep(0.15)  # the live file is read every 0.1 s
            began = time.perf_counter()
            await controller.tick()
            costs.append(time.perf_counter() - began)
    finally:
        await controller.close()
    return costs


@contextlib.contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    """This process on ``cpu`` alone while the block runs (where there is a second core)."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure(miners: int, ticks: int, transport: str, work: Path) -> dict[str, Any]:
    budget_file = work / f"budget-{transport}-{miners}.txt"
    budget_file.write_text(f"{_budget(miners, 0)}\n")
    cores = os.cpu_count() or 1
    if transport == "loopback":
        with FleetProcess(miners, cpu=cores - 1 if cores > 1 else None) as fleet, _pinned(0):
            controller = SiteController(_config(fleet.addresses, budget_file))
            costs = asyncio.run(_run(controller, budget_file, miners, ticks))
    else:
        models = fleet_models(miners)
        addresses = [f"10.0.{i // 250}.{i % 250 + 1}:4028" for i in range(miners)]
        links = {a: StandinLink(m, a) for a, m in zip(addresses, models, strict=True)}
        controller = SiteController(_config(addresses, budget_file), links)
        costs = asyncio.run(_run(controller, budget_file, miners, ticks))
    steady = costs[1:] or costs
    return {"miners": miners, "transport": transport, "ticks": len(costs), "first_tick_s": costs[0],
            "median_tick_s": statistics.median(steady), "max_tick_s": max(steady),
            "per_miner_ms": statistics.median(steady) / miners * 1e3}


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--miners", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--transport", choices=["loopback", "in-process", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args()
    if args.ticks < 2 or any(not 1 <= n <= 20_000 for n in args.miners):
        parser.error("--ticks is at least 2; --miners 1-20000")
    transports = ["loopback", "in-process"] if args.transport == "both" else [args.transport]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"hashcore-site-scale-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    rows = [measure(n, args.ticks, t, work) for t in transports for n in args.miners]
    result = {"cpu": _cpu(), "cores": os.cpu_count(), "rows": rows}
    print(f"{result['cpu']}, {result['cores']} cores; {args.ticks} ticks each")
    print(f"{'transport':<11} {'miners':>7} {'first tick':>11} {'median':>9} {'max':>9} {'per miner':>10}")
    for r in rows:
        print(f"{r['transport']:<11} {r['miners']:>7} {r['first_tick_s']:>10.3f}s {r['median_tick_s']:>8.3f}s "
              f"{r['max_tick_s']:>8.3f}s {r['per_miner_ms']:>8.3f}ms")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
