"""How the site controller talks to one miner: the :class:`MinerLink` contract.

A link reads a miner (its power, hashrate, energy counter, state and what it lets the
site steer) and sends it the allocator's orders: a power target, sleep, wake. Every call
ends within the link's deadline; a failure is a :class:`MinerLinkError` that says whether
nothing listened at the address (:data:`~hashcore.throttle.site.REFUSED`: the miner
software is not running) or the miner did not answer in time or answered nonsense
(:data:`~hashcore.throttle.site.TIMEOUT`: it may still be hashing).

Links: :mod:`hashcore.app.site.cgminer` (hashcore instances, and any cgminer API read
only) and :mod:`hashcore.app.site.pyasic_link` (the firmwares pyasic knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hashcore.errors import HashcoreError
from hashcore.throttle.site import FAILURES, MinerReading


class MinerLinkError(HashcoreError):
    """A miner could not be read or steered; ``failure`` is ``timeout`` or ``refused``."""

    def __init__(self, message: str, failure: str) -> None:
        if failure not in FAILURES:
            raise ValueError(f"failure must be one of {FAILURES}, not {failure!r}")
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class LinkReading:
    """One answer from a miner.

    Attributes:
        reading: what the allocator needs (power, hashrate, state, control, target).
        energy_j: the miner's cumulative energy counter, when it keeps one (the site takes
            each tick's energy from its difference; else power times the tick).
        hashes: the miner's cumulative hash count, when it reports one.
        energy_source: where its power figure comes from (``rapl``, ``nvml``, ``asic``,
            ``estimate``, the firmware's name), None when it reports no power.
        note: why it cannot be steered, or what it is (shown on the site page).
    """

    reading: MinerReading
    energy_j: float | None = None
    hashes: float | None = None
    energy_source: str | None = None
    note: str = ""


class MinerLink(Protocol):
    """One miner as the site sees it; every call ends within the link's deadline."""

    address: str
    kind: str

    async def read(self) -> LinkReading:
        """Read the miner now. Raises MinerLinkError."""
        ...

    async def set_target(self, watts: float) -> None:
        """Set its power target. Raises MinerLinkError."""
        ...

    async def sleep(self) -> None:
        """Stop it hashing (it stays connected to its pool where it can). Raises MinerLinkError."""
        ...

    async def wake(self) -> None:
        """Start it hashing again. Raises MinerLinkError."""
        ...

    async def close(self) -> None:
        """Let go of any connection it holds."""
        ...
