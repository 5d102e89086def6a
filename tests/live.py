"""Helpers for tests that run real miners and pools on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

#: Client settings that make reconnects and failover take a fraction of a second.
FAST = {"backoff_base": 0.05, "backoff_max": 0.3, "connect_timeout": 2.0, "failback_interval": 0.3}


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
