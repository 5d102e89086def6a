"""The TOML config file (``hashcore mine --config hashcore.toml``).

Every key is checked against :data:`SCHEMA`, and each ``[backends.NAME]`` table against
the options that backend's factory takes: an unknown key or a value of the wrong type
is a :class:`~hashcore.errors.ConfigError` naming the file and the key (``pools[1].url``),
never echoing a secret's value. Command-line flags override the file; the CLI does the
merging. ``hashcore.example.toml`` in the repository shows every key.
"""

from __future__ import annotations

import inspect
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hashcore.backends import base as registry
from hashcore.boundedio import read_text_bounded
from hashcore.errors import ConfigError
from hashcore.stratum.urls import split_pool_url

#: Keys whose values are never repeated in an error message.
SECRET_KEYS = frozenset({"password", "pass", "token"})

#: The most worker threads per backend: beyond a few per core they only add switching,
#: and each holds a scanner (a process, for backends that keep the GIL).
MAX_THREADS = 4 * (os.cpu_count() or 1)


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "a whole number of at least 1"


def _thread_count(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_THREADS
    return None if ok else f"a whole number from 1 to {MAX_THREADS} (4 per core)"


def _integer(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"


def _positive_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return None if ok else "a positive number"


def _string_list(value: Any) -> str | None:
    ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
    return None if ok else "a non-empty list of names"


def _scalar(value: Any) -> str | None:
    ok = isinstance(value, (str, int, float, bool))
    return None if ok else "a string, number or boolean"


def _option(value: Any) -> str | None:
    """A backend option: a scalar, or a list of strings (OpenCL's build options)."""
    if isinstance(value, list):
        return None if all(isinstance(v, str) for v in value) else "a list of strings"
    return _scalar(value)


def _budget(value: Any) -> str | None:
    ok = isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and math.isfinite(value) and value >= 0)
    return None if ok else "a trace file name or a number of watts"


def _non_negative_number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return None if ok else "a number of at least 0"


def _number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return None if ok else "a number"


def _fraction(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return None if ok else "a number from 0 to 1"


Check = Callable[[Any], "str | None"]

#: The value checks a schema may use, by name (other config files' schemas take them from here).
CHECKS: dict[str, Check] = {
    "string": _string,
    "boolean": _boolean,
    "integer": _integer,
    "number": _number,
    "positive_int": _positive_int,
    "positive_number": _positive_number,
    "non_negative_number": _non_negative_number,
    "fraction": _fraction,
    "string_list": _string_list,
    "budget": _budget,
}

#: Section -> key -> check. ``pools`` is a list of tables; ``backends`` a table per backend.
SCHEMA: dict[str, dict[str, Check]] = {
    "miner": {
        "user": _string,
        "password": _string,
        "backends": _string_list,
        "threads": _thread_count,
        "duration": _positive_number,
        "suggest_difficulty": _positive_number,
        "max_share_rate": _positive_number,
        "version_rolling": _boolean,
    },
    "pools": {"url": _string, "user": _string, "password": _string, "priority": _integer},
    "tls": {"verify": _boolean, "ca": _string},
    "telemetry": {"powercap_root": _string, "tdp_watts_per_core": _positive_number},
    "api": {"listen": _string, "allow": _string},
    "metrics": {"listen": _string},
    "web": {"listen": _string, "allow_control": _boolean, "allow_hosts": _string_list},
    "throttle": {
        "power_budget": _budget,
        "policy": _string,
        "carbon_cap": _positive_number,
        "price_ceiling": _positive_number,
        "hashprice": _positive_number,
        "interpolation": _string,
    },
}


def backend_options(name: str) -> frozenset[str] | None:
    """The options backend ``name`` takes (None: no such backend).

    Read from the keyword parameters of the backend's registered factory, so the list
    follows the code: factories also take ``**options`` they ignore, which is why a
    misspelt key has to be caught here."""
    registry.names()  # loads every backend module, so each has registered
    entry = registry._REGISTRY.get(name)
    if entry is None:
        return None
    parameters = inspect.signature(entry.factory).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in parameters if p.kind in kinds)


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """``url`` with this user and password written in (percent-encoded), replacing any there.

    A password without a user leaves the user empty: the miner's worker name then applies."""
    scheme, _user, _password, address = split_pool_url(url)
    userinfo = quote(user or "", safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return f"{scheme or 'stratum+tcp'}://{userinfo}@{address}"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    priority: int = 0

    def connection_url(self) -> str:
        """The URL with this pool's credentials in it, as the client takes them."""
        if self.user is None and self.password is None:
            return self.url
        return with_credentials(self.url, self.user, self.password)


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded config file (empty sections when there is no file)."""

    source: str = ""
    miner: dict[str, Any] = field(default_factory=dict, repr=False)
    pools: tuple[PoolConfig, ...] = ()
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    tls: dict[str, Any] = field(default_factory=dict)
    telemetry: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)
    throttle: dict[str, Any] = field(default_factory=dict)

    def pool_urls(self) -> list[str]:
        """Pool URLs in priority order (lowest ``priority`` first, then file order)."""
        ordered = sorted(enumerate(self.pools), key=lambda item: (item[1].priority, item[0]))
        return [pool.connection_url() for _, pool in ordered]


#: The longest config file read (the example with every key is a few KiB).
MAX_CONFIG_BYTES = 1 << 20


def load_config(path: str | Path) -> Config:
    """Read and check a TOML config file (a regular file of at most :data:`MAX_CONFIG_BYTES`
    in UTF-8; a FIFO or a device is refused, never waited on)."""
    return parse_config(load_toml(path), str(path))


def load_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A TOML file's document: a regular file of at most :data:`MAX_CONFIG_BYTES` in UTF-8."""
    path = Path(path)
    text = read_text_bounded(path, MAX_CONFIG_BYTES, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{what} {path} is not valid TOML: arrays or tables nested too deeply") from None


def parse_config(data: dict[str, Any], source: str = "config") -> Config:
    """Check a parsed TOML document against the schema."""
    for section in data:
        if section not in SCHEMA and section != "backends":
            raise ConfigError(f"{source}: unknown section {section!r} (known: {', '.join(_sections())})")
    sections: dict[str, dict[str, Any]] = {}
    for section in SCHEMA:
        if section == "pools":
            continue
        sections[section] = check_table(data.get(section, {}), section, SCHEMA[section], source)
    pools_data = data.get("pools", [])
    if not isinstance(pools_data, list):
        raise ConfigError(f"{source}: pools must be a list of tables ([[pools]])")
    pools = []
    for i, entry in enumerate(pools_data):
        table = check_table(entry, f"pools[{i}]", SCHEMA["pools"], source)
        if "url" not in table:
            raise ConfigError(f"{source}: pools[{i}].url is missing")
        pools.append(PoolConfig(**table))
    backends = data.get("backends", {})
    if not isinstance(backends, dict):
        raise ConfigError(f"{source}: backends must be a table of [backends.NAME] tables")
    checked_backends: dict[str, dict[str, Any]] = {}
    for name, options in backends.items():
        accepted = backend_options(name)
        if accepted is None:
            known = ", ".join(registry.names())
            raise ConfigError(f"{source}: unknown backend [backends.{name}] (known: {known})")
        schema: dict[str, Check] = {key: _option for key in sorted(accepted)}
        checked_backends[name] = check_table(options, f"backends.{name}", schema, source)
    return Config(source, pools=tuple(pools), backends=checked_backends, **sections)


def _sections() -> list[str]:
    return sorted([*SCHEMA, "backends"])


#: The longest value repeated in an error message.
_MAX_SHOWN = 60


def _shown(value: Any, *, secret: bool) -> str:
    """A wrong value as an error message may show it: numbers and booleans as they are,
    a string unless it has an '@' (a URL's ``user:password@``), anything else (a list or
    a table, which may hold a URL with a password, or be nested thousands deep) by its
    type only."""
    kinds: dict[type, str] = {list: "a list", dict: "a table", str: "a string"}
    kind = kinds.get(type(value)) or f"a {type(value).__name__}"
    if secret or (isinstance(value, str) and "@" in value):  # user:password@host
        return f"{kind} (value not shown)"
    if isinstance(value, bool | int | float | str):
        text = repr(value)
    else:
        return f"{kind} (values not shown)"
    return text if len(text) <= _MAX_SHOWN else f"{kind} of {len(text)} characters (value not shown)"


def check_table(value: Any, where: str, schema: dict[str, Check], source: str) -> dict[str, Any]:
    """``value`` as a table whose every key is in ``schema`` and passes its check."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where} must be a table")
    for key, item in value.items():
        name = f"{where}.{key}"
        check = schema.get(key)
        if check is None:
            known = ", ".join(sorted(schema)) or "none"
            raise ConfigError(f"{source}: unknown key {name!r} (known in {where}: {known})")
        wanted = check(item)
        if wanted is not None:
            shown = _shown(item, secret=key in SECRET_KEYS)
            raise ConfigError(f"{source}: {name} must be {wanted}, got {shown}")
    return dict(value)
