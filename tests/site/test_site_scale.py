"""The site's scaling benchmark (bench/site_scale.py) runs end to end on a small fleet:
the controller reads and steers every stand-in, over loopback and in process."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "site_scale.py"


@pytest.fixture(scope="module")
def site_scale():
    spec = importlib.util.spec_from_file_location("site_scale", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["site_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("transport", ["loopback", "in-process"])
def test_a_small_fleet_is_timed_tick_by_tick(site_scale, transport: str, tmp_path: Path):
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    row = site_scale.measure(6, 3, transport, tmp_path)
    assert cores is None or os.sched_getaffinity(0) == cores  # the controller's pinning is undone
    assert row["miners"] == 6 and row["transport"] == transport and row["ticks"] == 3
    assert 0 < row["median_tick_s"] <= row["max_tick_s"] and row["first_tick_s"] > 0
