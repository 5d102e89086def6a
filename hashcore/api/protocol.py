"""The cgminer RPC API wire format, without sockets.

Theory of operation
-------------------
A client opens a TCP connection, sends one request and reads one reply; the server
closes the connection after the reply (cgminer's API-README). A request is either JSON,
``{"command": "summary", "parameter": ""}``, or plain text, ``summary`` or
``switchpool|1``. Several report commands may be joined with ``+``
(``summary+pools``); the JSON reply then holds one key per command, each a list with
that command's own reply, and the text reply puts ``CMD=name|`` before each one.

Every reply is a ``STATUS`` section (``STATUS`` S/W/I/E/F, ``When``, ``Code``, ``Msg``,
``Description``) followed by the command's own sections. JSON replies end with
``"id":1``; text replies are ``key=value`` pairs joined with ``,``, one row per ``|``,
with ``| , = \\`` escaped by a backslash. On the wire the server adds a NUL byte after
the reply, as cgminer does.

:class:`RequestReader` frames one request from the bytes a connection delivers;
:func:`parse_request` turns it into commands; :class:`Reply` and :func:`render` build
the bytes to send. Nothing here reads a clock except :func:`status` (``When``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

from hashcore import boundedjson

#: The largest request accepted; cgminer reads at most 8191 bytes.
MAX_REQUEST = 8192

#: The API version reported by ``version`` (cgminer 4.11's, whose fields this follows).
API_VERSION = "3.7"


class Severity(StrEnum):
    SUCCESS = "S"
    INFO = "I"
    WARNING = "W"
    ERROR = "E"
    FATAL = "F"


class Code(IntEnum):
    """Status codes: cgminer's numbers where cgminer has the message, hashcore's above 1000."""

    POOL = 7
    DEVS = 9
    NODEVS = 10
    SUMMARY = 11
    INVALID_COMMAND = 14
    VERSION = 22
    INVALID_JSON = 23
    MISSING_COMMAND = 24
    MISSING_POOL_ID = 25
    INVALID_POOL_ID = 26
    SWITCHED_POOL = 27
    CONFIG = 33
    ACCESS_DENIED = 45
    ACCESS_OK = 46
    ENABLED_POOL = 47
    DISABLED_POOL = 48
    ALREADY_ENABLED_POOL = 49
    ALREADY_DISABLED_POOL = 50
    LAST_POOL = 51
    MISSING_POOL_DETAILS = 52
    INVALID_POOL_DETAILS = 53
    ADDED_POOL = 55
    DEVDETAILS = 69
    STATS = 70
    MISSING_CHECK = 71
    CHECK = 72
    COIN = 78
    BYE = 257
    PAUSED = 1000
    RESUMED = 1001
    POWER_TARGET = 1002
    NO_THROTTLE = 1003
    INVALID_POWER_TARGET = 1004
    REQUEST_TOO_LARGE = 1005
    POWER = 1006
    NO_QUIT = 1007
    ADDED_POOL_OTHER_USER = 1008
    FAILED = 1009
    TOO_MANY_POOLS = 1010


@dataclass(frozen=True, slots=True)
class Status:
    """The STATUS row of a reply."""

    severity: Severity
    code: Code
    message: str
    when: int
    description: str

    def row(self) -> dict[str, Any]:
        return {
            "STATUS": self.severity.value,
            "When": self.when,
            "Code": int(self.code),
            "Msg": self.message,
            "Description": self.description,
        }


def status(severity: Severity, code: Code, message: str, description: str, when: int | None = None) -> Status:
    return Status(severity, code, message, int(time.time()) if when is None else when, description)


@dataclass(frozen=True, slots=True)
class Section:
    """A named list of rows (``SUMMARY``, ``POOLS``...).

    ``keyed`` rows start with their own id field (``POOL=0,...``); other rows are
    introduced by the section name in the text form (``SUMMARY,Elapsed=...``).
    """

    name: str
    rows: list[dict[str, Any]]
    keyed: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """One command's reply: its status and sections (none for most write commands)."""

    status: Status
    sections: list[Section] = field(default_factory=list)
    #: The text form is this literal instead (cgminer answers ``quit`` with ``BYE``).
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    parameter: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: one command, or several joined with ``+``."""

    commands: tuple[Command, ...]
    json: bool
    joined: bool


class RequestError(Exception):
    """A request that cannot be parsed; the reply is this status, in the request's form."""

    def __init__(self, code: Code, message: str, json_form: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.json_form = code, message, json_form


# --- framing -----------------------------------------------------------------------------


class RequestReader:
    """Collects one request from a connection's bytes.

    A request ends at end of stream, at a NUL byte or, for the text form, at a newline.
    A JSON request ends as soon as the bytes read parse as a JSON object (clients such
    as pyasic send it and wait without closing their side); a pretty-printed JSON
    request may hold newlines. The transport also ends a request after a quiet spell
    (cgminer reads a single ``recv``), see :meth:`finish`.
    """

    def __init__(self, max_size: int = MAX_REQUEST) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._done = False
        self.oversized = False

    @property
    def done(self) -> bool:
        return self._done

    @property
    def empty(self) -> bool:
        return not self._buffer.strip()

    def feed(self, data: bytes) -> None:
        if self._done:
            return
        self._buffer += data
        end = self._buffer.find(b"\x00")
        if end >= 0:
            del self._buffer[end:]
            self._done = True
        elif self._buffer.lstrip()[:1] == b"{":
            self._done = _is_json_object(bytes(self._buffer))
        elif b"\n" in self._buffer:
            del self._buffer[self._buffer.find(b"\n") :]
            self._done = True
        if len(self._buffer) > self.max_size:
            self.oversized = self._done = True

    def finish(self) -> None:
        """End of stream or a quiet spell: what arrived is the request."""
        self._done = True

    @property
    def looks_like_json(self) -> bool:
        return self._buffer.lstrip()[:1] == b"{"

    def request(self) -> bytes:
        return bytes(self._buffer)


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(boundedjson.loads(data), dict)
    except ValueError:  # not yet complete, or never will be: the request ends another way
        return False


# --- parsing -----------------------------------------------------------------------------


def parse_request(data: bytes) -> Request:
    """Parse one request; raises :class:`RequestError` with the status to answer."""
    text = data.decode("utf-8", errors="replace").strip().strip("\x00").strip()
    if text.startswith("{"):
        return _parse_json(text)
    name, _, parameter = text.partition("|")
    return _request(name, parameter, json_form=False)


def _parse_json(text: str) -> Request:
    try:
        # A client's "[[[[..." is refused, never a RecursionError; so is a key given twice
        # ({"command": "summary", "command": "quit"}), whose meaning would be a guess.
        body = boundedjson.loads(text, reject_duplicates=True)
    except ValueError:
        raise RequestError(Code.INVALID_JSON, "Invalid JSON", json_form=True) from None
    if not isinstance(body, dict):
        raise RequestError(Code.INVALID_JSON, "Invalid JSON", json_form=True)
    if "command" not in body:
        raise RequestError(Code.MISSING_COMMAND, "Missing JSON 'command'", json_form=True)
    name = body["command"]
    if not isinstance(name, str):
        raise RequestError(Code.INVALID_COMMAND, "Invalid command", json_form=True)
    parameter = body.get("parameter")
    # cgminer takes a number as its decimal text; anything else counts as absent.
    if isinstance(parameter, bool) or not isinstance(parameter, (str, int, float)):
        parameter = ""
    return _request(name, str(parameter), json_form=True)


def _request(name: str, parameter: str, json_form: bool) -> Request:
    names = [n.strip().lower() for n in name.split("+")]
    if not any(names):
        raise RequestError(Code.INVALID_COMMAND, "Invalid command", json_form=json_form)
    unique = list(dict.fromkeys(n for n in names if n))  # cgminer runs a repeated command once
    commands = tuple(Command(n, parameter) for n in unique)
    return Request(commands, json_form, joined=len(names) > 1)


def split_parameter(parameter: str, separator: str = ",") -> list[str]:
    """Split a parameter on ``separator``; ``\\,`` and ``\\\\`` escape (as cgminer's addpool)."""
    fields: list[str] = []
    current: list[str] = []
    chars = iter(parameter)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == separator:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


# --- rendering ---------------------------------------------------------------------------


def render(request_json: bool, replies: Mapping[str, Reply], joined: bool) -> bytes:
    """The reply bytes (without the trailing NUL the transport adds)."""
    if request_json:
        if joined:
            body: Any = {name: [_json_reply(reply)] for name, reply in replies.items()}
        else:
            body = _json_reply(next(iter(replies.values())))
        return json.dumps(body, separators=(",", ":"), allow_nan=False, default=_plain).encode()
    if joined:
        return "".join(f"CMD={name}|{_text_reply(reply)}" for name, reply in replies.items()).encode()
    return _text_reply(next(iter(replies.values()))).encode()


def render_error(error: RequestError, description: str) -> bytes:
    reply = Reply(status(Severity.ERROR, error.code, error.message, description))
    return render(error.json_form, {"": reply}, joined=False)


def _plain(value: Any) -> Any:
    """A number type json does not know (numpy's) as the plain Python number."""
    item = getattr(value, "item", None)
    if callable(item):
        return _finite(item())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_reply(reply: Reply) -> dict[str, Any]:
    body: dict[str, Any] = {"STATUS": [_json_row(reply.status.row())]}
    for section in reply.sections:
        body[section.name] = [_json_row(row) for row in section.rows]
    body["id"] = 1
    return body


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _finite(value) for key, value in row.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text_reply(reply: Reply) -> str:
    if reply.text is not None:
        return reply.text
    parts = [_text_row(reply.status.row(), None)]
    for section in reply.sections:
        parts.extend(_text_row(row, None if section.keyed else section.name) for row in section.rows)
    return "".join(parts)


def _text_row(row: Mapping[str, Any], label: str | None) -> str:
    fields = [f"{key}={text_value(value)}" for key, value in row.items()]
    if label is not None:
        fields.insert(0, label)
    return ",".join(fields) + "|"


def text_value(value: Any) -> str:
    """A value in the text form: numbers never in exponent notation, text escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return format(Decimal(repr(value)), "f")
    if isinstance(value, int):
        return str(value)
    return escape_text(str(value))


def escape_text(value: str) -> str:
    return "".join("\\" + c if c in "|,=\\" else c for c in value)

