"""JSON from peers, parsed with a bound on nesting.

``json.loads`` recurses once per level of nesting: a line of 100,000 ``[`` from a pool,
an API client or a browser raises ``RecursionError`` (not ``ValueError``), and a
structure a few hundred levels deep parses but then breaks whatever walks it (``repr``,
the handlers). Every message the protocols here expect is at most a few levels deep, so
anything deeper than :data:`MAX_DEPTH` is refused as malformed, with a ``ValueError``
that says so.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting accepted. Stratum messages are 3-4 levels deep (a notify's merkle
#: branch inside params inside the message); API and dashboard bodies fewer.
MAX_DEPTH = 32


def loads(data: bytes | str, max_depth: int = MAX_DEPTH, *, reject_duplicates: bool = False) -> Any:
    """Parse JSON text; ValueError (never RecursionError) when malformed or too deep.

    With ``reject_duplicates`` an object naming a key twice is malformed too: parsers
    disagree on which of the two counts, so a request's meaning is never a guess."""
    if _bracket_depth(data, max_depth) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(data, object_pairs_hook=_unique_keys) if reject_duplicates else json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key[:40]!r} appears twice in one object")
        result[key] = value
    return result


def _bracket_depth(data: bytes | str, limit: int) -> int:
    """An upper bound of the nesting depth: open brackets counted outside strings.

    Cheap where it matters: a line without many brackets returns at once.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest
