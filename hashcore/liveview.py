"""Renderables for the live view and the bench table (rich). Builds; never prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from hashcore.control import EnergyView, MinerStats


def format_rate(hashes_per_second: float | None) -> str:
    """A hashrate with its unit (H/s, kH/s, MH/s, GH/s, TH/s)."""
    if hashes_per_second is None:
        return "-"
    value = float(hashes_per_second)
    for unit in ("H/s", "kH/s", "MH/s", "GH/s", "TH/s"):
        if abs(value) < 1000 or unit == "TH/s":
            return f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_energy(energy: EnergyView | Mapping[str, Any] | None, recent: bool = False) -> str:
    """Power and J/TH with their source; an estimate always says so. ``energy`` is a
    snapshot's view or a bench report's fields; ``recent`` shows the last seconds' power
    where the view has it, else the average."""
    if energy is None:
        return "power: not measured"
    if not isinstance(energy, EnergyView):
        energy = EnergyView(watts=energy.get("watts", 0.0), j_per_th=energy.get("j_per_th"),
                            source=energy.get("energy_source", "none"), exact=bool(energy.get("energy_exact")))
    source = energy.source
    if source == "none":
        return "power: not measured"
    label = source if energy.exact else f"{source}, estimate" if source != "estimate" else "estimate"
    efficiency = f"{energy.j_per_th:,.0f} J/TH" if energy.j_per_th is not None else "- J/TH"
    watts = energy.recent_watts if recent and energy.recent_watts is not None else energy.watts
    return f"{watts:.1f} W  {efficiency}  ({label})"


def miner_table(stats: MinerStats, difficulty: float | None = None) -> Table:
    """The live view: hashrate per backend, shares, pool, difficulty, power and J/TH."""
    pool = stats.active_pool or "connecting..."
    title = f"hashcore  {format_rate(stats.recent_hashrate_hs)}  (avg {format_rate(stats.hashrate_hs)})"
    caption = f"pool {pool}   total {format_energy(stats.energy, recent=True)}"
    table = Table(title=title, caption=caption, expand=False)
    table.add_column("backend")
    table.add_column("threads", justify="right")
    table.add_column("5s", justify="right")
    table.add_column("average", justify="right")
    table.add_column("hashes", justify="right")
    table.add_column("power", justify="left")
    table.add_column("state", justify="left")
    for name, backend in stats.backends.items():
        label = f"{name} ({backend.path})" if backend.path else name
        table.add_row(
            label,
            str(backend.threads),
            format_rate(backend.recent_hashrate_hs),
            format_rate(backend.hashrate_hs),
            f"{backend.hashes:,}",
            format_energy(backend.energy),
            format_state(backend.state),
        )
    table.add_section()
    shares = Text.assemble(
        ("accepted ", "bold"),
        (str(stats.accepted), "green"),
        ("  rejected ", "bold"),
        (str(stats.rejected), "red" if stats.rejected else ""),
        ("  stale ", "bold"),
        (str(stats.stale), "yellow" if stats.stale else ""),
        ("  blocks ", "bold"),
        f"{stats.block_candidates}/{stats.blocks_accepted}",
    )
    active = stats.pool_at(stats.active_pool)
    diff = active.difficulty if active and active.difficulty is not None else difficulty
    diff_text = f"diff {diff:.4g}" if diff is not None else "diff -"
    table.add_row(shares, "", "", diff_text, f"{stats.seconds:.0f} s", "", "")
    return table


#: Backend states that need no attention.
_QUIET_STATES = ("mining", "running")


def format_state(state: str | None) -> Text:
    """A backend's state ("mining", "port gone: /dev/ttyUSB0", ...): plain when all is
    well, yellow while it retries or reopens, "-" when the backend reports none."""
    if not state:
        return Text("-")
    return Text(state, style="" if state in _QUIET_STATES else "yellow")


def miner_line(stats: MinerStats) -> str:
    """One plain line for logs and non-terminal output; a backend that is not simply
    mining says its state."""
    states = "".join(
        f"  [{name}: {backend.state}]"
        for name, backend in stats.backends.items()
        if backend.state and backend.state not in _QUIET_STATES
    )
    return (
        f"{format_rate(stats.recent_hashrate_hs)} (avg {format_rate(stats.hashrate_hs)})  "
        f"A:{stats.accepted} R:{stats.rejected} S:{stats.stale} "
        f"blocks:{stats.block_candidates}/{stats.blocks_accepted}  {format_energy(stats.energy, recent=True)}  "
        f"pool {stats.active_pool or '-'}{states}"
    )


def bench_table(reports: list[dict[str, Any]]) -> Table:
    """One row per benchmarked backend."""
    table = Table(title="hashcore bench")
    for column in ("backend", "path", "threads", "hashrate", "per thread", "vs hashlib", "vs reference", "power"):
        table.add_column(column, justify="left" if column in ("backend", "path", "power") else "right")
    for report in reports:
        baseline = report.get("baseline_hashrate_hs")
        table.add_row(
            report["backend"],
            report.get("path") or "-",
            str(report["threads"]),
            format_rate(report["hashrate_hs"]),
            format_rate(report["per_thread_hs"]),
            f"{report['ratio_per_thread']:.3f}",
            f"{report['hashrate_hs'] / baseline:.1f}x" if baseline else "-",
            format_energy(report),
        )
    return table
