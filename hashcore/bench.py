"""Backend benchmarks, shared by ``hashcore bench`` and the suites in ``bench/``.

Every figure is measured in the same run as its baselines: the reference backend's
rate (one thread) and hashlib's SHA-256 compression rate over a large buffer (one
core), so a report reads as ratios that survive a noisy machine. Energy comes from the
meter given (RAPL, NVML, ASIC board, or an estimate labelled as such).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from hashcore.backends.base import backend_path, driven_devices, energy_kind
from hashcore.metering import EnergyLedger, MeterSettings
from hashcore.telemetry.base import EnergyMeter
from hashcore.work import DIFF1_TARGET, NONCE_SPACE, Work
from hashcore.workers import MAX_RESULTS, ChunkSizer, Scanner, default_threads, open_scanners

#: The fixed work unit: mainnet block 99960's header (nonce excluded), reported at
#: difficulty 1 so that results are as rare as real shares.
BENCH_HEADER76 = bytes.fromhex(
    "01000000e78b20013e6e9a21b6366ead5d866b2f9dc00664508b90f24da8000000000000"
    "f94b61259c7e9af3455b277275800d0d6a58b929eedf9e0153a6ef2278a5d53408d11a4d4c86041b"
)
BENCH_WORK = Work.from_header(BENCH_HEADER76, DIFF1_TARGET)


@dataclass(frozen=True, slots=True)
class BenchReport:
    """One backend's benchmark, with its baselines and energy.

    Attributes:
        backend / threads / path: what ran (``path``: the C code path, when there is one).
        seconds / hashes / hashrate_hs / per_thread_hs: what it did.
        baseline_hashrate_hs: the reference backend, one thread, in the same run.
        hashlib_compressions_s: hashlib SHA-256 compressions per second on one core.
        ratio_per_thread: ``per_thread_hs / hashlib_compressions_s``.
        joules / watts / j_per_hash / j_per_th / energy_source / energy_exact: energy over
            the measured interval (``energy_exact`` False: an estimate or no meter).
        energy_note: what the energy figure is, or why it is an estimate.
        scope: what the figure ran on, in words ("1 thread", "2 threads, all cores",
            "1 scanner on 2 cores (PoCL), all cores", "1 GPU").
        cores: CPU cores behind the figure (threads, or PoCL's compute units; 0 for GPUs).
        per_core_hs: ``hashrate_hs / cores`` (None for GPUs).
    """

    backend: str
    threads: int
    path: str | None
    seconds: float
    hashes: int
    hashrate_hs: float
    per_thread_hs: float
    baseline_hashrate_hs: float | None
    hashlib_compressions_s: float
    ratio_per_thread: float
    joules: float
    watts: float
    j_per_hash: float | None
    j_per_th: float | None
    energy_source: str
    energy_exact: bool
    energy_note: str
    scope: str = ""
    cores: int = 0
    per_core_hs: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def hashlib_compressions_per_second(seconds: float = 0.5) -> float:
    """SHA-256 compressions per second of hashlib (OpenSSL) on one core, big buffer."""
    buffer = bytes(1 << 22)
    blocks = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        hashlib.sha256(buffer).digest()
        blocks += len(buffer) // 64
    return blocks / elapsed


def measure(scanners: list[Scanner], seconds: float, work: Work = BENCH_WORK) -> tuple[int, float]:
    """Scan with every scanner in its own thread for ``seconds``; (hashes, elapsed)."""
    span = NONCE_SPACE // len(scanners)
    totals = [0] * len(scanners)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(scanners) + 1)
    deadline = 0.0

    def run(index: int, scanner: Scanner) -> None:
        sizer = ChunkSizer(0.1)
        start, end = index * span, (index + 1) * span
        nonce = start
        barrier.wait()
        try:
            while time.perf_counter() < deadline:
                count = min(sizer.count, end - nonce)
                if count <= 0:
                    nonce, count = start, min(sizer.count, span)
                began = time.perf_counter()
                result = scanner.scan(work, nonce, count, MAX_RESULTS)
                sizer.update(result.hashes_done, time.perf_counter() - began)
                totals[index] += result.hashes_done
                nonce += result.hashes_done
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s), daemon=True) for i, s in enumerate(scanners)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(totals), elapsed


def _warm_up(scanners: list[Scanner]) -> None:
    """One small scan each, so a first call's compile or load time is not measured."""
    for scanner in scanners:
        scanner.scan(BENCH_WORK, 0, 1024, MAX_RESULTS)


def bench(
    backend: str = "c",
    seconds: float = 5.0,
    threads: int = 1,
    *,
    options: dict[str, Any] | None = None,
    baseline: bool = True,
    meter: EnergyMeter | None = None,
    meter_settings: MeterSettings | None = None,
) -> BenchReport:
    """Benchmark one backend on the fixed work unit; see :class:`BenchReport`.

    ``meter`` measures a CPU backend instead of the probed one (RAPL, else the estimate).
    """
    scanners = open_scanners(backend, threads, options)  # BackendUnavailable before any timing
    try:
        compressions = hashlib_compressions_per_second()
        baseline_rate = None
        if baseline:
            reference = open_scanners("reference", 1)
            try:
                hashes, elapsed = measure(reference, min(1.0, max(seconds / 4, 0.3)))
                baseline_rate = hashes / elapsed
            finally:
                reference[0].close()
        _warm_up(scanners)
        ledger = EnergyLedger({backend: scanners[0]}, meter_settings or MeterSettings(), meter)
        try:
            ledger.start()
            hashes, elapsed = measure(scanners, seconds)
            energy = ledger.report({backend: hashes})[0][backend]
        finally:
            ledger.close()
        path = backend_path(scanners[0])
        scope, cores = _scope(scanners[0], threads)
    finally:
        for scanner in scanners:
            scanner.close()
    rate = hashes / elapsed
    return BenchReport(
        backend=backend,
        threads=threads,
        path=path,
        seconds=elapsed,
        hashes=hashes,
        hashrate_hs=rate,
        per_thread_hs=rate / threads,
        baseline_hashrate_hs=baseline_rate,
        hashlib_compressions_s=compressions,
        ratio_per_thread=rate / threads / compressions,
        joules=energy.joules,
        watts=energy.watts,
        j_per_hash=energy.j_per_hash,
        j_per_th=energy.j_per_th,
        energy_source=energy.source,
        energy_exact=energy.exact,
        energy_note=energy.note,
        scope=scope,
        cores=cores,
        per_core_hs=rate / cores if cores else None,
    )


def _scope(scanner: Scanner, threads: int) -> tuple[str, int]:
    """What a figure ran on, in words, and the CPU cores behind it."""
    total = os.cpu_count() or 1
    devices = driven_devices(scanner)  # an OpenCL backend drives its own devices
    if devices is not None and energy_kind(scanner) == "gpu":
        return f"{len(devices)} GPU(s)", 0
    if devices is not None:
        cores = sum(ref.compute_units for ref in devices)
        return f"1 scanner on {cores} cores (OpenCL), {'all cores' if cores >= total else 'some cores'}", cores
    label = f"{threads} thread" + ("s" if threads > 1 else "")
    return (f"{label}, all {total} cores" if threads >= total else label), threads


@dataclass(frozen=True, slots=True)
class CoresReport:
    """One thread and every core, side by side (what ``hashcore bench`` runs by default).

    Attributes:
        one_thread: the backend on one thread (per-thread speed, comparable between
            machines); for backends that drive every core from one scanner (OpenCL)
            this is already the all-cores figure.
        all_cores: one thread per core, as ``hashcore mine`` runs it; None where
            ``one_thread`` already covers every core (OpenCL, a one-core machine).
    """

    one_thread: BenchReport
    all_cores: BenchReport | None

    @property
    def scaling(self) -> float | None:
        """All cores over one thread (the core count where scaling is perfect)."""
        if self.all_cores is None:
            return None
        return self.all_cores.hashrate_hs / self.one_thread.hashrate_hs

    def summary(self) -> str:
        """``c avx512: 24.1 MH/s per thread | 47.3 MH/s on 2 threads, all 2 cores (1.96x one thread)``."""
        one, every = self.one_thread, self.all_cores
        name = f"{one.backend} {one.path}" if one.path else one.backend
        if every is None:
            per_core = f" ({one.per_core_hs / 1e6:.2f} MH/s per core)" if one.per_core_hs and one.cores > 1 else ""
            return f"{name}: {one.hashrate_hs / 1e6:.2f} MH/s on {one.scope}{per_core}"
        return (f"{name}: {one.per_thread_hs / 1e6:.2f} MH/s per thread | {every.hashrate_hs / 1e6:.2f} MH/s on "
                f"{every.scope} ({self.scaling or 0:.2f}x one thread)")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The one-thread report's fields, with ``all_cores`` (a report) and ``scaling``."""
        return {
            **self.one_thread.to_json(),
            "all_cores": self.all_cores.to_json() if self.all_cores else None,
            "scaling": self.scaling,
        }


def bench_cores(
    backend: str = "c",
    seconds: float = 5.0,
    *,
    options: dict[str, Any] | None = None,
    baseline: bool = True,
    meter: EnergyMeter | None = None,
    meter_settings: MeterSettings | None = None,
) -> CoresReport:
    """Benchmark ``backend`` on one thread, then on one thread per core (``mine``'s default),
    ``seconds`` each; see :class:`CoresReport`."""
    one = bench(backend, seconds, 1, options=options, baseline=baseline, meter=meter, meter_settings=meter_settings)
    threads = default_threads(backend)
    if threads <= 1:
        return CoresReport(one, None)
    every = bench(backend, seconds, threads, options=options, baseline=False, meter=meter,
                  meter_settings=meter_settings)  # fmt: skip
    # The reference ran once, before the first figure: the baseline of both.
    return CoresReport(one, replace(every, baseline_hashrate_hs=one.baseline_hashrate_hs))
