"""Events the Stratum client protocol core emits. Small, frozen, documented."""

from __future__ import annotations

from dataclasses import dataclass

from hashcore.work import Job


@dataclass(frozen=True, slots=True)
class Configured:
    """The answer to ``mining.configure``.

    Attributes:
        version_mask: the BIP 310 mask the pool granted (only bits we asked for), or 0
            when version rolling was refused or the pool does not know the method.
    """

    version_mask: int


@dataclass(frozen=True, slots=True)
class Subscribed:
    """``mining.subscribe`` succeeded.

    Attributes:
        extranonce1: the pool's per-connection coinbase bytes.
        extranonce2_size: how many extranonce2 bytes the miner chooses.
        session_id: the subscription id to offer when resuming, if the pool sent one.
    """

    extranonce1: bytes
    extranonce2_size: int
    session_id: str | None


@dataclass(frozen=True, slots=True)
class Authorized:
    """The answer to ``mining.authorize``.

    Attributes:
        user: the worker name that was sent.
        accepted: whether the pool accepted it.
        reason: the pool's error text when it did not.
    """

    user: str
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """``mining.notify``: a job to mine (already checked and converted from hex)."""

    job: Job


@dataclass(frozen=True, slots=True)
class SetDifficulty:
    """``mining.set_difficulty``: the share difficulty for work from now on (may be < 1)."""

    difficulty: float


@dataclass(frozen=True, slots=True)
class SetExtranonce:
    """``mining.set_extranonce``: new coinbase extranonces, for the jobs that follow."""

    extranonce1: bytes
    extranonce2_size: int


@dataclass(frozen=True, slots=True)
class SetVersionMask:
    """``mining.set_version_mask``: the pool changed the rollable bits (BIP 310)."""

    version_mask: int


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The pool's answer to a ``mining.submit``.

    Attributes:
        request_id: the id returned by ``ClientConnection.submit``.
        accepted: whether the pool took the share.
        stale: the pool rejected it as stale (code 21, or a "stale"/"job not found" text).
        code: the pool's error code, when rejected.
        reason: the pool's error text, when rejected.
    """

    request_id: int
    accepted: bool
    stale: bool = False
    code: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Reconnect:
    """``client.reconnect``: the pool asks us to reconnect (host/port None: the same)."""

    host: str | None
    port: int | None
    wait: float


@dataclass(frozen=True, slots=True)
class ShowMessage:
    """``client.show_message``: a human-readable message from the pool operator."""

    text: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A request other than submit/authorize/configure got an error or a false result.

    Attributes:
        method: the method that failed (``mining.subscribe``, ``mining.suggest_difficulty``...).
        reason: the pool's error text.
    """

    method: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The pool sent something malformed or unexpected; the message names it.

    Attributes:
        message: what was wrong, for the log.
        fatal: True when the connection cannot go on (the caller should reconnect);
            False when the message was skipped and the connection goes on.
    """

    message: str
    fatal: bool = False


Event = (
    Configured
    | Subscribed
    | Authorized
    | NewJob
    | SetDifficulty
    | SetExtranonce
    | SetVersionMask
    | ShareResult
    | Reconnect
    | ShowMessage
    | RequestFailed
    | ProtocolError
)
