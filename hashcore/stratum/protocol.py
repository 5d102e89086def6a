"""The Stratum V1 client as a sans-I/O state machine.

Theory of operation
-------------------
A :class:`ClientConnection` holds no socket. The transport feeds it whatever bytes
arrive (:meth:`receive_data`) and pulls typed events out (:meth:`next_event`); every
request method (:meth:`configure`, :meth:`subscribe`, :meth:`authorize`,
:meth:`submit`...) returns the bytes to send. Replies the protocol owes the pool on its
own (``client.get_version``, an error for an unknown request) are collected in an
outbox drained with :meth:`data_to_send`.

Each request gets an id; replies are matched by id in any order. A reply to an id we
never sent, a line that is not JSON, a message of the wrong shape or an unknown method
becomes a non-fatal :class:`~hashcore.stratum.events.ProtocolError` and is skipped; a
line over the length cap or a refused subscription is fatal (the transport reconnects).
No exception caused by the pool's bytes ever escapes this module.

The connection's states and the only legal transitions are in ``_TRANSITIONS``.
Hex text is converted at the edge (:mod:`~hashcore.stratum.fields`): events carry bytes
and ints.

The session state the pool sets (extranonce1 and the extranonce2 size, the version mask
granted, the share difficulty) is kept here and nowhere else. It changes as the event
that sets it is taken from :meth:`next_event`, so a reader between two events sees the
state that holds for the next one, even when one read brought several messages (a
``mining.notify`` before a ``mining.set_extranonce`` is a job of the old extranonce).
"""

from __future__ import annotations

import enum
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from hashcore._version import __version__
from hashcore.errors import HashcoreError
from hashcore.stratum import events as ev
from hashcore.stratum.fields import BadMessage, hex_bytes, hex_u32, job_from_notify
from hashcore.stratum.jsonrpc import DEFAULT_MAX_LINE, LineBuffer, Overflow, decode, encode, error_text, printable
from hashcore.work import DEFAULT_VERSION_MASK, WorkOrigin

USER_AGENT = f"hashcore/{__version__}"
#: A host name, IPv4 or IPv6 address (a client.reconnect target); nothing else.
_HOST_TEXT = re.compile(r"[A-Za-z0-9._:\-\[\]%]{1,253}")
#: Pool error codes for a stale share (21 "job not found"), as most pools send them.
STALE_CODE = 21


class LocalProtocolError(HashcoreError):
    """We tried to use the protocol wrongly (a bug in the caller, not the pool)."""


class State(enum.Enum):
    IDLE = "idle"  # nothing sent yet (mining.configure may go out here)
    SUBSCRIBING = "subscribing"  # mining.subscribe sent, no answer yet
    SUBSCRIBED = "subscribed"  # extranonce1 known; authorize may still be pending
    AUTHORIZED = "authorized"  # at least one worker authorized: shares may be submitted
    ERROR = "error"  # fatal problem: the transport must reconnect


# (state, what happened) -> new state. Nothing else changes ``ClientConnection.state``.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.IDLE, "send_subscribe"): State.SUBSCRIBING,
    (State.SUBSCRIBING, "subscribed"): State.SUBSCRIBED,
    (State.SUBSCRIBING, "subscribe_failed"): State.ERROR,
    (State.SUBSCRIBED, "authorized"): State.AUTHORIZED,
    (State.AUTHORIZED, "authorized"): State.AUTHORIZED,
    (State.IDLE, "fatal"): State.ERROR,
    (State.SUBSCRIBING, "fatal"): State.ERROR,
    (State.SUBSCRIBED, "fatal"): State.ERROR,
    (State.AUTHORIZED, "fatal"): State.ERROR,
    (State.ERROR, "fatal"): State.ERROR,
}


@dataclass(frozen=True, slots=True)
class _Pending:
    method: str
    detail: Any = None


class ClientConnection:
    """One Stratum V1 client connection's protocol state, with no I/O."""

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, user_agent: str = USER_AGENT) -> None:
        self.state = State.IDLE
        self.user_agent = user_agent
        #: The pool's per-connection coinbase bytes; None until subscribed.
        self.extranonce1: bytes | None = None
        #: How many extranonce2 bytes the miner chooses; 0 until subscribed.
        self.extranonce2_size = 0
        #: The BIP 310 bits the pool lets us roll (only bits we asked for); 0: none.
        self.version_mask = 0
        #: The share difficulty; 1 until the pool says otherwise.
        self.difficulty = 1.0
        self._requested_mask = 0
        self._lines = LineBuffer(max_line)
        self._events: deque[ev.Event] = deque()
        self._outbox = bytearray()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 1

    # --- state -------------------------------------------------------------------------

    def _advance(self, what: str) -> None:
        new = _TRANSITIONS.get((self.state, what))
        if new is None:
            raise LocalProtocolError(f"{what!r} is not allowed in state {self.state.value}")
        self.state = new

    def _fail(self, message: str) -> None:
        self._advance("fatal")
        self._events.append(ev.ProtocolError(message, fatal=True))

    # --- requests (each returns the bytes to send) -------------------------------------

    def _request(self, method: str, params: list[Any], detail: Any = None) -> tuple[int, bytes]:
        if self.state is State.ERROR:
            raise LocalProtocolError(f"cannot send {method}: the connection is in the error state")
        request_id = self._next_id
        self._next_id += 1
        self._pending[request_id] = _Pending(method, detail)
        return request_id, encode({"id": request_id, "method": method, "params": params})

    def configure(self, version_mask: int = DEFAULT_VERSION_MASK, min_bit_count: int = 2) -> bytes:
        """``mining.configure`` asking for BIP 310 version rolling (send before subscribe)."""
        self._requested_mask = version_mask
        options = {"version-rolling.mask": f"{version_mask:08x}", "version-rolling.min-bit-count": min_bit_count}
        return self._request("mining.configure", [["version-rolling"], options])[1]

    def subscribe(self, session_id: str | None = None) -> bytes:
        """``mining.subscribe``; ``session_id`` asks the pool to resume an earlier session."""
        params: list[Any] = [self.user_agent]
        if session_id:
            params.append(session_id)
        data = self._request("mining.subscribe", params)[1]
        self._advance("send_subscribe")
        return data

    def authorize(self, user: str, password: str = "x") -> bytes:
        if self.state not in (State.SUBSCRIBING, State.SUBSCRIBED, State.AUTHORIZED):
            raise LocalProtocolError("authorize needs mining.subscribe first")
        return self._request("mining.authorize", [user, password], detail=user)[1]

    def extranonce_subscribe(self) -> bytes:
        """``mining.extranonce.subscribe``: allow the pool to send ``mining.set_extranonce``."""
        return self._request("mining.extranonce.subscribe", [])[1]

    def suggest_difficulty(self, difficulty: float) -> bytes:
        return self._request("mining.suggest_difficulty", [difficulty])[1]

    def submit(self, user: str, origin: WorkOrigin, nonce: int) -> tuple[int, bytes]:
        """``mining.submit``; returns the request id (its ShareResult carries it) and bytes."""
        if self.state is not State.AUTHORIZED:
            raise LocalProtocolError(f"cannot submit in state {self.state.value}")
        params: list[Any] = [
            user,
            origin.job_id,
            origin.extranonce2.hex(),
            f"{origin.ntime:08x}",
            f"{nonce:08x}",
        ]
        if origin.version_bits is not None:
            params.append(f"{origin.version_bits:08x}")
        return self._request("mining.submit", params)

    @property
    def pending_requests(self) -> int:
        return len(self._pending)

    # --- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the pool; events become available from :meth:`next_event`."""
        for item in self._lines.feed(data):
            if isinstance(item, Overflow):
                self._fail(f"line longer than {self._lines.max_line} bytes ({item.size} bytes so far)")
                continue
            try:
                self._handle(decode(item))
            except (ValueError, BadMessage) as exc:
                self._events.append(ev.ProtocolError(f"{exc} in {_preview(item)}"))
            except Exception as exc:  # the promise: nothing the pool sends raises out of here
                self._events.append(ev.ProtocolError(f"unhandled {type(exc).__name__} in {_preview(item)}"))

    def next_event(self) -> ev.Event | None:
        """The next event, or None when more data is needed; the session state takes
        what the event sets as it leaves."""
        if not self._events:
            return None
        event = self._events.popleft()
        if isinstance(event, (ev.Subscribed, ev.SetExtranonce)):
            self.extranonce1, self.extranonce2_size = event.extranonce1, event.extranonce2_size
        elif isinstance(event, (ev.Configured, ev.SetVersionMask)):
            self.version_mask = event.version_mask
        elif isinstance(event, ev.SetDifficulty):
            self.difficulty = event.difficulty
        return event

    def data_to_send(self) -> bytes:
        """Replies owed to the pool (get_version, errors for unknown requests)."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def _handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is not None:
            if not isinstance(method, str):
                raise BadMessage(f"method is {type(method).__name__}, not a string")
            self._handle_request(method, message.get("params"), message.get("id"))
            return
        if "id" not in message:
            raise BadMessage("message with neither method nor id")
        request_id = message["id"]
        if isinstance(request_id, str) and request_id.isascii() and request_id.isdigit() and len(request_id) < 20:
            request_id = int(request_id)  # some pools echo ids as strings
        pending = self._pending.pop(request_id, None) if _hashable(request_id) else None
        if pending is None:
            raise BadMessage(f"reply to unknown request id {request_id!r}")
        self._handle_reply(request_id, pending, message.get("result"), message.get("error"))

    # --- replies to our requests ------------------------------------------------------

    def _handle_reply(self, request_id: int, pending: _Pending, result: Any, error: Any) -> None:
        method = pending.method
        failed = error is not None or result is False or result is None
        reason = error_text(error)[1] if error is not None else f"result {result!r}"
        if method == "mining.configure":
            self._on_configure(result if not failed else None)
        elif method == "mining.subscribe":
            if failed:
                self._advance("subscribe_failed")
                self._events.append(ev.ProtocolError(f"mining.subscribe refused: {reason}", fatal=True))
            else:
                self._on_subscribe(result)
        elif method == "mining.authorize":
            accepted = not failed and result is True
            if accepted and self.state in (State.SUBSCRIBED, State.AUTHORIZED):
                self._advance("authorized")
            elif accepted:
                raise BadMessage("mining.authorize answered before mining.subscribe")
            self._events.append(ev.Authorized(pending.detail, accepted, None if accepted else reason))
        elif method == "mining.submit":
            self._events.append(_share_result(request_id, result, error))
        elif failed:
            self._events.append(ev.RequestFailed(method, reason))

    def _on_configure(self, result: Any) -> None:
        granted = 0
        if isinstance(result, dict) and result.get("version-rolling") is True:
            mask_hex = result.get("version-rolling.mask", f"{self._requested_mask:08x}")
            try:
                granted = hex_u32(mask_hex, "version-rolling.mask") & self._requested_mask
            except BadMessage as exc:
                self._events.append(ev.ProtocolError(f"mining.configure: {exc}"))
        self._events.append(ev.Configured(granted))

    def _on_subscribe(self, result: Any) -> None:
        if not isinstance(result, list) or len(result) < 3:
            self._advance("subscribe_failed")
            self._events.append(ev.ProtocolError(f"mining.subscribe: bad result {result!r:.200}", fatal=True))
            return
        try:
            extranonce1 = hex_bytes(result[1], "extranonce1")
            size = _extranonce2_size(result[2])
        except BadMessage as exc:
            self._advance("subscribe_failed")
            self._events.append(ev.ProtocolError(f"mining.subscribe: {exc}", fatal=True))
            return
        self._advance("subscribed")
        self._events.append(ev.Subscribed(extranonce1, size, _session_id(result[0])))

    # --- requests and notifications from the pool -------------------------------------

    def _handle_request(self, method: str, params: Any, request_id: Any) -> None:
        handler = _POOL_METHODS.get(method)
        if handler is None:
            if request_id is not None:
                error = [20, f"unknown method {method}", None]
                self._outbox += encode({"id": request_id, "result": None, "error": error})
            raise BadMessage(f"unknown method {method!r}")
        if not isinstance(params, list):
            if params is None and method in ("client.get_version", "client.reconnect", "mining.ping"):
                params = []
            else:
                raise BadMessage(f"{method}: params must be a list, got {type(params).__name__}")
        try:
            event = handler(self, params)
        except BadMessage as exc:
            raise BadMessage(f"{method}: {exc}") from exc
        if method == "client.get_version" and request_id is not None:
            self._outbox += encode({"id": request_id, "result": self.user_agent, "error": None})
        elif method == "mining.ping" and request_id is not None:
            self._outbox += encode({"id": request_id, "result": "pong", "error": None})
        if event is not None:
            self._events.append(event)

    def _on_notify(self, params: list[Any]) -> ev.Event:
        return ev.NewJob(job_from_notify(params))

    def _on_set_difficulty(self, params: list[Any]) -> ev.Event:
        if not params:
            raise BadMessage("no difficulty given")
        difficulty = params[0]
        if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)):
            raise BadMessage(f"difficulty {difficulty!r} is not a number")
        if not math.isfinite(difficulty) or difficulty <= 0:
            raise BadMessage(f"difficulty {difficulty!r} is not a positive number")
        return ev.SetDifficulty(float(difficulty))

    def _on_set_extranonce(self, params: list[Any]) -> ev.Event:
        if len(params) < 2:
            raise BadMessage("needs extranonce1 and extranonce2_size")
        extranonce1 = hex_bytes(params[0], "extranonce1")
        return ev.SetExtranonce(extranonce1, _extranonce2_size(params[1]))

    def _on_set_version_mask(self, params: list[Any]) -> ev.Event:
        if not params:
            raise BadMessage("no mask given")
        # The pool may narrow or change the mask, but we only ever roll bits we asked for.
        return ev.SetVersionMask(hex_u32(params[0], "mask") & self._requested_mask)

    def _on_reconnect(self, params: list[Any]) -> ev.Event:
        host = params[0] if len(params) > 0 and params[0] else None
        port: int | None = None
        if len(params) > 1 and params[1] not in (None, ""):
            try:
                port = int(params[1])
            except (TypeError, ValueError):
                raise BadMessage(f"port {params[1]!r} is not a number") from None
            if not 0 < port < 65536:
                raise BadMessage(f"port {port} out of range")
        wait = 0.0
        if len(params) > 2 and isinstance(params[2], (int, float)) and not isinstance(params[2], bool):
            wait = min(max(float(params[2]), 0.0), 3600.0)
        if host is not None and not (isinstance(host, str) and _HOST_TEXT.fullmatch(host)):
            raise BadMessage(f"host {printable(host, 80)!r} is not a host name or address")
        return ev.Reconnect(host, port, wait)

    def _on_show_message(self, params: list[Any]) -> ev.Event:
        return ev.ShowMessage(printable(params[0]) if params else "")

    def _on_get_version(self, params: list[Any]) -> None:
        return None


_POOL_METHODS = {
    "mining.notify": ClientConnection._on_notify,
    "mining.set_difficulty": ClientConnection._on_set_difficulty,
    "mining.set_extranonce": ClientConnection._on_set_extranonce,
    "mining.set_version_mask": ClientConnection._on_set_version_mask,
    "client.reconnect": ClientConnection._on_reconnect,
    "client.show_message": ClientConnection._on_show_message,
    "client.get_version": ClientConnection._on_get_version,
    "mining.ping": ClientConnection._on_get_version,
}


# --- conversions at the Stratum edge -----------------------------------------------------


def _extranonce2_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise BadMessage(f"extranonce2_size {value!r} is not between 1 and 32")
    return value


def _session_id(subscriptions: Any) -> str | None:
    """The notify subscription id from subscribe's first result item, if any."""
    pairs = subscriptions if isinstance(subscriptions, list) else []
    if len(pairs) == 2 and all(isinstance(x, str) for x in pairs):
        pairs = [pairs]
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2 and pair[0] == "mining.notify" and isinstance(pair[1], str):
            return pair[1]
    return None


def _share_result(request_id: int, result: Any, error: Any) -> ev.ShareResult:
    if error is None and result is True:
        return ev.ShareResult(request_id, True)
    code, text = error_text(error) if error is not None else (None, f"result {result!r}")
    lowered = text.lower()
    stale = code == STALE_CODE or "stale" in lowered or "job not found" in lowered
    return ev.ShareResult(request_id, False, stale=stale, code=code, reason=text)


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _preview(line: bytes, limit: int = 120) -> str:
    text = line[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(line) > limit else ""))
