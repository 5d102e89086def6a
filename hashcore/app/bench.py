"""``hashcore bench``: one backend or every available one, benchmarked in turn.

The measuring is :mod:`hashcore.bench`'s (the library's ``hashcore.bench``); this runner
picks the backends, runs one thread then one per core (or the threads asked for), and
gathers the reports, the table's rows and the summary lines the command prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashcore.backends import base as registry
from hashcore.bench import bench, bench_cores
from hashcore.metering import MeterSettings


@dataclass(slots=True)
class BenchRun:
    """What a run of benchmarks measured.

    Attributes:
        reports: one JSON report per backend (``bench --json``'s shape).
        rows: the table's rows (one thread, then all cores, per backend).
        lines: a summary line per backend measured at both thread counts.
    """

    reports: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def benchable_backends(asic_port: str | None) -> list[str]:
    """The backends ``--all`` runs: every available one, the ASIC backend only with a
    port (it needs a device, or ``--asic-port emulator``)."""
    return [i.name for i in registry.probe_all() if i.available and (i.name != "asic" or bool(asic_port))]


def run_benches(
    names: list[str],
    seconds: float,
    threads: int | None,
    backend_options: Mapping[str, dict[str, Any]],
    meter_settings: MeterSettings,
    announce: Callable[[str], None],
) -> BenchRun:
    """Benchmark each of ``names`` for ``seconds`` (``announce`` is told what starts)."""
    run = BenchRun()
    for name in names:
        options = backend_options.get(name, {})
        if threads is not None:
            announce(f"benchmarking {name} with {threads} thread(s) for {seconds:g} s...")
            report = bench(name, seconds, threads, options=options, meter_settings=meter_settings).to_json()
            run.reports.append(report)
            run.rows.append(report)
            continue
        announce(f"benchmarking {name} for {seconds:g} s on one thread, then {seconds:g} s "
                 "on one thread per core...")
        cores = bench_cores(name, seconds, options=options, meter_settings=meter_settings)
        run.reports.append(cores.to_json())
        run.rows += [cores.one_thread.to_json()] + ([cores.all_cores.to_json()] if cores.all_cores else [])
        run.lines.append(cores.summary())
    return run
