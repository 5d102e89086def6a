"""A powercap tree built in a temporary directory, shaped like the real sysfs one.

Real sysfs keeps the zones under ``devices/virtual/powercap/intel-rapl/`` (sub-zones
nested inside their package) and links each zone, sub-zones included, from
``class/powercap/``. ``links=False`` builds the flat variant (plain directories at the
top) that hand-made trees and some containers have.

Run as a program, it builds the standard tree and advances the counters at a fixed
wattage in real time, for a benchmark pointed at it with ``HASHCORE_POWERCAP_ROOT``::

    python -m tests.telemetry.powercap_tree /tmp/powercap --watts 40
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

#: A typical Intel package range: 2**32 counts of 61.035 µJ.
TYPICAL_MAX_UJ = 262_143_328_850


class FakePowercap:
    def __init__(self, base: Path, *, links: bool = True) -> None:
        self.root = base / "class" / "powercap"
        self.devices = base / "devices" / "virtual" / "powercap" / "intel-rapl"
        self.links = links
        self.root.mkdir(parents=True)
        self.devices.mkdir(parents=True)
        (self.devices / "enabled").write_text("1\n")
        if links:
            (self.root / "intel-rapl").symlink_to(self.devices)
        self.zones: dict[str, Path] = {}
        self.max_uj: dict[str, int | None] = {}

    def add(self, key: str, name: str, energy_uj: int = 0, max_uj: int | None = TYPICAL_MAX_UJ) -> Path:
        """Add zone ``key`` (``intel-rapl:0`` or ``intel-rapl:0:1``) with its files."""
        parts = key.split(":")
        if self.links:
            parent = self.devices if len(parts) == 2 else self.zones[":".join(parts[:2])]
            path = parent / key
            path.mkdir()
            (self.root / key).symlink_to(path)
        else:
            path = self.root / key
            path.mkdir()
        (path / "name").write_text(name + "\n")
        (path / "enabled").write_text("1\n")
        (path / "constraint_0_name").write_text("long_term\n")
        (path / "constraint_0_power_limit_uw").write_text("280000000\n")
        if max_uj is not None:
            (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
        self.zones[key] = path
        self.max_uj[key] = max_uj
        self.write(key, energy_uj)
        return path

    def raw(self, key: str) -> int:
        return int((self.zones[key] / "energy_uj").read_text())

    def write(self, key: str, raw_uj: int) -> None:
        # Replace the file whole, so a concurrent reader never sees it half written
        # (sysfs reads are atomic too).
        tmp = self.zones[key] / ".energy_uj.tmp"
        tmp.write_text(f"{raw_uj}\n")
        os.replace(tmp, self.zones[key] / "energy_uj")

    def advance(self, key: str, uj: int) -> None:
        """Add ``uj`` microjoules, wrapping past max_energy_range_uj as the hardware does
        (when the range file is missing the counter still wraps, at the typical range)."""
        limit = self.max_uj[key] or TYPICAL_MAX_UJ
        self.write(key, (self.raw(key) + uj) % (limit + 1))


def standard_tree(base: Path, *, links: bool = True) -> FakePowercap:
    """Two sockets with core and dram each, and a psys zone."""
    tree = FakePowercap(base, links=links)
    tree.add("intel-rapl:0", "package-0", 1_000_000)
    tree.add("intel-rapl:0:0", "core", 500_000)
    tree.add("intel-rapl:0:1", "dram", 200_000)
    tree.add("intel-rapl:1", "package-1", 3_000_000)
    tree.add("intel-rapl:1:0", "core", 700_000)
    tree.add("intel-rapl:1:1", "dram", 100_000)
    tree.add("intel-rapl:2", "psys", 9_000_000)
    return tree


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a new directory to build the tree in")
    parser.add_argument("--watts", type=float, default=40.0, help="total package power (60/40 over two sockets)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: never)")
    args = parser.parse_args(argv)
    tree = standard_tree(args.dir)
    start = {key: tree.raw(key) for key in tree.zones}
    shares = {"intel-rapl:0": 0.6, "intel-rapl:0:0": 0.45, "intel-rapl:1": 0.4, "intel-rapl:1:0": 0.3}
    print(f"HASHCORE_POWERCAP_ROOT={tree.root}  ({args.watts:g} W over package-0 + package-1)", flush=True)
    t0 = time.monotonic_ns()
    try:
        while args.seconds is None or time.monotonic_ns() - t0 < args.seconds * 1e9:
            time.sleep(0.01)
            # Energy from the elapsed time, not summed steps, so it never drifts from the watts.
            elapsed_ns = time.monotonic_ns() - t0
            for key, share in shares.items():
                uj = round(args.watts * share * elapsed_ns / 1000)
                limit = tree.max_uj[key] or TYPICAL_MAX_UJ
                tree.write(key, (start[key] + uj) % (limit + 1))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
