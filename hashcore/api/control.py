"""What the API and the metrics read and control, as small protocols.

:class:`hashcore.engine.Miner` satisfies :class:`MinerControl`; the throttle object the
CLI may pass satisfies :class:`ThrottleControl`. Keeping these as protocols lets the API
be driven by a test double and keeps the throttle package out of this one's imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from hashcore.engine import MinerStats


class _Options(Protocol):
    @property
    def user(self) -> str: ...


class _Client(Protocol):
    @property
    def options(self) -> _Options: ...


class MinerControl(Protocol):
    """The parts of :class:`hashcore.engine.Miner` the API uses."""

    @property
    def client(self) -> _Client: ...

    def stats(self) -> MinerStats: ...
    def switch_pool(self, index: int) -> None: ...
    def add_pool(self, url: str) -> int: ...
    def enable_pool(self, index: int) -> None: ...
    def disable_pool(self, index: int) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


class ThrottleControl(Protocol):
    """A power-budget follower the operator can steer.

    ``set_target(watts)`` sets a fixed power target (None: back to the configured
    policy); ``status()`` describes the current state, with ``budget_w`` the budget in
    force (watts, or None when there is none).
    """

    def set_target(self, watts: float | None) -> None: ...
    def status(self) -> Mapping[str, Any]: ...


def budget_watts(throttle: ThrottleControl | None) -> float | None:
    """The budget in force, or None (no throttle, or no budget set)."""
    if throttle is None:
        return None
    value = throttle.status().get("budget_w")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def redact_url(url: str) -> str:
    """A pool URL without any password written into it (``user:pass@host``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
