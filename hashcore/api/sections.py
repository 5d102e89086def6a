"""The report commands' sections: a :class:`~hashcore.control.MinerStats` snapshot as cgminer rows.

Pure functions from a snapshot (and the throttle, for ``Power Limit`` and the
``Throttle ...`` fields of ``stats``) to the rows of ``CONFIG``, ``SUMMARY``, ``POOLS``,
``DEVS``, ``DEVDETAILS``, ``STATS``, ``COIN`` and ``POWER``, in cgminer's field order.
Field names, units and the meaning of each are told in :mod:`hashcore.api.commands`.
"""

from __future__ import annotations

import platform
from typing import Any
from urllib.parse import urlsplit

from hashcore.control import BackendView, EnergyView, MinerStats, PoolView, ThrottleControl, budget_watts
from hashcore.telemetry import round_figure
from hashcore.work import nbits_to_target, target_to_difficulty

Row = dict[str, Any]

#: cgminer's device kinds; every backend not listed hashes on the CPU.
DEVICE_KINDS = {"opencl": "GPU", "asic": "ASC"}


# --- the miner -----------------------------------------------------------------------------


def config_row(stats: MinerStats, throttled: bool) -> Row:
    kinds = [DEVICE_KINDS.get(name, "CPU") for name in stats.backends]
    return {
        "ASC Count": kinds.count("ASC"),
        "GPU Count": kinds.count("GPU"),
        "PGA Count": 0,
        "CPU Count": kinds.count("CPU"),
        "Pool Count": len(stats.pools),
        "Strategy": "Failover",
        "Failover-Only": True,
        "Device Code": " ".join(stats.backends),
        "OS": platform.system(),
        "Hotplug": "None",
        "Throttle": "Y" if throttled else "N",
    }


def summary_row(stats: MinerStats, throttle: ThrottleControl | None) -> Row:
    minutes = stats.seconds / 60
    answered = stats.accepted + stats.rejected + stats.stale
    return {
        "Elapsed": int(stats.seconds),
        "MHS av": mhs(stats.hashrate_hs),
        "MHS 5s": mhs(stats.recent_hashrate_hs),
        # bmminer's names: fleet tools (pyasic's generic cgminer class) read the hashrate here.
        "GHS av": ghs(stats.hashrate_hs),
        "GHS 5s": ghs(stats.recent_hashrate_hs),
        "Found Blocks": stats.block_candidates,
        "Accepted": stats.accepted,
        "Rejected": stats.rejected,
        "Hardware Errors": sum(hardware_errors(b) for b in stats.backends.values()),
        "Utility": round(stats.accepted / minutes, 2) if minutes else 0.0,
        "Discarded": stats.discarded,
        "Stale": stats.stale,
        "Remote Failures": stats.unanswered,
        "Total MH": round(stats.hashes / 1e6, 6),
        "Difficulty Accepted": stats.difficulty_accepted,
        "Pool Rejected%": percent(stats.rejected, answered),
        "Pool Stale%": percent(stats.stale, answered),
        "Blocks Accepted": stats.blocks_accepted,
        "Duplicates": stats.duplicates,
        "Paused": stats.paused,
        **power_fields(stats, throttle),
    }


def power_row(stats: MinerStats, throttle: ThrottleControl | None) -> Row:
    return {**power_fields(stats, throttle), "Energy Note": stats.energy.note, "Paused": stats.paused}


def power_fields(stats: MinerStats, throttle: ThrottleControl | None) -> Row:
    """The miner's power and energy; ``Power Limit`` when a throttle runs."""
    energy = stats.energy
    fields: Row = {
        "Power": round_figure(energy.recent_watts, 3),
        **energy_fields(energy),
        "Energy Source": energy.source,
        "Energy Exact": energy.exact,
    }
    if throttle is not None:
        fields["Power Limit"] = round_figure(budget_watts(throttle), 3)
    return fields


def coin_row(stats: MinerStats) -> Row:
    row: Row = {
        "Hash Method": "sha256",
        "Current Block Time": 0,
        "Current Block Hash": "",
        "LP": False,
        "Network Difficulty": 0.0,
    }
    job = stats.current_job
    if job is not None:
        row["Current Block Time"] = job.ntime
        row["Current Block Hash"] = job.prev_hash[::-1].hex()
        row["Network Difficulty"] = target_to_difficulty(nbits_to_target(job.nbits))
    return row


def stats_rows(stats: MinerStats, throttle: ThrottleControl | None) -> list[Row]:
    """The miner's row (with the throttle's plain status fields), one per device, one per
    pool, numbered in ``STATS``."""
    elapsed = int(stats.seconds)
    miner_row: Row = {"ID": "HASHCORE", "Elapsed": elapsed, "Paused": stats.paused, **power_fields(stats, throttle)}
    miner_row["Energy Note"] = stats.energy.note
    if throttle is not None:
        for key, value in throttle.status().items():
            if value is None or isinstance(value, (str, int, float, bool)):
                miner_row[f"Throttle {key}"] = value
    rows: list[Row] = [miner_row]
    for (kind, index), (name, backend) in zip(device_ids(stats), stats.backends.items(), strict=True):
        energy = backend.energy or EnergyView()
        rows.append({
            "ID": f"{kind}{index}",
            "Elapsed": elapsed,
            "Backend": name,
            "Path": backend.path or "",
            "Threads": backend.threads,
            "Active Threads": backend.active_threads,
            "Duty": backend.duty,
            "Hashes": backend.hashes,
            "MHS av": mhs(backend.hashrate_hs),
            "MHS 5s": mhs(backend.recent_hashrate_hs),
            "False Positives": backend.false_positives,
            "Errors": backend.errors,
            **energy_fields(backend.energy),
            "Energy Source": energy.source,
            "Energy Exact": energy.exact,
            "Energy Note": energy.note,
        })
    for index, pool in enumerate(stats.pools):
        rows.append({
            "ID": f"POOL{index}",
            "Elapsed": elapsed,
            "Connects": pool.connects,
            "Unanswered": pool.unanswered,
            "Stratum Difficulty": pool.difficulty or 0.0,
            "Last Error": pool.last_error or "",
        })
    return [{"STATS": number, **row} for number, row in enumerate(rows)]


# --- pools ---------------------------------------------------------------------------------


def pool_rows(stats: MinerStats) -> list[Row]:
    return [pool_row(index, pool) for index, pool in enumerate(stats.pools)]


def pool_row(index: int, pool: PoolView) -> Row:
    answered = pool.accepted + pool.rejected + pool.stale
    last_share = pool.last_share_time
    return {
        "POOL": index,
        "URL": pool.url,
        "Status": pool_status(pool),
        "Priority": pool.priority,
        "Quota": 1,
        "Long Poll": "N",
        "Accepted": pool.accepted,
        "Rejected": pool.rejected,
        "Stale": pool.stale,
        "Remote Failures": pool.unanswered,
        "User": pool.user,
        "Last Share Time": int(last_share) if last_share else 0,
        "Difficulty Accepted": pool.difficulty_accepted,
        "Stratum Difficulty": pool.difficulty or 0.0,
        "Has Stratum": True,
        "Stratum Active": pool.connected,
        "Stratum URL": _host(pool.url) if pool.connected else "",
        "Has GBT": False,
        "Pool Rejected%": percent(pool.rejected, answered),
        "Pool Stale%": percent(pool.stale, answered),
        "Connects": pool.connects,
        "Last Error": pool.last_error or "",
    }


def pool_status(pool: PoolView) -> str:
    """cgminer's pool states from what the client knows (a pool never tried is Unknown)."""
    if not pool.enabled:
        return "Disabled"
    if pool.connected:
        return "Alive"
    if pool.last_error:
        return "Dead"
    return "Alive" if pool.connects else "Unknown"


def _host(url: str) -> str:
    try:
        return urlsplit(url if "://" in url else f"stratum+tcp://{url}").hostname or ""
    except ValueError:
        return ""


# --- devices -------------------------------------------------------------------------------


def device_rows(stats: MinerStats) -> list[Row]:
    """The ``DEVS`` rows: one per backend, numbered within its kind (``GPU 0``, ``CPU 0``...)."""
    rows = []
    for (kind, index), (name, backend) in zip(device_ids(stats), stats.backends.items(), strict=True):
        failed = backend.state.startswith("failed")
        enabled = not failed and not stats.paused and backend.duty > 0 and backend.active_threads > 0
        energy = backend.energy or EnergyView()
        rows.append({
            kind: index,
            "Name": name,
            "ID": 0,
            "Enabled": "Y" if enabled else "N",
            "Status": device_status(backend),
            "State": backend.state,
            "MHS av": mhs(backend.hashrate_hs),
            "MHS 5s": mhs(backend.recent_hashrate_hs),
            **_device_shares(backend),
            "Hardware Errors": hardware_errors(backend),
            "Total MH": round(backend.hashes / 1e6, 6),
            "Device Elapsed": int(stats.seconds),
            "Threads": backend.threads,
            "Active Threads": backend.active_threads,
            "Duty": backend.duty,
            **energy_fields(backend.energy),
            "Energy Source": energy.source,
            "Energy Exact": energy.exact,
        })
    return rows


def device_counts(stats: MinerStats) -> str:
    """``1 GPU(s) - 2 CPU(s)``: the devices by kind, in the order they first appear."""
    counts: dict[str, int] = {}
    for kind, _ in device_ids(stats):
        counts[kind] = counts.get(kind, 0) + 1
    return " - ".join(f"{n} {kind}(s)" for kind, n in counts.items())


def devdetails_rows(stats: MinerStats) -> list[Row]:
    return [
        {
            "DEVDETAILS": number,
            "Name": name,
            "ID": 0,
            "Driver": name,
            "Kernel": backend.path or "",
            "Model": f"{kind} {name}",
            "Device Path": "",
            "Threads": backend.threads,
            "Energy Source": (backend.energy or EnergyView()).source,
        }
        for number, ((kind, _), (name, backend)) in enumerate(
            zip(device_ids(stats), stats.backends.items(), strict=True)
        )
    ]


def device_ids(stats: MinerStats) -> list[tuple[str, int]]:
    """(kind, index within the kind) of each backend, in order."""
    seen: dict[str, int] = {}
    ids = []
    for name in stats.backends:
        kind = DEVICE_KINDS.get(name, "CPU")
        ids.append((kind, seen.get(kind, 0)))
        seen[kind] = seen.get(kind, 0) + 1
    return ids


def device_status(backend: BackendView) -> str:
    """Health, apart from ``Enabled`` (a paused device is healthy, just not hashing),
    from the engine's state of the backend."""
    if backend.state.startswith("failed"):
        return "Dead"
    return "Sick" if backend.state.startswith("retrying") else "Alive"


def _device_shares(backend: BackendView) -> Row:
    answered = backend.accepted + backend.rejected + backend.stale
    last_share = backend.last_share_time
    return {
        "Accepted": backend.accepted,
        "Rejected": backend.rejected,
        "Difficulty Accepted": backend.difficulty_accepted,
        "Last Share Time": int(last_share) if last_share else 0,
        "Device Rejected%": percent(backend.rejected, answered),
    }


def hardware_errors(backend: BackendView) -> int:
    """Results that failed the exact check, and scans that failed (cgminer's HW errors)."""
    return backend.false_positives + backend.errors


# --- figures -------------------------------------------------------------------------------


def energy_fields(energy: EnergyView | None) -> Row:
    """Average power, energy and J/TH; null where no meter reported."""
    if energy is None:
        return {"Power av": None, "Energy": None, "J/TH": None}
    return {
        "Power av": round_figure(energy.watts, 3),
        "Energy": round_figure(energy.joules, 3),
        "J/TH": round_figure(energy.j_per_th, 3),
    }


def mhs(hashes_per_second: float) -> float:
    return round(hashes_per_second / 1e6, 6)


def ghs(hashes_per_second: float) -> float:
    return round(hashes_per_second / 1e9, 9)


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0
