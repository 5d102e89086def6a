"""Which meter measures which backend, and the energy ledger of a run.

Backends say what draws their power with an optional ``energy_kind`` attribute
(``cpu`` when absent; ``gpu`` for NVIDIA devices, ``asic`` for a board) and, where the
meter needs to know which device, an ``energy_options()`` method (a GPU's PCI bus id, an
ASIC board's power readers). CPU backends share one meter (one RAPL package counter, or
the estimate) and its energy is split between them by the CPU time each used; every
other backend gets a meter of its own. The engine and the benchmark both keep their
books here, so a figure means the same in ``hashcore mine`` and ``hashcore bench``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.backends.base import energy_kind, energy_options
from hashcore.telemetry import BackendEnergy, EnergyMeter, EnergyWindow, attribute, choose_meter, total


@dataclass(frozen=True, slots=True)
class MeterSettings:
    """Where to look for counters.

    Attributes:
        powercap_root: the RAPL powercap tree (default: ``$HASHCORE_POWERCAP_ROOT`` or sysfs).
        tdp_watts_per_core: watts per core for the estimate when nothing can be read.
    """

    powercap_root: str | None = None
    tdp_watts_per_core: float | None = None


class EnergyLedger:
    """Energy of several backends over one run, split per backend.

    Args:
        backends: one open backend (or scanner) per backend name, to ask what it runs on.
        settings: where to look for counters.
        cpu_meter: a meter to use for the CPU backends instead of probing (tests, library).
    """

    def __init__(
        self,
        backends: Mapping[str, object],
        settings: MeterSettings = MeterSettings(),
        cpu_meter: EnergyMeter | None = None,
    ) -> None:
        self._meters: list[EnergyMeter] = []
        self._owned: list[EnergyMeter] = []
        self._groups: list[tuple[EnergyWindow, list[str]]] = []
        self._cpu_us = dict.fromkeys(backends, 0)
        self._lock = threading.Lock()
        cpu_names = [name for name, b in backends.items() if energy_kind(b) == "cpu"]
        if cpu_names:
            meter = cpu_meter or self._open("cpu", settings, {})
            self._groups.append((EnergyWindow(meter), cpu_names))
        for name, backend in backends.items():
            kind = energy_kind(backend)
            if kind != "cpu":
                self._groups.append((EnergyWindow(self._open(kind, settings, energy_options(backend))), [name]))

    def _open(self, kind: str, settings: MeterSettings, options: dict[str, Any]) -> EnergyMeter:
        meter = choose_meter(
            kind, powercap_root=settings.powercap_root, tdp_watts_per_core=settings.tdp_watts_per_core, **options
        ).meter
        self._owned.append(meter)
        return meter

    def start(self) -> None:
        for window, _ in self._groups:
            window.start()

    def add_cpu_time(self, backend: str, microseconds: int) -> None:
        """CPU time a backend's worker used, for splitting a shared counter."""
        with self._lock:
            self._cpu_us[backend] += microseconds

    def report(self, hashes: Mapping[str, int]) -> tuple[dict[str, BackendEnergy], BackendEnergy]:
        """Energy per backend and in total since :meth:`start`, for these hash counts."""
        with self._lock:
            cpu_us = dict(self._cpu_us)
        per_backend: dict[str, BackendEnergy] = {}
        for window, names in self._groups:
            reading = window.read()
            for entry in attribute(reading, {n: hashes.get(n, 0) for n in names}, {n: cpu_us[n] for n in names}):
                per_backend[entry.backend] = entry
        return per_backend, total(list(per_backend.values()))

    def close(self) -> None:
        for meter in self._owned:
            meter.close()
