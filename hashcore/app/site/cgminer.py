"""The site's link to a miner that serves the cgminer API: hashcore instances, and any
other cgminer-API firmware read only.

Each call opens one TCP connection (cgminer answers one request per connection), sends
one JSON request, reads the reply up to the NUL byte cgminer ends it with (or the
peer's end of stream), at most :data:`MAX_REPLY` bytes, and parses it strictly: UTF-8,
JSON nested at most a few levels, no key named twice, no NaN or infinity anywhere. The
whole call, connection included, has one deadline.

A hashcore instance is steered through its own API: ``powertarget|W`` where it runs a
power-budget throttle (its ``SUMMARY`` then carries ``Power Limit``), ``pause`` and
``resume`` otherwise. Whether the site may write is learnt with ``privileged`` on first
contact, and again after any failure or a restart seen in ``Elapsed`` (the miner may
have come back with other flags). The generic cgminer API has no power target and no
pause, so any other firmware is only read.

Failures are :class:`~hashcore.app.site.links.MinerLinkError`: ``refused`` when nothing
listens at the address, ``timeout`` for everything else (no answer in time, a reset, a
reply cut short, too long, not JSON, of the wrong shape or with figures that cannot be:
negative, beyond a float, or above what one machine draws or hashes).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from decimal import Decimal
from typing import Any

from hashcore import boundedjson
from hashcore.app.site.links import LinkReading, MinerLinkError
from hashcore.errors import ConfigError
from hashcore.listen import parse_listen
from hashcore.throttle.site import (
    MAX_MINER_HASHRATE_HS,
    MAX_MINER_WATTS,
    READ_ONLY,
    REFUSED,
    SLEEP,
    TARGET,
    TIMEOUT,
    MinerReading,
)

#: The longest reply read: a SUMMARY is under 1 KiB, a command's STATUS a few hundred bytes.
MAX_REPLY = 64 * 1024

#: The most a cumulative counter (Energy in J, Total MH) may read: three centuries at the
#: most one machine draws or hashes.
_COUNTER_S = 1e10

#: What each kind of peer is.
KINDS = ("hashcore", "cgminer")

#: cgminer's status code for a write command from a client without ``W:`` access.
ACCESS_DENIED = 45

_OK = ("S", "I")
_READ_OK = ("S", "I", "W")
_SEVERITIES = ("S", "I", "W", "E", "F")

READ_ONLY_CGMINER_NOTE = (
    "the generic cgminer API only reads (it has no power target and no pause); "
    "a hashcore instance takes powertarget|W, pause and resume from a W: client")
NO_BUDGET_NOTE = "no power budget: start it with --power-budget WATTS to take power targets"


class CgminerLink:
    """A miner serving the cgminer API at ``address`` (``host:port``, ``[::1]:4028``).

    Args:
        address: where its API listens.
        kind: ``hashcore`` (read and steered) or ``cgminer`` (any other cgminer-API
            firmware: read only).
        timeout_s: the deadline of each call, from the connection to the parsed reply.

    Raises ConfigError for an address, kind or deadline that cannot be used.
    """

    def __init__(self, address: str, kind: str = "hashcore", *, timeout_s: float = 2.0) -> None:
        if kind not in KINDS:
            raise ConfigError(f"miner {address!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
                math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigError(f"miner {address!r}: timeout_s must be a number of seconds above 0, not {timeout_s!r}")
        self.address = address.strip()
        self.host, self.port = parse_listen(self.address, f"miner address {address!r}")
        if self.port == 0:
            raise ConfigError(f"miner address {address!r}: port 0 is not a port a miner listens on")
        self.kind = kind
        self.timeout_s = float(timeout_s)
        self._write: bool | None = None          # None: not probed since the last failure
        self._local_host: str | None = None      # our address as the miner sees it
        self._elapsed: float | None = None

    # --- the MinerLink contract ----------------------------------------------------------

    async def read(self) -> LinkReading:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            if self.kind == "hashcore" and self._write is None:
                await self._probe(deadline)
            row = await self._summary(deadline)
            elapsed = self._field(row, "Elapsed", _FLOAT_MAX)
            restarted = elapsed is not None and self._elapsed is not None and elapsed < self._elapsed
            self._elapsed = elapsed
            if self.kind == "hashcore" and restarted:
                await self._probe(deadline)
            return self._reading(row)
        except MinerLinkError:
            self._write = None
            raise

    async def set_target(self, watts: float) -> None:
        if isinstance(watts, bool) or not isinstance(watts, (int, float)) or not (math.isfinite(watts) and watts > 0):
            raise ConfigError(f"miner {self.address}: a power target is a number of watts above 0, not {watts!r}")
        await self._command("powertarget", _watts_text(float(watts)))

    async def sleep(self) -> None:
        await self._command("pause")

    async def wake(self) -> None:
        await self._command("resume")

    async def close(self) -> None:
        """Nothing to let go: every call opens and closes its own connection."""

    # --- steering ------------------------------------------------------------------------

    async def _command(self, name: str, parameter: str | None = None) -> None:
        if self.kind != "hashcore":
            raise MinerLinkError(f"miner {self.address}: {name} not sent: {READ_ONLY_CGMINER_NOTE}", TIMEOUT)
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        try:
            body = await self._ask(name, parameter, deadline)
        except MinerLinkError:
            self._write = None
            raise
        severity, code, message = _status(self.address, name, body)
        if severity in _OK:
            return
        if code == ACCESS_DENIED:
            self._write = False
        raise MinerLinkError(f"miner {self.address} refused {name}: {message or 'no message'}", TIMEOUT)

    async def _probe(self, deadline: float) -> None:
        body = await self._ask("privileged", None, deadline)
        severity, code, message = _status(self.address, "privileged", body)
        if severity in _OK:
            self._write = True
        elif code == ACCESS_DENIED:
            self._write = False
        else:
            raise MinerLinkError(f"miner {self.address} answered privileged with {severity}: {message}", TIMEOUT)

    # --- reading -------------------------------------------------------------------------

    async def _summary(self, deadline: float) -> dict[str, Any]:
        body = await self._ask("summary", None, deadline)
        severity, _, message = _status(self.address, "summary", body)
        if severity not in _READ_OK:
            raise MinerLinkError(f"miner {self.address} answered summary with {severity}: {message}", TIMEOUT)
        rows = body.get("SUMMARY")
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            raise MinerLinkError(f"miner {self.address}: its summary reply has no SUMMARY row", TIMEOUT)
        row: dict[str, Any] = rows[0]
        return row

    def _field(self, row: dict[str, Any], key: str, most: float) -> float | None:
        try:
            return _figure(row, key, most)
        except ValueError as exc:
            raise MinerLinkError(f"miner {self.address}: SUMMARY field {exc}", TIMEOUT) from None

    def _reading(self, row: dict[str, Any]) -> LinkReading:
        try:
            watts = _figure(row, "Power", MAX_MINER_WATTS)
            mhs = _figure(row, "MHS 5s", MAX_MINER_HASHRATE_HS / 1e6)
            if mhs is None and self.kind == "cgminer":
                ghs = _figure(row, "GHS 5s", MAX_MINER_HASHRATE_HS / 1e9)  # Bitmain's bmminer reports GH/s
                mhs = None if ghs is None else ghs * 1e3
            total_mh = _figure(row, "Total MH", MAX_MINER_HASHRATE_HS / 1e6 * _COUNTER_S)
            energy = _figure(row, "Energy", MAX_MINER_WATTS * _COUNTER_S)
            limit = _figure(row, "Power Limit", _FLOAT_MAX)  # the operator's own --power-budget
            paused = row.get("Paused", False)
            if not isinstance(paused, bool):
                raise ValueError(f"Paused is {_shown(paused)}, not true or false")
            source = row.get("Energy Source")
            if source is not None and not isinstance(source, str):
                raise ValueError(f"Energy Source is {_shown(source)}, not text")
        except ValueError as exc:
            raise MinerLinkError(f"miner {self.address}: SUMMARY field {exc}", TIMEOUT) from None
        control, note = self._control("Power Limit" in row)
        reading = MinerReading(
            watts=watts,
            hashrate_hs=None if mhs is None else mhs * 1e6,
            asleep=paused,
            control=control,
            target_w=limit if control == TARGET else None,
        )
        return LinkReading(
            reading,
            energy_j=energy,
            hashes=None if total_mh is None else total_mh * 1e6,
            energy_source=None if source in (None, "", "none") else source[:40],
            note=note,
        )

    def _control(self, throttled: bool) -> tuple[str, str]:
        if self.kind != "hashcore":
            return READ_ONLY, READ_ONLY_CGMINER_NOTE
        if not self._write:
            return READ_ONLY, f"no write access: start it with --api-allow W:{self._local_host or '<the site address>'}"
        if throttled:
            return TARGET, ""
        return SLEEP, NO_BUDGET_NOTE

    # --- one request -----------------------------------------------------------------------

    async def _ask(self, command: str, parameter: str | None, deadline: float) -> dict[str, Any]:
        """Send one request on its own connection; the reply as a JSON object."""
        request: dict[str, str] = {"command": command}
        if parameter is not None:
            request["parameter"] = parameter
        data = await self._exchange(json.dumps(request).encode(), command, deadline)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MinerLinkError(f"miner {self.address}: its {command} reply is not UTF-8 "
                                 f"(byte {exc.start})", TIMEOUT) from None
        try:
            body = boundedjson.loads(text, reject_duplicates=True)
            _all_finite(body)
        except ValueError as exc:
            raise MinerLinkError(f"miner {self.address}: its {command} reply is not valid JSON: "
                                 f"{_one_line(str(exc))}", TIMEOUT) from None
        if not isinstance(body, dict):
            raise MinerLinkError(f"miner {self.address}: its {command} reply is not a JSON object", TIMEOUT)
        return body

    async def _exchange(self, request: bytes, command: str, deadline: float) -> bytes:
        loop = asyncio.get_running_loop()
        transport: asyncio.Transport | None = None
        protocol: _OneReply | None = None
        try:
            async with asyncio.timeout_at(deadline):
                connected = await loop.create_connection(lambda: _OneReply(request, MAX_REPLY), self.host, self.port)
                transport, protocol = connected
                sockname = transport.get_extra_info("sockname")
                if sockname:
                    self._local_host = str(sockname[0])
                return await protocol.reply
        except ConnectionRefusedError:
            raise MinerLinkError(f"miner {self.address} refused the connection: nothing listens there",
                                 REFUSED) from None
        except TimeoutError:
            raise MinerLinkError(f"miner {self.address}: no {command} reply within {self.timeout_s:g} s",
                                 TIMEOUT) from None
        except _ReplyTooLong:
            raise MinerLinkError(f"miner {self.address}: its {command} reply is over {MAX_REPLY // 1024} KiB",
                                 TIMEOUT) from None
        except _NoReply:
            raise MinerLinkError(f"miner {self.address} closed the connection without a {command} reply "
                                 "(is the site's address in its --api-allow?)", TIMEOUT) from None
        except (OSError, ValueError) as exc:  # a reset, an unreachable host, a name that does not resolve
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise MinerLinkError(f"miner {self.address}: {command} failed: {_one_line(reason)}", TIMEOUT) from None
        finally:
            if protocol is not None and not protocol.reply.done():
                protocol.reply.cancel()  # what comes after the deadline has no one to hear it
            if transport is not None:
                transport.abort()  # the reply is whole (or given up): no lingering close


class _ReplyTooLong(Exception):
    pass


class _NoReply(Exception):
    pass


class _OneReply(asyncio.Protocol):
    """Sends one request and collects the reply up to a NUL byte or the peer's end."""

    def __init__(self, request: bytes, limit: int) -> None:
        self._request = request
        self._limit = limit
        self._buffer = bytearray()
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.reply.done():
            return
        end = data.find(b"\x00")
        self._buffer += data if end < 0 else data[:end]
        if len(self._buffer) > self._limit:
            self.reply.set_exception(_ReplyTooLong())
        elif end >= 0:
            self.reply.set_result(bytes(self._buffer))

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            if exc is not None:
                self.reply.set_exception(exc)
            else:
                self._finish()

    def _finish(self) -> None:
        if self.reply.done():
            return
        if self._buffer.strip():
            self.reply.set_result(bytes(self._buffer))
        else:
            self.reply.set_exception(_NoReply())


# --- the reply's pieces ------------------------------------------------------------------


def _status(address: str, command: str, body: dict[str, Any]) -> tuple[str, int | None, str]:
    """The STATUS row's severity, code and message; MinerLinkError when it has none."""
    rows = body.get("STATUS")
    row = rows[0] if isinstance(rows, list) and rows else None
    severity = row.get("STATUS") if isinstance(row, dict) else None
    if not isinstance(row, dict) or severity not in _SEVERITIES:
        raise MinerLinkError(f"miner {address}: its {command} reply has no STATUS", TIMEOUT)
    code = row.get("Code")
    message = row.get("Msg")
    return (str(severity),
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            _one_line(message) if isinstance(message, str) else "")


def _figure(row: dict[str, Any], key: str, most: float) -> float | None:
    """A figure of a row: None where absent or null; ValueError where not a number from 0
    to ``most`` (a figure above what one machine draws or hashes is the miner's nonsense)."""
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} is {_shown(value)}, not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{key} is {_shown(value)}, not a finite number >= 0")
    if number > most:
        raise ValueError(f"{key} is {_shown(value)}, above {most:g}: no one machine reports that")
    return number


def _all_finite(value: Any) -> None:
    """ValueError where a number is NaN or infinite (JSON has neither; ``1e400`` overflows)
    or an integer too large for a float (a few hundred digits).

    The walk is as deep as the parse allowed (:data:`hashcore.boundedjson.MAX_DEPTH`)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _FLOAT_MAX:
            raise ValueError(f"an integer of {len(str(abs(value)))} digits is beyond any figure")
    elif isinstance(value, dict):
        for item in value.values():
            _all_finite(item)
    elif isinstance(value, list):
        for item in value:
            _all_finite(item)


_FLOAT_MAX = sys.float_info.max


def _watts_text(watts: float) -> str:
    """Watts as the decimal text cgminer parameters are: ``12.5``, never ``1e+03``."""
    return format(Decimal(repr(watts)), "f")


def _shown(value: Any) -> str:
    return _one_line(json.dumps(value) if not isinstance(value, float) else repr(value), 40)


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
