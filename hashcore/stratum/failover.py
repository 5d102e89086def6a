"""The client's pool list and its failover bookkeeping, with no I/O.

Pools keep their index for life; ``priority`` orders them, best first. This decides which
pool to try next (the best enabled one whose retry time has come), how long a pool waits
after it failed or sent us elsewhere, what a connection taught about its pool (it proved
itself, so its backoff starts afresh; it drops a handshake that begins with
``mining.configure``), and whether every pool failed with none ever reached.

The transport (:class:`~hashcore.stratum.client.StratumClient`) tells it what happened
and when (monotonic seconds). The delay after ``n`` failures in a row is the transport's
rule, passed in, so a test can make it exact.
"""

from __future__ import annotations

from collections.abc import Callable

from hashcore.errors import ConfigError, PoolError
from hashcore.stratum.options import PoolStatus
from hashcore.stratum.urls import Endpoint

#: The least wait while no pool may be tried yet.
MIN_WAIT = 0.05


class PoolList:
    """The pools of one client, each one's :class:`PoolStatus`, and their order."""

    def __init__(self, endpoints: list[Endpoint], backoff: Callable[[int], float]) -> None:
        self.endpoints = endpoints
        self.status = [PoolStatus(e.url) for e in endpoints]
        #: Pool indexes, best first: failover walks it; prefer() reorders it.
        self.priority = list(range(len(endpoints)))
        self._backoff = backoff
        #: Pools (by index) that closed a handshake begun with mining.configure unanswered.
        self._dropped_configure: set[int] = set()
        self._proved: dict[int, bool] = {}  # pool index -> its last connection proved itself

    # --- the list (the cgminer API's switchpool / addpool / enablepool / disablepool) ----

    def add(self, endpoint: Endpoint) -> int:
        """Append a pool at the lowest priority; returns its index."""
        self.endpoints.append(endpoint)
        self.status.append(PoolStatus(endpoint.url))
        self.priority.append(len(self.endpoints) - 1)
        return len(self.endpoints) - 1

    def check_index(self, index: int) -> None:
        if not 0 <= index < len(self.endpoints):
            raise ConfigError(f"no pool {index} (pools are 0..{len(self.endpoints) - 1})")

    def rank(self, index: int) -> int:
        return self.priority.index(index)

    def prefer(self, index: int) -> None:
        """Make pool ``index`` the first choice (enabling it)."""
        self.check_index(index)
        self.status[index].enabled = True
        self.priority.remove(index)
        self.priority.insert(0, index)

    def enable(self, index: int) -> None:
        """Use pool ``index`` again, trying it at once."""
        self.check_index(index)
        self.status[index].enabled = True
        self.status[index].retry_at = 0.0

    def disable(self, index: int) -> None:
        """Stop using pool ``index``; ConfigError when it is the last enabled one."""
        self.check_index(index)
        if all(not s.enabled or i == index for i, s in enumerate(self.status)):
            raise ConfigError("cannot disable the last enabled pool")
        self.status[index].enabled = False

    def first_enabled(self) -> int:
        return next(i for i in self.priority if self.status[i].enabled)

    def better_than(self, index: int) -> list[int]:
        """The enabled pools ranked above pool ``index``, best first."""
        return [i for i in self.priority[: self.rank(index)] if self.status[i].enabled]

    # --- failover ----------------------------------------------------------------------

    def next_pool(self, now: float) -> int | None:
        """The best enabled pool that may be tried at ``now``, or None."""
        for index in self.priority:
            status = self.status[index]
            if status.enabled and status.retry_at <= now:
                return index
        return None

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until an enabled pool may be tried again."""
        return max(MIN_WAIT, min(s.retry_at for s in self.status if s.enabled) - now)

    def connected(self, index: int) -> None:
        status = self.status[index]
        status.connected, status.ever_connected = True, True
        status.connects += 1

    def disconnected(self, index: int, proved: bool) -> None:
        """Pool ``index``'s connection ended; ``proved``: it got a share accepted or was up
        long enough to count as stable."""
        self.status[index].connected = False
        self._proved[index] = proved
        if proved:
            self.status[index].failures = 0  # it did work: back off afresh

    def configure_dropped(self, index: int) -> None:
        """Pool ``index`` closed a handshake that began with mining.configure before
        answering subscribe."""
        self._dropped_configure.add(index)

    def failed(self, index: int, error: str, now: float) -> float | None:
        """Pool ``index`` failed with ``error``; returns the delay before it is tried
        again, or None when it is to be retried at once with a plain handshake (the failure
        showed it is a pool from before BIP 310, which drops a client that begins with
        mining.configure: that is learnt once, and configure is left out from then on)."""
        status = self.status[index]
        status.last_error = error
        if index in self._dropped_configure:
            self._dropped_configure.discard(index)
            status.plain_handshake = True  # configure is only sent while this is False
            return None
        status.failures += 1
        delay = self._backoff(status.failures)
        status.retry_at = now + delay
        return delay

    def redirected(self, index: int, wait: float, now: float) -> float:
        """Pool ``index`` sent us elsewhere, to reconnect after ``wait`` seconds; returns
        the delay before that."""
        status = self.status[index]
        delay = wait
        if not self._proved.get(index, False):
            # Sent on before any share was accepted: a loop of redirects backs off like
            # failures (and lets the next pool serve meanwhile).
            status.failures += 1
            if status.failures > 1:
                delay = max(delay, self._backoff(status.failures - 1))
        status.retry_at = now + delay
        return delay

    def retry_now(self, index: int) -> None:
        self.status[index].retry_at = 0.0

    def check_reached(self) -> None:
        """PoolError when every enabled pool failed and none was ever reached."""
        if all(s.failures and not s.ever_connected for s in self.status if s.enabled):
            reasons = "; ".join(f"{s.url}: {s.last_error}" for s in self.status)
            raise PoolError(f"no pool could be reached ({reasons})")
