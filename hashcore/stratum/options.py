"""The Stratum client's plain data: the options it runs with, what it knows of each
pool, and what its handler is given (a :class:`Link` naming the connection, with the
protocol's events or the transport's own :class:`Connected` and :class:`Disconnected`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hashcore.stratum import events as ev
from hashcore.stratum.jsonrpc import DEFAULT_MAX_LINE
from hashcore.work import DEFAULT_VERSION_MASK


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How the client connects and behaves.

    Attributes:
        user / password: the worker credentials sent with ``mining.authorize``.
        version_rolling: ask for BIP 310 version rolling with ``mining.configure``.
        version_mask: the mask to ask for.
        extranonce_subscribe: send ``mining.extranonce.subscribe``.
        suggest_difficulty: send ``mining.suggest_difficulty`` with this value.
        connect_timeout: seconds to open the TCP (and TLS) connection.
        handshake_timeout: seconds from connecting until subscribe and authorize are
            answered and the first job has come; past it the pool counts as failed.
        idle_timeout: the watchdog: seconds without any byte from the pool.
        job_silence_min: the least time without a new job that counts a pool as hung
            (it is three times the longest gap between its jobs so far, when longer).
        submit_timeout: seconds to wait for the pool's answer to a share; a share left
            unanswered this long means the pool stopped answering (reconnect).
        backoff_base / backoff_max: reconnect delays (doubling, with +-50% jitter,
            never above ``backoff_max``).
        stable_after: seconds a connection must last before its pool's backoff resets
            (an accepted share resets it too).
        failback_interval: seconds between probes of better pools while on a backup.
        max_held_shares: shares held while the pool has not yet answered authorize.
        max_unsent_bytes: bytes waiting to be written before the pool counts as not
            reading (the connection is dropped instead of buffering without end).
        tls_verify: verify pool certificates (on unless told otherwise).
        tls_ca: a CA bundle file to verify against, instead of the system's.
        allow_redirect: follow ``client.reconnect`` to another host.
        fail_fast: make :meth:`StratumClient.run` raise PoolError when every pool
            failed once and none was ever reached (the CLI's "unreachable pool").
        max_line: the longest line accepted from a pool.
    """

    user: str
    password: str = field(default="x", repr=False)
    version_rolling: bool = True
    version_mask: int = DEFAULT_VERSION_MASK
    extranonce_subscribe: bool = True
    suggest_difficulty: float | None = None
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0
    idle_timeout: float = 180.0
    job_silence_min: float = 15.0
    submit_timeout: float = 10.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0
    failback_interval: float = 30.0
    max_held_shares: int = 256
    max_unsent_bytes: int = 1 << 20
    tls_verify: bool = True
    tls_ca: str | None = None
    allow_redirect: bool = False
    fail_fast: bool = False
    max_line: int = DEFAULT_MAX_LINE


@dataclass(frozen=True, slots=True)
class Link:
    """Which pool (by priority index) and which connection to it an event came from."""

    index: int
    url: str
    session: int


@dataclass(frozen=True, slots=True)
class Connected:
    """The transport connected to a pool (protocol events follow)."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended; every share in flight on it is unanswered."""

    reason: str


Handler = Callable[[Link, "ev.Event | Connected | Disconnected"], None]


@dataclass(slots=True)
class PoolStatus:
    """What the client knows about one pool of the list."""

    url: str
    connected: bool = False
    connects: int = 0
    failures: int = 0
    last_error: str | None = None
    retry_at: float = 0.0
    ever_connected: bool = False
    enabled: bool = True
    #: The pool dropped a handshake that began with mining.configure: leave it out.
    plain_handshake: bool = False
