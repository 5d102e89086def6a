"""The estimate: CPU time of this process × a per-core TDP. Never a measurement.

Used when no counter can be read (no RAPL in a VM, or no permission). The watts per
core come from config or from a small table of CPU models (TDP / cores); the figure
leaves out idle, uncore and memory power, so it is labelled ``estimate`` with
``exact=False`` wherever it appears, and ``note`` says why it was taken and what it used.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hashcore.errors import ConfigError
from hashcore.telemetry.cputime import process_tree_cpu_us
from hashcore.telemetry.poll import Clock, CountingMeter


@dataclass(frozen=True, slots=True)
class TdpEntry:
    """Watts per core for CPUs whose model name contains ``match`` (case-insensitive)."""

    match: str
    watts_per_core: float
    basis: str


def _sku(match: str, tdp_w: int, cores: int, family: str) -> TdpEntry:
    return TdpEntry(match, tdp_w / cores, f"{match} ({family}): {tdp_w} W TDP / {cores} cores")


#: Specific models first (TDP / cores from the vendor's data sheet), then families.
TDP_TABLE: tuple[TdpEntry, ...] = (
    _sku("EPYC 7313", 155, 16, "Zen 3"),
    _sku("EPYC 7443", 200, 24, "Zen 3"),
    _sku("EPYC 7543", 225, 32, "Zen 3"),
    _sku("EPYC 7713", 225, 64, "Zen 3"),
    _sku("EPYC 7763", 280, 64, "Zen 3"),
    _sku("EPYC 9554", 360, 64, "Zen 4"),
    _sku("EPYC 9654", 360, 96, "Zen 4"),
    _sku("EPYC 9754", 360, 128, "Zen 4c"),
    _sku("EPYC 9555", 360, 64, "Zen 5"),
    _sku("EPYC 9755", 500, 128, "Zen 5"),
    _sku("EPYC 9965", 500, 192, "Zen 5c"),
    _sku("Xeon(R) Gold 6248", 150, 20, "Cascade Lake"),
    _sku("Xeon(R) Platinum 8380", 270, 40, "Ice Lake"),
    _sku("Xeon(R) Platinum 8480", 350, 56, "Sapphire Rapids"),
    _sku("Core(TM) i9-13900K", 125, 24, "Raptor Lake"),
    _sku("Core(TM) i7-12700K", 125, 12, "Alder Lake"),
    TdpEntry("EPYC", 4.0, "AMD EPYC, exact model unknown: typical of Zen 3-5 server parts"),
    TdpEntry("Ryzen", 8.0, "AMD Ryzen, exact model unknown: typical desktop part"),
    TdpEntry("Xeon", 7.0, "Intel Xeon, exact model unknown: typical server part"),
    TdpEntry("Core(TM)", 6.0, "Intel Core, exact model unknown: typical desktop part"),
)

#: When the model matches nothing in the table.
DEFAULT_TDP = TdpEntry("", 5.0, "unknown CPU model: generic figure")


def lookup_tdp(model: str) -> TdpEntry:
    """The table row for a CPU model name (``/proc/cpuinfo``'s ``model name``)."""
    folded = re.sub(r"\s+", " ", model).casefold()
    for entry in TDP_TABLE:
        if entry.match.casefold() in folded:
            return entry
    return DEFAULT_TDP


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, or "" when the system does not say."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor()


class EstimateMeter(CountingMeter):
    """Estimated energy: CPU time of this process (threads and workers) × watts per core.

    Args:
        watts_per_core: from config; looked up from the CPU model when None.
        reason: why an estimate is used (e.g. "no RAPL: /sys/class/powercap missing").
        cpu_us: returns cumulative CPU time in integer microseconds (test seam).
        model: the CPU model name to look up (read from the system when None).
    """

    source = "estimate"
    exact = False

    def __init__(
        self,
        watts_per_core: float | None = None,
        *,
        reason: str = "",
        cpu_us: Callable[[], int] = process_tree_cpu_us,
        model: str | None = None,
        clock: Clock = time.monotonic_ns,
    ) -> None:
        if watts_per_core is not None:
            if not watts_per_core > 0:
                raise ConfigError(f"watts per core must be positive, not {watts_per_core}")
            basis = "configured"
        else:
            entry = lookup_tdp(cpu_model() if model is None else model)
            watts_per_core, basis = entry.watts_per_core, entry.basis
        # W per core as integer milliwatts; energy in microjoules = CPU µs × mW / 1000.
        self._mw_per_core = round(watts_per_core * 1000)
        self.watts_per_core = self._mw_per_core / 1000
        self.reason = reason
        super().__init__(clock)
        self._cpu_us = cpu_us
        self._start_us = self._last_us = cpu_us()
        self._start_rate()
        why = f"; used because {reason}" if reason else ""
        self.note = f"estimate, not measured: CPU time of this process × {self.watts_per_core:g} W/core ({basis}){why}"

    def _energy_uj(self) -> int:
        # CPU time of an exited, unreaped worker can vanish; never let energy go back.
        self._last_us = max(self._last_us, self._cpu_us())
        return (self._last_us - self._start_us) * self._mw_per_core // 1000
