"""What the API and the metrics read and control, as small protocols.

:class:`hashcore.engine.Miner` satisfies :class:`MinerControl`; the throttle object the
CLI may pass satisfies :class:`ThrottleControl`. Keeping these as protocols lets the API
be driven by a test double and keeps the throttle package out of this one's imports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from hashcore.engine import MinerStats
from hashcore.errors import ConfigError
from hashcore.stratum.client import split_pool_url

#: The most pools a miner takes (the command line's, the config's and those added through
#: the API together): each is a failover entry the client walks and a row in every reply.
MAX_POOLS = 16


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


def power_target(watts: object) -> float:
    """A power target from an operator (API or dashboard): a finite number of watts above 0.

    Raises ConfigError saying what is accepted. Zero is refused: it would stop every
    backend while looking like a target (pause does that, and says so)."""
    if isinstance(watts, bool) or not isinstance(watts, (int, float)) or not (math.isfinite(watts) and watts > 0):
        raise ConfigError("a power target is a number of watts above 0")
    return float(watts)


def redact_url(url: str) -> str:
    """A pool URL without any password written into it (``user:pass@host`` -> ``user@host``).

    Split as the Stratum client splits it (the last '@' ends the credentials), so a
    password holding '#', '/', '?' or '@' never shows, with or without a scheme."""
    scheme, user, _password, address = split_pool_url(url)
    shown = f"{user}@{address}" if user else address
    return f"{scheme}://{shown}" if scheme else shown
