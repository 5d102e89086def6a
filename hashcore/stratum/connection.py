"""One open connection to a pool as the client keeps it, with no I/O.

What the connection has seen (how far the handshake got, the shares in flight and those
held until the worker is authorized, the pool's rhythm of jobs) and, from that, the next
moment it counts as failed (:meth:`ActiveConnection.deadline`). The transport reads and
writes; this only keeps count and does the arithmetic, so the deadlines can be tested
without a socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hashcore.stratum import events as ev
from hashcore.stratum.options import ClientOptions, Link
from hashcore.stratum.protocol import ClientConnection, State
from hashcore.work import WorkOrigin

#: A pool silent for this many times its longest gap between jobs so far (but at least
#: ``job_silence_min`` seconds, at most the watchdog's) counts as hung.
JOB_SILENCE_FACTOR = 3.0


@dataclass(slots=True)
class HeldShare:
    """A share found before the pool answered authorize, waiting to be sent."""

    origin: WorkOrigin
    nonce: int
    waiter: asyncio.Future[ev.ShareResult]


@dataclass(slots=True)
class ActiveConnection:
    """The client's one open connection: its protocol, writer, shares and progress."""

    link: Link
    protocol: ClientConnection
    writer: asyncio.StreamWriter
    connected_at: float
    waiters: dict[int, asyncio.Future[ev.ShareResult]] = field(default_factory=dict)
    #: When each share in ``waiters`` was written (monotonic), oldest first.
    sent_at: dict[int, float] = field(default_factory=dict)
    held: list[HeldShare] = field(default_factory=list)
    authorized: bool = False
    authorized_at: float | None = None
    has_job: bool = False
    accepted: int = 0
    jobs: int = 0
    last_job_at: float | None = None
    longest_job_gap: float = 0.0
    sent_configure: bool = False

    def note_job(self, now: float) -> None:
        """A new job came at ``now`` (monotonic seconds)."""
        if self.last_job_at is not None and self.jobs >= 2:
            # The first gap after the handshake says little; later ones are the pool's rhythm.
            self.longest_job_gap = max(self.longest_job_gap, now - self.last_job_at)
        self.has_job, self.last_job_at = True, now
        self.jobs += 1

    def deadline(self, options: ClientOptions, last_data: float) -> tuple[float, str]:
        """The next moment the connection counts as failed, and what failure that is
        (``last_data``: when the pool last sent anything)."""
        deadline = last_data + options.idle_timeout
        why = f"watchdog: nothing from the pool for {options.idle_timeout:.0f} s"
        if not (self.authorized and self.has_job):
            missing = ("an answer to mining.subscribe" if self.protocol.state is State.SUBSCRIBING
                       else "an answer to mining.authorize" if not self.authorized else "a first job")
            handshake_end = self.connected_at + options.handshake_timeout
            if handshake_end < deadline:
                deadline, why = handshake_end, f"no {missing} within {options.handshake_timeout:g} s of connecting"
        if self.longest_job_gap and self.last_job_at is not None:
            # A pool that sent jobs every few seconds and then none for several times
            # that long has hung: leave it well before the watchdog.
            rhythm = JOB_SILENCE_FACTOR * self.longest_job_gap
            silence = min(options.idle_timeout, max(options.job_silence_min, rhythm))
            if self.last_job_at + silence < deadline:
                deadline, why = self.last_job_at + silence, (
                    f"no new job for {silence:.0f} s (jobs came at least every {self.longest_job_gap:.1f} s)")
        if self.sent_at:
            answer_end = next(iter(self.sent_at.values())) + options.submit_timeout
            if answer_end < deadline:
                deadline, why = answer_end, f"the pool has not answered a share for {options.submit_timeout:g} s"
        return deadline, why
