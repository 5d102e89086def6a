"""Energy telemetry: RAPL, NVML, ASIC-reported power, or a labelled estimate.

The bench and the engine need three things from here::

    choice = choose_meter("cpu", powercap_root=args.powercap_root)   # or open_meter(...)
    with EnergyWindow(choice.meter) as window:
        hashes = run()
    entries = attribute(window.reading, {"c": hashes})   # J/H and J/TH per backend
    choice.meter.close()

``hashcore telemetry`` calls :func:`telemetry_report`.
"""

from hashcore.telemetry.asic import AsicMeter
from hashcore.telemetry.attribution import (
    BackendEnergy,
    EnergyReading,
    EnergyWindow,
    attribute,
    j_per_hash,
    j_per_th,
    round_figure,
    total,
)
from hashcore.telemetry.base import (
    CounterUnsupported,
    DetailedMeter,
    EnergyMeter,
    EnergySample,
    NullMeter,
    note_of,
)
from hashcore.telemetry.cputime import process_tree_cpu_us, threads_cpu_us
from hashcore.telemetry.estimate import EstimateMeter, lookup_tdp
from hashcore.telemetry.nvml import GpuInfo, NvmlMeter, list_gpus, pci_bus_id
from hashcore.telemetry.probe import (
    KINDS,
    LiveSeries,
    MeterChoice,
    PowerPoint,
    SourceInfo,
    TelemetryReport,
    choose_meter,
    open_meter,
    probe_sources,
    sample_power,
    telemetry_report,
)
from hashcore.telemetry.rapl import ROOT_ENV, RaplDomain, RaplMeter, find_domains, powercap_root

__all__ = [
    "KINDS",
    "ROOT_ENV",
    "AsicMeter",
    "BackendEnergy",
    "CounterUnsupported",
    "DetailedMeter",
    "EnergyMeter",
    "EnergyReading",
    "EnergySample",
    "EnergyWindow",
    "EstimateMeter",
    "GpuInfo",
    "LiveSeries",
    "MeterChoice",
    "NullMeter",
    "NvmlMeter",
    "PowerPoint",
    "RaplDomain",
    "RaplMeter",
    "SourceInfo",
    "TelemetryReport",
    "attribute",
    "choose_meter",
    "find_domains",
    "j_per_hash",
    "j_per_th",
    "list_gpus",
    "lookup_tdp",
    "note_of",
    "open_meter",
    "pci_bus_id",
    "powercap_root",
    "probe_sources",
    "process_tree_cpu_us",
    "round_figure",
    "sample_power",
    "telemetry_report",
    "threads_cpu_us",
    "total",
]
