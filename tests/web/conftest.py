"""Shared pieces of the dashboard tests: a throttle double with the page's fields, a bench table, an event reader."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.doubles import ThrottleDouble

#: Two rows as ``hashcore bench --all --json`` writes them (extra keys included).
BENCH_REPORTS: list[dict[str, Any]] = [
    {"backend": "c", "threads": 2, "path": "shani", "seconds": 5.0, "hashes": 60_000_000, "hashrate_hs": 12.0e6,
     "per_thread_hs": 6.0e6, "baseline_hashrate_hs": 4.0e5, "hashlib_compressions_s": 9.0e6,
     "ratio_per_thread": 0.667, "joules": 150.0, "watts": 30.0, "j_per_hash": 2.5e-6, "j_per_th": 2.5e6,
     "energy_source": "rapl", "energy_exact": True, "energy_note": "RAPL package counter"},
    {"backend": "reference", "threads": 1, "path": None, "seconds": 5.0, "hashes": 2_000_000,
     "hashrate_hs": 4.0e5, "per_thread_hs": 4.0e5, "baseline_hashrate_hs": 4.0e5, "hashlib_compressions_s": 9.0e6,
     "ratio_per_thread": 0.044, "joules": 60.0, "watts": 12.0, "j_per_hash": 3.0e-5, "j_per_th": 3.0e7,
     "energy_source": "estimate", "energy_exact": False, "energy_note": "CPU time x 12 W per core"},
]


def page_throttle() -> ThrottleDouble:
    """A throttle with the four fields the page shows, and two it must not."""
    return ThrottleDouble(40.0, power_w=12.5, policy="surplus", state="throttled",
                          controller={"gain": 1.0}, signal="trace solar.csv")


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, dict[str, Any]]]:
    """Read ``count`` server-sent events as (event name, data); fewer when the stream ends."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", ""
    while len(events) < count:
        line = (await response.content.readline()).decode()
        if line == "":
            break  # the stream ended
        line = line.rstrip("\n")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            events.append((name, json.loads(data)))
            name, data = "message", ""
    return events
