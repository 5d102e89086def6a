"""The API's commands: a request's bytes in, the reply's bytes out, no I/O.

Report commands (anyone the allow list serves): ``version``, ``config``, ``summary``,
``pools``, ``devs``, ``stats``, ``devdetails``, ``coin``, ``power``, ``check|CMD``.
Write commands (``W:`` clients only): ``switchpool|N``, ``enablepool|N``,
``disablepool|N``, ``addpool|URL,USER,PASS`` (at most :data:`MAX_POOLS` pools in all;
USER and PASS are that pool's worker unless the URL carries its own), ``pause``,
``resume``, ``powertarget|WATTS`` (``powertarget|off`` clears it), ``privileged``, ``quit``.

Field names and units follow cgminer 4.x (``MHS av`` in MH/s, ``Elapsed`` in seconds,
``Last Share Time`` in epoch seconds, percentages in percent). Backends are devices:
``opencl`` is a ``GPU``, ``asic`` an ``ASC``, the others ``CPU``. hashcore adds, where
modern firmware reports power: ``Power`` (W over the last 5 s), ``Power av`` (W since
start), ``Energy`` (J since start), ``J/TH``, ``Energy Source`` (``rapl``, ``nvml``,
``asic``, ``estimate``), ``Energy Exact`` (false for an estimate) and, with a throttle,
``Power Limit`` (the budget in W). A figure that does not exist yet (J/TH before the
first hash) is null in JSON and empty in text. Pool passwords never appear; a password
written into a pool URL is removed. A device's ``Status`` follows the engine's state of
its backend (``Alive`` mining or idle, ``Sick`` retrying, ``Dead`` failed), told in full
in ``State``.
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hashcore._version import __version__
from hashcore.api.access import Access
from hashcore.api.control import MAX_POOLS
from hashcore.api.protocol import (
    API_VERSION,
    Code,
    Command,
    Reply,
    RequestError,
    Section,
    Severity,
    parse_request,
    render,
    render_error,
    split_parameter,
    status,
)
from hashcore.config import with_credentials
from hashcore.control import (
    BackendView,
    EnergyView,
    MinerControl,
    MinerStats,
    PoolView,
    ThrottleControl,
    budget_watts,
    power_target,
    redact_url,
)
from hashcore.errors import ConfigError
from hashcore.stratum.client import split_pool_url
from hashcore.work import nbits_to_target, target_to_difficulty

log = logging.getLogger("hashcore.api")

DESCRIPTION = f"hashcore {__version__}"

#: cgminer's device kinds; every backend not listed hashes on the CPU.
DEVICE_KINDS = {"opencl": "GPU", "asic": "ASC"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The reply to send, and whether the client asked the miner to quit."""

    data: bytes
    quit: bool = False


@dataclass(slots=True)
class _Context:
    miner: MinerControl
    access: Access
    _stats: MinerStats | None = field(default=None)

    @property
    def stats(self) -> MinerStats:
        # One snapshot per request, so joined commands agree with each other.
        if self._stats is None:
            self._stats = self.miner.stats()
        return self._stats

    def changed(self) -> None:
        self._stats = None


Handler = Callable[["Dispatcher", _Context, str], Reply]


@dataclass(frozen=True, slots=True)
class _Spec:
    handler: Handler
    write: bool


class Dispatcher:
    """Answers API requests for one miner.

    Args:
        miner: the miner to report on and control.
        throttle: the power-budget follower for ``powertarget`` and ``Power Limit``.
        can_quit: whether ``quit`` is honoured (the server calls its callback).
    """

    def __init__(self, miner: MinerControl, throttle: ThrottleControl | None = None, can_quit: bool = False) -> None:
        self.miner = miner
        self.throttle = throttle
        self.can_quit = can_quit

    def handle(self, data: bytes, access: Access) -> Outcome:
        try:
            request = parse_request(data)
        except RequestError as error:
            return Outcome(render_error(error, DESCRIPTION))
        context = _Context(self.miner, access)
        replies: dict[str, Reply] = {}
        quit_requested = False
        for command in request.commands:
            reply = self._run(context, command, request.joined)
            replies[command.name] = reply
            quit_requested = quit_requested or reply.status.code == Code.BYE
        return Outcome(render(request.json, replies, request.joined), quit_requested)

    def _run(self, context: _Context, command: Command, joined: bool) -> Reply:
        spec = COMMANDS.get(command.name)
        if spec is None:
            return _error(Code.INVALID_COMMAND, "Invalid command")
        # cgminer joins report commands only.
        if spec.write and (joined or not context.access.write):
            log.info("API: access denied to %r", command.name)
            return _error(Code.ACCESS_DENIED, f"Access denied to '{command.name}' command")
        try:
            return spec.handler(self, context, command.parameter)
        except Exception as exc:
            log.exception("API command %r failed", command.name)
            return _reply(Severity.FATAL, Code.FAILED, f"{command.name} failed: {exc}")
        finally:
            if spec.write:
                context.changed()

    # --- report commands -----------------------------------------------------------------

    def version(self, context: _Context, parameter: str) -> Reply:
        row = {"hashcore": __version__, "API": API_VERSION, "Miner": DESCRIPTION, "Type": "hashcore"}
        return _reply(Severity.SUCCESS, Code.VERSION, "hashcore versions", Section("VERSION", [row]))

    def config(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        kinds = [DEVICE_KINDS.get(name, "CPU") for name in stats.backends]
        row = {
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
            "Throttle": "Y" if self.throttle is not None else "N",
        }
        return _reply(Severity.SUCCESS, Code.CONFIG, "hashcore config", Section("CONFIG", [row]))

    def summary(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        minutes = stats.seconds / 60
        answered = stats.accepted + stats.rejected + stats.stale
        row: dict[str, Any] = {
            "Elapsed": int(stats.seconds),
            "MHS av": _mhs(stats.hashrate_hs),
            "MHS 5s": _mhs(stats.recent_hashrate_hs),
            "Found Blocks": stats.block_candidates,
            "Accepted": stats.accepted,
            "Rejected": stats.rejected,
            "Hardware Errors": sum(_hardware_errors(b) for b in stats.backends.values()),
            "Utility": round(stats.accepted / minutes, 2) if minutes else 0.0,
            "Discarded": stats.discarded,
            "Stale": stats.stale,
            "Remote Failures": stats.unanswered,
            "Total MH": round(stats.hashes / 1e6, 6),
            "Difficulty Accepted": stats.difficulty_accepted,
            "Pool Rejected%": _percent(stats.rejected, answered),
            "Pool Stale%": _percent(stats.stale, answered),
            "Blocks Accepted": stats.blocks_accepted,
            "Duplicates": stats.duplicates,
            "Paused": stats.paused,
            **self._power(stats),
        }
        return _reply(Severity.SUCCESS, Code.SUMMARY, "Summary", Section("SUMMARY", [row]))

    def pools(self, context: _Context, parameter: str) -> Reply:
        rows = [_pool_row(index, pool) for index, pool in enumerate(context.stats.pools)]
        return _reply(Severity.SUCCESS, Code.POOL, f"{len(rows)} Pool(s)", Section("POOLS", rows, keyed=True))

    def devs(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        if not stats.backends:
            return _error(Code.NODEVS, "No devices")
        rows = []
        for (kind, index), (name, backend) in zip(_device_ids(stats), stats.backends.items(), strict=True):
            failed = backend.state.startswith("failed")
            enabled = not failed and not stats.paused and backend.duty > 0 and backend.active_threads > 0
            energy = backend.energy or EnergyView()
            rows.append({
                kind: index,
                "Name": name,
                "ID": 0,
                "Enabled": "Y" if enabled else "N",
                "Status": _device_status(backend),
                "State": backend.state,
                "MHS av": _mhs(backend.hashrate_hs),
                "MHS 5s": _mhs(backend.recent_hashrate_hs),
                **_device_shares(backend),
                "Hardware Errors": _hardware_errors(backend),
                "Total MH": round(backend.hashes / 1e6, 6),
                "Device Elapsed": int(stats.seconds),
                "Threads": backend.threads,
                "Active Threads": backend.active_threads,
                "Duty": backend.duty,
                **_device_energy(backend.energy),
                "Energy Source": energy.source,
                "Energy Exact": energy.exact,
            })
        counts: dict[str, int] = {}
        for kind, _ in _device_ids(stats):
            counts[kind] = counts.get(kind, 0) + 1
        message = " - ".join(f"{n} {kind}(s)" for kind, n in counts.items())
        return _reply(Severity.SUCCESS, Code.DEVS, message, Section("DEVS", rows, keyed=True))

    def devdetails(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        rows = [
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
                zip(_device_ids(stats), stats.backends.items(), strict=True)
            )
        ]
        return _reply(Severity.SUCCESS, Code.DEVDETAILS, "Device Details", Section("DEVDETAILS", rows, keyed=True))

    def stats(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        elapsed = int(stats.seconds)
        miner_row: dict[str, Any] = {"ID": "HASHCORE", "Elapsed": elapsed, "Paused": stats.paused, **self._power(stats)}
        miner_row["Energy Note"] = stats.energy.note
        if self.throttle is not None:
            for key, value in self.throttle.status().items():
                if value is None or isinstance(value, (str, int, float, bool)):
                    miner_row[f"Throttle {key}"] = value
        rows: list[dict[str, Any]] = [miner_row]
        for (kind, index), (name, backend) in zip(_device_ids(stats), stats.backends.items(), strict=True):
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
                "MHS av": _mhs(backend.hashrate_hs),
                "MHS 5s": _mhs(backend.recent_hashrate_hs),
                "False Positives": backend.false_positives,
                "Errors": backend.errors,
                **_device_energy(backend.energy),
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
        numbered = [{"STATS": number, **row} for number, row in enumerate(rows)]
        return _reply(Severity.SUCCESS, Code.STATS, "hashcore stats", Section("STATS", numbered, keyed=True))

    def coin(self, context: _Context, parameter: str) -> Reply:
        row: dict[str, Any] = {
            "Hash Method": "sha256",
            "Current Block Time": 0,
            "Current Block Hash": "",
            "LP": False,
            "Network Difficulty": 0.0,
        }
        job = context.stats.current_job
        if job is not None:
            row["Current Block Time"] = job.ntime
            row["Current Block Hash"] = job.prev_hash[::-1].hex()
            row["Network Difficulty"] = target_to_difficulty(nbits_to_target(job.nbits))
        return _reply(Severity.SUCCESS, Code.COIN, "hashcore coin", Section("COIN", [row]))

    def power(self, context: _Context, parameter: str) -> Reply:
        stats = context.stats
        row = {**self._power(stats), "Energy Note": stats.energy.note, "Paused": stats.paused}
        return _reply(Severity.SUCCESS, Code.POWER, "Power", Section("POWER", [row]))

    def check(self, context: _Context, parameter: str) -> Reply:
        name = parameter.strip().lower()
        if not name:
            return _error(Code.MISSING_CHECK, "Missing check cmd")
        spec = COMMANDS.get(name)
        access = spec is not None and (not spec.write or context.access.write)
        row = {"Exists": "Y" if spec is not None else "N", "Access": "Y" if access else "N"}
        return _reply(Severity.SUCCESS, Code.CHECK, "Check command", Section("CHECK", [row]))

    def _power(self, stats: MinerStats) -> dict[str, Any]:
        energy = stats.energy
        fields: dict[str, Any] = {
            "Power": _round(energy.recent_watts, 3),
            **_device_energy(energy),
            "Energy Source": energy.source,
            "Energy Exact": energy.exact,
        }
        if self.throttle is not None:
            fields["Power Limit"] = _round(budget_watts(self.throttle), 3)
        return fields

    # --- write commands ------------------------------------------------------------------

    def switchpool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        context.miner.switch_pool(index)
        return _reply(Severity.SUCCESS, Code.SWITCHED_POOL, f"Switching to pool {index}:'{_pool_url(context, index)}'")

    def enablepool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        url = _pool_url(context, index)
        if context.stats.pools[index].enabled:
            return _reply(Severity.INFO, Code.ALREADY_ENABLED_POOL, f"Pool {index}:'{url}' already enabled")
        context.miner.enable_pool(index)
        return _reply(Severity.SUCCESS, Code.ENABLED_POOL, f"Enabling pool {index}:'{url}'")

    def disablepool(self, context: _Context, parameter: str) -> Reply:
        index = _pool_index(context, parameter)
        if isinstance(index, Reply):
            return index
        url = _pool_url(context, index)
        if not context.stats.pools[index].enabled:
            return _reply(Severity.INFO, Code.ALREADY_DISABLED_POOL, f"Pool {index}:'{url}' already disabled")
        try:
            context.miner.disable_pool(index)
        except ConfigError:
            return _error(Code.LAST_POOL, f"Cannot disable last active pool {index}:'{url}'")
        return _reply(Severity.SUCCESS, Code.DISABLED_POOL, f"Disabling pool {index}:'{url}'")

    def addpool(self, context: _Context, parameter: str) -> Reply:
        if not parameter.strip():
            return _error(Code.MISSING_POOL_DETAILS, "Missing addpool details")
        fields = split_parameter(parameter)
        url = fields[0].strip()
        given_user = fields[1].strip() if len(fields) > 1 else ""
        given_password = fields[2] if len(fields) > 2 else None
        if not url:
            return _error(Code.MISSING_POOL_DETAILS, "Missing addpool details")
        # Every message names the URL without its password: the request's password is never echoed.
        shown = redact_url(url)
        if len(context.stats.pools) >= MAX_POOLS:
            return _error(Code.TOO_MANY_POOLS, f"Cannot add pool '{shown}': at most {MAX_POOLS} pools")
        url_user = split_pool_url(url)[1]
        connect = with_credentials(url, given_user, given_password) if given_user and not url_user else url
        try:
            index = context.miner.add_pool(connect)
        except ConfigError as exc:
            return _error(Code.INVALID_POOL_DETAILS, f"Invalid addpool details '{shown}': {exc}")
        context.changed()
        user = context.stats.pools[index].user
        if given_user and given_user != user:
            return _reply(
                Severity.WARNING,
                Code.ADDED_POOL_OTHER_USER,
                f"Added pool {index}:'{shown}'; it mines as '{user}', the user in its URL ('{given_user}' and "
                "the password given were not used)",
            )
        return _reply(Severity.SUCCESS, Code.ADDED_POOL, f"Added pool {index}:'{shown}' as '{user}'")

    def pause(self, context: _Context, parameter: str) -> Reply:
        context.miner.pause()
        return _reply(Severity.SUCCESS, Code.PAUSED, "Mining paused; the pool connection stays up")

    def resume(self, context: _Context, parameter: str) -> Reply:
        context.miner.resume()
        return _reply(Severity.SUCCESS, Code.RESUMED, "Mining resumed")

    def powertarget(self, context: _Context, parameter: str) -> Reply:
        if self.throttle is None:
            return _error(Code.NO_THROTTLE, "No throttle is running: start the miner with a power policy")
        text = parameter.strip().lower()
        if text in ("", "off", "none", "auto"):
            self.throttle.set_target(None)
            return _reply(Severity.SUCCESS, Code.POWER_TARGET, "Power target cleared")
        try:
            watts = power_target(float(text))
        except (ValueError, ConfigError):
            return _error(Code.INVALID_POWER_TARGET, f"Invalid power target '{parameter[:40]}' (watts > 0, or 'off')")
        self.throttle.set_target(watts)
        return _reply(Severity.SUCCESS, Code.POWER_TARGET, f"Power target set to {watts:g} W")

    def privileged(self, context: _Context, parameter: str) -> Reply:
        return _reply(Severity.SUCCESS, Code.ACCESS_OK, "Privileged access OK")

    def quit(self, context: _Context, parameter: str) -> Reply:
        if not self.can_quit:
            return _error(Code.NO_QUIT, "quit is not available: no one to hand it to")
        return Reply(status(Severity.SUCCESS, Code.BYE, "BYE", DESCRIPTION), text="BYE")


COMMANDS: dict[str, _Spec] = {
    "version": _Spec(Dispatcher.version, write=False),
    "config": _Spec(Dispatcher.config, write=False),
    "summary": _Spec(Dispatcher.summary, write=False),
    "pools": _Spec(Dispatcher.pools, write=False),
    "devs": _Spec(Dispatcher.devs, write=False),
    "devdetails": _Spec(Dispatcher.devdetails, write=False),
    "stats": _Spec(Dispatcher.stats, write=False),
    "coin": _Spec(Dispatcher.coin, write=False),
    "power": _Spec(Dispatcher.power, write=False),
    "check": _Spec(Dispatcher.check, write=False),
    "switchpool": _Spec(Dispatcher.switchpool, write=True),
    "enablepool": _Spec(Dispatcher.enablepool, write=True),
    "disablepool": _Spec(Dispatcher.disablepool, write=True),
    "addpool": _Spec(Dispatcher.addpool, write=True),
    "pause": _Spec(Dispatcher.pause, write=True),
    "resume": _Spec(Dispatcher.resume, write=True),
    "powertarget": _Spec(Dispatcher.powertarget, write=True),
    "privileged": _Spec(Dispatcher.privileged, write=True),
    "quit": _Spec(Dispatcher.quit, write=True),
}


# --- helpers -------------------------------------------------------------------------------


def _reply(severity: Severity, code: Code, message: str, *sections: Section) -> Reply:
    return Reply(status(severity, code, message, DESCRIPTION), list(sections))


def _error(code: Code, message: str) -> Reply:
    return _reply(Severity.ERROR, code, message)


def _pool_index(context: _Context, parameter: str) -> int | Reply:
    text = parameter.strip()
    if not text:
        return _error(Code.MISSING_POOL_ID, "Missing pool id parameter")
    count = len(context.stats.pools)
    # ASCII digits only: int() would also take "1_0", " ٠" (Arabic-Indic zero) and "+1".
    if not (text.isascii() and text.isdigit()):
        return _error(Code.INVALID_POOL_ID, f"Invalid pool id '{text[:40]}' - range is 0 - {count - 1}")
    index = int(text)
    if not 0 <= index < count:
        return _error(Code.INVALID_POOL_ID, f"Invalid pool id {index} - range is 0 - {count - 1}")
    return index


def _pool_url(context: _Context, index: int) -> str:
    return context.stats.pools[index].url


def _pool_row(index: int, pool: PoolView) -> dict[str, Any]:
    answered = pool.accepted + pool.rejected + pool.stale
    last_share = pool.last_share_time
    return {
        "POOL": index,
        "URL": pool.url,
        "Status": _pool_status(pool),
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
        "Pool Rejected%": _percent(pool.rejected, answered),
        "Pool Stale%": _percent(pool.stale, answered),
        "Connects": pool.connects,
        "Last Error": pool.last_error or "",
    }


def _pool_status(pool: PoolView) -> str:
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


def _device_ids(stats: MinerStats) -> list[tuple[str, int]]:
    """(kind, index within the kind) of each backend, in order."""
    seen: dict[str, int] = {}
    ids = []
    for name in stats.backends:
        kind = DEVICE_KINDS.get(name, "CPU")
        ids.append((kind, seen.get(kind, 0)))
        seen[kind] = seen.get(kind, 0) + 1
    return ids


def _device_status(backend: BackendView) -> str:
    """Health, apart from ``Enabled`` (a paused device is healthy, just not hashing),
    from the engine's state of the backend."""
    if backend.state.startswith("failed"):
        return "Dead"
    return "Sick" if backend.state.startswith("retrying") else "Alive"


def _device_shares(backend: BackendView) -> dict[str, Any]:
    answered = backend.accepted + backend.rejected + backend.stale
    last_share = backend.last_share_time
    return {
        "Accepted": backend.accepted,
        "Rejected": backend.rejected,
        "Difficulty Accepted": backend.difficulty_accepted,
        "Last Share Time": int(last_share) if last_share else 0,
        "Device Rejected%": _percent(backend.rejected, answered),
    }


def _device_energy(energy: EnergyView | None) -> dict[str, Any]:
    """Average power, energy and J/TH; null where no meter reported."""
    if energy is None:
        return {"Power av": None, "Energy": None, "J/TH": None}
    return {"Power av": _round(energy.watts, 3), "Energy": _round(energy.joules, 3), "J/TH": _round(energy.j_per_th, 3)}


def _hardware_errors(backend: BackendView) -> int:
    """Results that failed the exact check, and scans that failed (cgminer's HW errors)."""
    return backend.false_positives + backend.errors


def _mhs(hashes_per_second: float) -> float:
    return round(hashes_per_second / 1e6, 6)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def _round(value: Any, digits: int) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return round(number, digits) if math.isfinite(number) else None
