"""Helpers for tests that run real miners and pools on loopback."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable
from pathlib import Path

#: Client settings that make reconnects and failover take a fraction of a second.
FAST = {"backoff_base": 0.05, "backoff_max": 0.3, "connect_timeout": 2.0, "failback_interval": 0.3}


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on right now, below the kernel's ephemeral range.

    A port the kernel handed out for port 0 and took back can be handed out again at
    once: to the embedded pool's listener, or as a connection's source port, between the
    test choosing it and the miner binding it. Ports below the ephemeral range are never
    handed out that way.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10_000, max(low, 10_001))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a crowded range: take what the kernel gives
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
