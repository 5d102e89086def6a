"""The site's link to the miner firmwares pyasic knows: :class:`PyasicLink`.

A :class:`~hashcore.app.site.links.MinerLink` over pyasic's miner classes (optional: the
``site`` extra, ``pip install 'hashcore[site]'``).

**Kinds.** A ``[[miners]]`` entry's ``kind`` names its firmware, each mapped to the
``pyasic.miners.factory.MinerTypes`` it accepts (:data:`PYASIC_KINDS`): one kind a type
(``braiins``, ``luxos``, ``vnish``, ``antminer`` for Bitmain's stock firmware,
``whatsminer``, ``avalon``, ``bitaxe``, ...), ``espminer`` for both ESP-Miner boards, and
``pyasic`` for whatever pyasic detects. The firmware pyasic detects must be one the kind
accepts; a mismatch fails every read with a message naming both.

**Control.** Decided from the pyasic class the miner gets (:func:`pyasic_control`):
:data:`~hashcore.throttle.site.TARGET` where that class implements ``set_power_limit``
(overrides pyasic's base method), :data:`~hashcore.throttle.site.SLEEP` where it
implements only ``stop_mining`` and ``resume_mining``,
:data:`~hashcore.throttle.site.READ_ONLY` otherwise. With pyasic 0.79: Braiins OS (both
classes), LuxOS and VNish (the highest tuned preset at or below the target), Whatsminer
(API v2 and v3), Auradine and Marathon take a target; stock Antminers with the web
interface (sleep mode), Hiveon's modern class, ePIC, Goldshell and Avalon sleep and
wake (Avalon's ``set_power_limit`` picks a work level 0-2, not watts, so it is not
taken as a target); old stock Antminers, Innosilicon, MSKMiner, BitAxe, LuckyMiner,
IceRiver, Hammer, VolcMiner, Elphapex, Fluminer and pyasic's generic ``CGMiner`` class
are read only.

**Ports and credentials.** pyasic detects a firmware by probing the host's ports 4028
(cgminer API), 80 and 443 (HTTP). An address without a port, or with port 4028, is
detected that way. Any other port (a forwarded one) cannot be probed, so the kind must
name one firmware: the link builds pyasic's generic class of that firmware and points its
cgminer API (or, for a firmware pyasic reaches over HTTP only, its web API) at the port.
``username`` goes to the web API; ``password`` to the web, cgminer (Whatsminer's
privileged commands) and SSH APIs, wherever the class has one. Neither is ever logged or
put in a message.

**Failures.** Every call ends within ``timeout_s``, even a pyasic call that ignores its
cancellation. pyasic swallows most connection errors and answers with empty data, so an
empty answer, or a ``False`` from a command, is followed by a connection attempt to the
miner's API port: a refused connection is :data:`~hashcore.throttle.site.REFUSED`
(nothing listens there), as is a ``ConnectionRefusedError`` anywhere in an exception's
chain; everything else is :data:`~hashcore.throttle.site.TIMEOUT`. pyasic's and httpx's
exceptions never leave this module except as the cause of a
:class:`~hashcore.app.site.links.MinerLinkError`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import math
import socket
import sys
from collections.abc import Awaitable, Iterable, Mapping
from types import MappingProxyType, ModuleType
from typing import Any

from hashcore.app.site.links import LinkReading, MinerLinkError
from hashcore.errors import ConfigError
from hashcore.listen import parse_listen
from hashcore.throttle.site import READ_ONLY, REFUSED, SLEEP, TARGET, TIMEOUT, MinerReading
from hashcore.throttle.site.rules import MAX_MINER_HASHRATE_HS, MAX_MINER_WATTS

#: The port of the cgminer API, the one pyasic's detection probes besides HTTP's.
PYASIC_RPC_PORT = 4028

#: A firmware kind and the pyasic MinerTypes member it names.
_FIRMWARES: Mapping[str, str] = MappingProxyType({
    "braiins": "BRAIINS_OS",
    "luxos": "LUX_OS",
    "vnish": "VNISH",
    "epic": "EPIC",
    "hiveon": "HIVEON",
    "marathon": "MARATHON",
    "mskminer": "MSKMINER",
    "antminer": "ANTMINER",
    "whatsminer": "WHATSMINER",
    "avalon": "AVALONMINER",
    "auradine": "AURADINE",
    "goldshell": "GOLDSHELL",
    "innosilicon": "INNOSILICON",
    "iceriver": "ICERIVER",
    "hammer": "HAMMER",
    "volcminer": "VOLCMINER",
    "elphapex": "ELPHAPEX",
    "fluminer": "FLUMINER",
    "bitaxe": "BITAXE",
    "luckyminer": "LUCKYMINER",
})

#: The kind that accepts whatever firmware pyasic detects.
ANY_FIRMWARE = "pyasic"

#: Every kind this link serves and the pyasic MinerTypes it accepts (empty: any).
PYASIC_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    **{kind: (miner_type,) for kind, miner_type in _FIRMWARES.items()},
    "espminer": ("BITAXE", "LUCKYMINER"),
    ANY_FIRMWARE: (),
})

#: What a read asks pyasic for: nothing else is gathered.
_READ_ITEMS = ("hashrate", "wattage", "wattage_limit", "is_mining")

#: pyasic classes whose ``set_power_limit`` does not set watts (Avalon: a work level 0-2).
_NOT_A_WATT_TARGET = ("AvalonMiner",)

#: The longest detail of a lower-layer error put into a message.
_DETAIL_CHARS = 200

_CONTROL_NOTES = {
    TARGET: "power target, sleep and wake",
    SLEEP: "sleep and wake only: pyasic sets no power target on it",
    READ_ONLY: "read only: pyasic cannot curtail it",
}


def _pyasic(address: str, kind: str) -> ModuleType:
    """pyasic itself, or the error that says how to install it."""
    try:
        import pyasic
    except ImportError as error:
        raise ConfigError(f"miner {address} kind {kind} needs pyasic: pip install 'hashcore[site]'") from error
    return pyasic


def pyasic_control(miner: object) -> str:
    """How the site can steer a miner through its pyasic class (see the module's notes)."""
    from pyasic.miners.backends.unknown import UnknownMiner
    from pyasic.miners.base import BaseMiner, MinerProtocol

    placeholders = (MinerProtocol, BaseMiner, UnknownMiner)
    mro = type(miner).__mro__

    def implements(method: str) -> bool:
        owner = next((cls for cls in mro if method in vars(cls)), None)
        return owner is not None and owner not in placeholders

    watt_target = not any(cls.__name__ in _NOT_A_WATT_TARGET for cls in mro)
    if implements("set_power_limit") and watt_target:
        return TARGET
    if implements("stop_mining") and implements("resume_mining"):
        return SLEEP
    return READ_ONLY


@functools.cache
def _types_by_class_name() -> Mapping[str, str]:
    # Class names are unique across pyasic's table; by name, since Whatsminer's classes
    # rebuild themselves on a v2 or v3 base when made (BTMiner.__new__).
    from pyasic.miners.factory import MINER_CLASSES

    return {cls.__name__: miner_type.name for miner_type, classes in MINER_CLASSES.items() for cls in classes.values()}


def detected_type(miner: object) -> str | None:
    """The pyasic MinerTypes name of a miner object pyasic made, None if not in its table."""
    return _types_by_class_name().get(type(miner).__name__)


def firmware_name(miner_type: str) -> str:
    """The kind that names one pyasic MinerTypes member (its own name, lower case, if none)."""
    for kind, named in _FIRMWARES.items():
        if named == miner_type:
            return kind
    return miner_type.lower()


def _split_address(address: str) -> tuple[str, int | None]:
    text = address.strip()
    if not text or len(text) > 300 or text.startswith(":") or any(char.isspace() for char in text):
        raise ConfigError(f"miner address {address[:80]!r} must be HOST or HOST:PORT")
    if ":" not in text or (text.count(":") > 1 and not text.startswith("[")):
        return text, None  # no port (a bare IPv6 address has no room for one)
    host, port = parse_listen(text, f"miner address {address!r}")
    if port == 0:
        raise ConfigError(f"miner address {address!r}: port 0 is no miner's port")
    return host, port


def _refused_in(error: BaseException) -> bool:
    """Whether a ConnectionRefusedError is anywhere in an error's causes, contexts or group."""
    stack, seen = [error], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


async def _port_refuses(host: str, port: int, seconds: float) -> bool:
    """Whether a connection to host:port is refused (nothing listens) within ``seconds``."""
    if seconds <= 0:
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), seconds)
    except ConnectionRefusedError:
        return True
    except (OSError, TimeoutError):
        return False
    writer.close()
    return False


def _number(value: object, most: float = math.inf) -> float | None:
    """A finite number from 0 to ``most`` from pyasic, else None (absent, or nonsense from the miner)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > sys.float_info.max:
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= most else None


def hashrate_hs(hashrate: Any) -> float | None:
    """A pyasic hashrate (an AlgoHashRateType: a rate in a unit) in H/s; None if absent.

    pyasic's unit enums count hashes a second (``H = 1``, ``TH = 10**12``), so the rate
    times its unit's value is H/s, whatever unit the class carries.
    """
    if hashrate is None:
        return None
    rate, unit = _number(getattr(hashrate, "rate", None)), getattr(hashrate, "unit", None)
    if rate is None or not isinstance(unit, int):
        return None
    return _number(rate * int(unit), MAX_MINER_HASHRATE_HS)


class PyasicLink:
    """One miner whose firmware pyasic knows (see the module's notes).

    Args:
        address: ``HOST`` or ``HOST:PORT`` (``[IPv6]:PORT``); a port other than 4028
            skips pyasic's detection and needs a kind naming one firmware.
        kind: one of :data:`PYASIC_KINDS`.
        username / password: the miner's login where its firmware asks for one (else
            pyasic's defaults).
        timeout_s: the deadline of every call, firmware detection included.

    Raises:
        ConfigError: an unknown kind, a bad address or deadline, a forwarded port with a
            kind that needs detection, or pyasic not installed.
    """

    def __init__(self, address: str, kind: str, *, username: str | None = None, password: str | None = None,
                 timeout_s: float = 5.0) -> None:
        name = kind.strip().lower()
        if name not in PYASIC_KINDS:
            raise ConfigError(f"miner {address} kind {kind!r} is not one pyasic serves; one of: "
                              + ", ".join(sorted(PYASIC_KINDS)))
        host, port = _split_address(address)
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigError(f"miner {address} timeout_s must be a number of seconds above 0, not {timeout_s!r}")
        accepted = PYASIC_KINDS[name]
        if port not in (None, PYASIC_RPC_PORT) and len(accepted) != 1:
            raise ConfigError(f"miner {address} kind {name!r}: pyasic detects firmware on ports 4028, 80 and 443 "
                              "only; a miner at another port needs the kind of its firmware")
        _pyasic(address, name)
        self.address = address
        self.kind = name
        self.timeout_s = float(timeout_s)
        self._host = host
        self._port = port
        self._accepted = accepted
        self._username = username
        self._password = password
        self._miner: Any = None
        self._control = READ_ONLY
        self._firmware = ""
        self._abandoned: set[asyncio.Future[Any]] = set()

    def __repr__(self) -> str:
        return f"PyasicLink({self.address!r}, {self.kind!r})"

    @property
    def control(self) -> str:
        """How the site can steer it (READ_ONLY until its firmware is detected)."""
        return self._control

    # --- the MinerLink contract -------------------------------------------------------

    async def read(self) -> LinkReading:
        deadline = self._deadline()
        miner = await self._ensure(deadline)
        data = await self._call(miner.get_data(include=list(_READ_ITEMS)), deadline, "read")
        rate = hashrate_hs(data.hashrate)
        watts = _number(data.wattage, MAX_MINER_WATTS)
        if rate is None and watts is None:
            raise await self._silent(deadline, "answered, but pyasic read neither power nor hashrate from it")
        reading = MinerReading(
            watts=watts,
            hashrate_hs=rate,
            asleep=data.is_mining is False,
            control=self._control,
            target_w=_number(data.wattage_limit, MAX_MINER_WATTS) if self._control == TARGET else None,
        )
        note = f"{self._firmware} through pyasic's {type(miner).__name__}: {_CONTROL_NOTES[self._control]}"
        return LinkReading(reading, energy_source=self._firmware if watts is not None else None, note=note)

    async def set_target(self, watts: float) -> None:
        if not (math.isfinite(watts) and watts > 0):
            raise ValueError(f"a power target must be a number of watts above 0, not {watts!r}")
        await self._command("set_power_limit", (round(watts),), f"the power target {round(watts)} W", (TARGET,))

    async def sleep(self) -> None:
        await self._command("stop_mining", (), "the order to sleep", (TARGET, SLEEP))

    async def wake(self) -> None:
        await self._command("resume_mining", (), "the order to wake", (TARGET, SLEEP))

    async def close(self) -> None:
        for task in list(self._abandoned):
            task.cancel()
        self._miner = None

    # --- building the pyasic miner object -----------------------------------------------

    async def _ensure(self, deadline: float) -> Any:
        if self._miner is None:
            miner = await self._call(self._build(deadline), deadline, "firmware detection")
            self._control = pyasic_control(miner)
            self._miner = miner
        return self._miner

    async def _build(self, deadline: float) -> Any:
        pyasic = _pyasic(self.address, self.kind)
        ip = await self._resolve()
        if self._port in (None, PYASIC_RPC_PORT):
            miner = await pyasic.get_miner(ip)
            if miner is None:
                raise await self._silent(deadline, "pyasic recognised no miner firmware there (it probes ports "
                                                   "4028, 80 and 443)", ports=(PYASIC_RPC_PORT, 80))
        else:
            from pyasic.miners.factory import MINER_CLASSES, MinerTypes

            miner = MINER_CLASSES[MinerTypes[self._accepted[0]]][None](ip)
            if miner.rpc is not None:
                miner.rpc.port = self._port
            elif miner.web is not None:
                miner.web.port = self._port
        miner_type = detected_type(miner)
        firmware = firmware_name(miner_type) if miner_type else type(miner).__name__
        if self._accepted and miner_type not in self._accepted:
            raise MinerLinkError(f"{self._who()}: pyasic detects {firmware} firmware there ({type(miner).__name__}), "
                                 f"not {self.kind}: set its kind to {firmware!r} (or {ANY_FIRMWARE!r})", TIMEOUT)
        self._set_credentials(miner)
        self._firmware = firmware
        return miner

    async def _resolve(self) -> str:
        # pyasic's API objects take an IP address, not a host name.
        try:
            return str(ipaddress.ip_address(self._host))
        except ValueError:
            pass
        answers = await asyncio.get_running_loop().getaddrinfo(self._host, None, type=socket.SOCK_STREAM)
        if not answers:
            raise MinerLinkError(f"{self._who()}: {self._host} resolves to no address", TIMEOUT)
        return str(answers[0][4][0])

    def _set_credentials(self, miner: Any) -> None:
        if self._username is not None and miner.web is not None:
            miner.web.username = self._username
        if self._password is not None:
            for api in (miner.web, miner.rpc, miner.ssh):
                if api is not None:
                    api.pwd = self._password

    # --- calls within the deadline, failures named ------------------------------------------

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeout_s

    def _who(self) -> str:
        return f"miner {self.address} ({self.kind})"

    async def _command(self, method: str, args: tuple[int, ...], what: str, controls: Iterable[str]) -> None:
        deadline = self._deadline()
        miner = await self._ensure(deadline)
        if self._control not in controls:
            raise MinerLinkError(f"{self._who()} cannot take {what}: pyasic's {type(miner).__name__} class is "
                                 f"{_CONTROL_NOTES[self._control]}", TIMEOUT)
        done = await self._call(getattr(miner, method)(*args), deadline, what)
        if done is not True:
            raise await self._silent(deadline, f"did not take {what} (pyasic's {method} answered {done!r})")

    async def _call(self, call: Awaitable[Any], deadline: float, what: str) -> Any:
        """Await a pyasic call until ``deadline``; a late one is abandoned, not awaited."""
        task = asyncio.ensure_future(call)
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            done, _ = await asyncio.wait({task}, timeout=max(remaining, 0.0))
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise MinerLinkError(f"{self._who()}: no answer to {what} within {self.timeout_s:g} s", TIMEOUT)
        try:
            return task.result()
        except MinerLinkError:
            raise
        except (Exception, asyncio.CancelledError) as error:
            raise self._translated(error, what) from error

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        # A pyasic call may swallow its cancellation and run on: keep a reference until it
        # ends and take its result, so nothing is logged as never retrieved.
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()

    def _translated(self, error: BaseException, what: str) -> MinerLinkError:
        if _refused_in(error):
            return MinerLinkError(f"{self._who()}: connection refused during {what}: nothing listens there", REFUSED)
        detail = self._redacted(f"{type(error).__name__}: {error}")[:_DETAIL_CHARS]
        return MinerLinkError(f"{self._who()}: {what} failed: {detail}", TIMEOUT)

    def _redacted(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        return text

    async def _silent(self, deadline: float, problem: str, ports: tuple[int, ...] | None = None) -> MinerLinkError:
        """The error for a miner pyasic got nothing from: REFUSED if its API port refuses connections."""
        if ports is None:
            ports = (self._api_port(),)
        remaining = deadline - asyncio.get_running_loop().time()
        refused = [await _port_refuses(self._host, port, remaining / len(ports)) for port in ports]
        if all(refused):
            where = " or ".join(f"port {port}" for port in ports)
            return MinerLinkError(f"{self._who()}: connection refused at {where}: nothing listens there", REFUSED)
        return MinerLinkError(f"{self._who()}: {problem}", TIMEOUT)

    def _api_port(self) -> int:
        miner = self._miner
        if miner is not None and miner.rpc is not None:
            return int(miner.rpc.port)
        if miner is not None and miner.web is not None:
            return int(miner.web.port)
        return self._port or PYASIC_RPC_PORT

