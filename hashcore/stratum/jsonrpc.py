"""Newline-delimited JSON-RPC framing, shared by the client core and the embedded pool.

Stratum V1 sends one JSON object per line. :class:`LineBuffer` cuts a byte stream into
lines with a length cap (a peer that never sends a newline must not make us buffer
without end) and :func:`encode` writes one message as a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hashcore import boundedjson

#: The longest line accepted by default. Real notify lines are a few kilobytes (big
#: coinbases with many outputs reach tens of kilobytes); a megabyte-long line is broken.
DEFAULT_MAX_LINE = 256 * 1024


@dataclass(frozen=True, slots=True)
class Overflow:
    """A line longer than the cap was cut off and thrown away (``size`` bytes so far)."""

    size: int


class LineBuffer:
    """Bytes in, complete lines out; oversized lines are dropped and reported once."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False  # inside an oversized line: drop bytes until newline

    def feed(self, data: bytes) -> list[bytes | Overflow]:
        """Add bytes; return the complete lines (without newline) and overflow notices."""
        out: list[bytes | Overflow] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.max_line:
                    if not self._discarding:
                        out.append(Overflow(len(self._buffer)))
                    self._discarding = True
                    self._buffer.clear()
                return out
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self.max_line:
                out.append(Overflow(len(line)))
                continue
            line = line.strip()
            if line:
                out.append(line)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held so far."""
        return len(self._buffer)


def encode(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message as a compact line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line into a JSON object; raises ValueError naming what is wrong."""
    message = boundedjson.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"a message must be a JSON object, got {type(message).__name__}")
    return message


def error_text(error: Any) -> tuple[int | None, str]:
    """The code and text of a JSON-RPC error in either of the shapes pools use.

    Stratum pools send ``[code, "message", traceback]``; some send a JSON-RPC 2.0 style
    ``{"code": .., "message": ..}``; some a bare string.
    """
    if isinstance(error, list) and error:
        code = error[0] if isinstance(error[0], int) and not isinstance(error[0], bool) else None
        text = error[1] if len(error) > 1 else error[0]
        return code, printable(text)
    if isinstance(error, dict):
        code = error.get("code")
        return (code if isinstance(code, int) and not isinstance(code, bool) else None), printable(
            error.get("message", error)
        )
    return None, printable(error)


#: The longest text from a peer that is shown (a reject reason, a pool's message).
MAX_TEXT = 500


def printable(value: Any, limit: int = MAX_TEXT) -> str:
    """Text from a peer made safe to show on a terminal or in a log line: control
    characters (ESC sequences, NUL, newlines) escaped, at most ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
