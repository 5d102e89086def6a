"""The site's TOML file (``hashcore site --config site.toml``): the budget, the rules and
the miners.

::

    [site]
    power_budget = "budget.txt"   # like mine --power-budget: watts, a trace CSV, a live file or URL
    budget_poll = 1               # read a live file this often (s)
    tick = 2                      # the controller's tick (s)
    headroom = 0.05               # of the budget kept free for the miners' ripple
    min_on_s = 60                 # defaults for every miner
    min_off_s = 60
    listen = "127.0.0.1:8090"     # the site page and /metrics ("off": none)
    run_dir = "runs/site"         # the run folder hashcore report renders

    [[miners]]
    address = "127.0.0.2:4028"    # its cgminer API
    kind = "hashcore"             # hashcore (default), cgminer (read only), or a firmware pyasic drives
    max_watts = 30
    min_watts = 8
    sleep_watts = 2

Every ``[site]`` key of the budget, policy, forecast, battery and carbon account is named
like the ``hashcore mine`` / ``hashcore simulate`` flag that sets it (``power_budget``,
``policy``, ``carbon_cap``, ``battery_kwh``, ``battery_state``, ``forecast``, ``site_lat``,
``grid_intensity``, ...). An unknown key, a value of the wrong type or a miner listed
twice is a :class:`~hashcore.errors.ConfigError` naming the file and the key; a
password's value is never repeated. A miner is the same miner however its address is
written (``127.0.0.2:4028``, ``[::ffff:127.0.0.2]:4028``; a name in any case); an
address of digits and dots that is not a plain IPv4 address (``127.000.0.2``, ``127.1``:
read as octal or short forms by the system's resolver) is refused. Numbers are held to
what a site can be: a tick of 0.1 s to a day, a miner's deadline of at most a minute, a
miner's watts at most :data:`~hashcore.throttle.site.MAX_MINER_WATTS`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashcore.app.simulate import SimulateOptions
from hashcore.app.site.pyasic_link import PYASIC_KINDS
from hashcore.config import CHECKS, check_table, load_toml
from hashcore.errors import ConfigError
from hashcore.listen import parse_listen
from hashcore.throttle.site import MAX_MINER_WATTS, MinerRules, SiteRules

#: The miner kinds the site speaks to without pyasic.
CGMINER_KINDS = ("hashcore", "cgminer")
#: The most miners one site file may list.
MAX_MINERS = 10_000

_BUDGET_KEYS = {
    "power_budget": "budget", "budget_poll": "positive_number", "budget_align": "string",
    "budget_scale": "positive_number", "interpolation": "string", "policy": "string", "carbon_cap": "positive_number",
    "hashprice": "positive_number", "price_ceiling": "positive_number",
    "battery_kwh": "positive_number", "battery_kw": "positive_number", "battery_efficiency": "fraction",
    "battery_soc_min": "fraction", "battery_soc_max": "fraction", "battery_soc_start": "fraction",
    "battery_state": "string", "forecast": "string", "site_lat": "number",
    "site_lon": "number", "site_pv_kw": "positive_number", "site_load_kw": "non_negative_number",
    "site_load_profile": "string", "budget_source": "string", "grid_intensity": "non_negative_number",
    "contract_gco2": "non_negative_number", "share_difficulty": "positive_number",
}
_SITE_KEYS = {
    "tick": "positive_number", "headroom": "fraction", "wake_margin_w": "non_negative_number",
    "wake_batch": "integer", "ramp_w_per_s": "positive_number", "deadband_w": "non_negative_number",
    "confirm_ticks": "positive_int", "rank_margin": "fraction", "min_on_s": "non_negative_number",
    "min_off_s": "non_negative_number",
    "timeout_s": "positive_number", "listen": "string", "allow_hosts": "string_list", "run_dir": "string",
}
_MINER_KEYS = {
    "address": "string", "kind": "string", "max_watts": "positive_number", "min_watts": "non_negative_number",
    "sleep_watts": "non_negative_number", "min_on_s": "non_negative_number", "min_off_s": "non_negative_number",
    "ramp_w_per_s": "positive_number", "j_per_th": "positive_number", "username": "string", "password": "string",
    "timeout_s": "positive_number",
}


#: The most the site's budget may be: every miner at its most.
MAX_SITE_WATTS = MAX_MINERS * MAX_MINER_WATTS
#: Key -> the range its number must be in (beyond the type's own check).
_RANGES = {
    "tick": (0.1, 86_400.0), "timeout_s": (0.0, 60.0), "budget_poll": (0.0, 86_400.0),
    "power_budget": (0.0, MAX_SITE_WATTS), "wake_margin_w": (0.0, MAX_SITE_WATTS),
    "deadband_w": (0.0, MAX_SITE_WATTS), "ramp_w_per_s": (0.0, MAX_SITE_WATTS),
    "max_watts": (0.0, MAX_MINER_WATTS), "min_watts": (0.0, MAX_MINER_WATTS), "sleep_watts": (0.0, MAX_MINER_WATTS),
}
#: A host of numbers and dots only (with 0x hex): an IPv4 address, or one of the system's
#: other readings of one (octal, short forms), which the site refuses as ambiguous.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*", re.ASCII | re.IGNORECASE)


def _schema(keys: dict[str, str]) -> dict[str, Any]:
    return {key: CHECKS[check] for key, check in keys.items()}


@dataclass(frozen=True, slots=True)
class MinerEntry:
    """One ``[[miners]]`` table."""

    address: str
    kind: str
    rules: MinerRules
    timeout_s: float
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A site file, checked.

    Attributes:
        source: the file it was read from.
        budget: the budget, policy, forecast, battery and account settings (the same
            options ``hashcore simulate`` takes; ``power_budget`` is the signal).
        power_budget / budget_poll / budget_align / budget_scale / battery_state: the
            live budget's settings, as ``hashcore mine`` takes them.
        tick_s: seconds between ticks.
        rules: how the budget is shared (:class:`~hashcore.throttle.site.SiteRules`).
        listen: where the site page and /metrics listen (None: nowhere).
        allow_hosts: more names the page's ``Host`` header may carry.
        run_dir: where the run folder is written (None: not written).
        miners: every miner, in the file's order.
    """

    source: str
    budget: SimulateOptions
    power_budget: str
    budget_poll: float | None
    budget_align: str
    budget_scale: float
    battery_state: str | None
    tick_s: float
    rules: SiteRules
    listen: str | None
    allow_hosts: tuple[str, ...]
    run_dir: str | None
    miners: tuple[MinerEntry, ...]


def load_site_config(path: str | Path) -> SiteConfig:
    """Read and check a site file."""
    return parse_site_config(load_toml(path, "site config"), str(path))


def parse_site_config(data: dict[str, Any], source: str = "site config") -> SiteConfig:
    """Check a parsed site document."""
    for section in data:
        if section not in ("site", "miners"):
            raise ConfigError(f"{source}: unknown section {section!r} (known: miners, site)")
    site = check_table(data.get("site", {}), "site", _schema({**_BUDGET_KEYS, **_SITE_KEYS}), source)
    _check_ranges(site, "site", source)
    if "power_budget" not in site:
        raise ConfigError(f"{source}: site.power_budget is missing (watts, a trace CSV, or a live file or URL)")
    raw = data.get("miners", [])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: list the miners as [[miners]] tables (at least one)")
    if len(raw) > MAX_MINERS:
        raise ConfigError(f"{source}: {len(raw)} miners listed; at most {MAX_MINERS}")
    defaults: dict[str, Any] = {k: site[k] for k in ("min_on_s", "min_off_s", "timeout_s") if k in site}
    miners = tuple(_miner(entry, i, defaults, source) for i, entry in enumerate(raw))
    seen: dict[str, str] = {}
    for miner in miners:
        same = _same_miner(miner.address)
        if same in seen:
            shown = miner.address if seen[same] == miner.address else f"{miner.address} (as {seen[same]})"
            raise ConfigError(f"{source}: miner {shown} is listed twice")
        seen[same] = miner.address
    listen = site.get("listen", "127.0.0.1:8090")
    if listen != "off":
        parse_listen(listen, f"{source}: site.listen")
    budget_options = {k: v for k, v in site.items() if k in _BUDGET_KEYS and k not in _LIVE_KEYS}
    try:
        budget = SimulateOptions(trace="", **budget_options)
        rules = SiteRules(**{key: site[name] for name, key in _RULE_KEYS.items() if name in site})
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"{source}: [site] {exc}") from exc
    align = site.get("budget_align", "start")
    if align not in ("start", "wall"):
        raise ConfigError(f"{source}: site.budget_align must be start or wall, not {align!r}")
    return SiteConfig(
        source=source,
        budget=budget,
        power_budget=str(site["power_budget"]),
        budget_poll=site.get("budget_poll"),
        budget_align=align,
        budget_scale=float(site.get("budget_scale", 1.0)),
        battery_state=site.get("battery_state"),
        tick_s=float(site.get("tick", 2.0)),
        rules=rules,
        listen=None if listen == "off" else listen,
        allow_hosts=tuple(site.get("allow_hosts", ())),
        run_dir=site.get("run_dir"),
        miners=miners,
    )


#: [site] keys the live budget reads (the rest are SimulateOptions').
_LIVE_KEYS = ("power_budget", "budget_poll", "budget_align", "budget_scale", "battery_state")
#: [site] key -> SiteRules field.
_RULE_KEYS = {"headroom": "headroom", "wake_margin_w": "wake_margin_w", "wake_batch": "wake_batch",
              "ramp_w_per_s": "site_ramp_w_per_s", "deadband_w": "deadband_w", "confirm_ticks": "confirm_ticks",
              "rank_margin": "rank_margin"}


def _miner(entry: Any, index: int, defaults: dict[str, Any], source: str) -> MinerEntry:
    where = f"miners[{index}]"
    table = check_table(entry, where, _schema(_MINER_KEYS), source)
    _check_ranges(table, where, source)
    address = table.get("address", "").strip()
    if not address:
        raise ConfigError(f"{source}: {where}.address is missing (host:port of its cgminer API)")
    host, port = parse_listen(address, f"{source}: {where}.address")
    if port == 0:
        raise ConfigError(f"{source}: {where}.address {address!r}: port 0 is no miner's port")
    if _NUMERIC_HOST.fullmatch(host) and not _ipv4(host):
        raise ConfigError(f"{source}: {where}.address {address!r}: {host} is not an IPv4 address as the site "
                          "reads one (four numbers 0-255 without leading zeros)")
    kind = table.get("kind", "hashcore").strip().lower()
    if kind not in CGMINER_KINDS and kind not in PYASIC_KINDS:
        raise ConfigError(f"{source}: {where}.kind {kind[:40]!r} is not one of "
                          f"{', '.join([*CGMINER_KINDS, *sorted(PYASIC_KINDS)])}")
    settings = {**defaults, **table}
    try:
        rules = MinerRules(
            max_watts=settings.get("max_watts"),
            min_watts=settings.get("min_watts"),
            sleep_watts=settings.get("sleep_watts", 0.0),
            min_on_s=settings.get("min_on_s", 60.0),
            min_off_s=settings.get("min_off_s", 60.0),
            ramp_w_per_s=settings.get("ramp_w_per_s"),
            j_per_th=settings.get("j_per_th"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {where} ({address}): {exc}") from exc
    return MinerEntry(address, kind, rules, float(settings.get("timeout_s", 2.0)),
                      table.get("username"), table.get("password"))


def _check_ranges(table: dict[str, Any], where: str, source: str) -> None:
    for key, (low, high) in _RANGES.items():
        value = table.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            raise ConfigError(f"{source}: {where}.{key} must be from {low:g} to {high:g}, got {value!r}")


def _ipv4(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


def _same_miner(address: str) -> str:
    """One spelling of an address for every way of writing it: an IP address in its short
    form (an IPv4-mapped IPv6 address as the IPv4 one), a name in lower case without its
    trailing dot."""
    host, port = parse_listen(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"{host.lower().rstrip('.')}:{port}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip.compressed}:{port}"
