"""Where hashcore's servers (API, metrics, dashboard) listen, and what they take from peers.

* :func:`parse_listen` reads a listen address as the flags give it.
* :func:`dual_stack_socket` makes ``[::]`` take IPv4 clients too: asyncio binds an IPv6
  wildcard IPv6-only, while the API's allow list and an operator writing ``[::]`` expect
  every client of the machine.
* :func:`listen_failure` names why an address cannot be listened on in words (a name that
  does not resolve is not "Unknown error -2").
* :class:`HostRule` is the rule against DNS rebinding shared by the HTTP servers: a
  request must name the server in its ``Host`` header (and in an absolute-form target),
  written exactly as ``name``, ``name:port``, ``[IPv6]`` or ``[IPv6]:port``.
* :class:`PeerErrorLog` is the logger given to the HTTP servers: a malformed request
  (a TLS hello on the plain port, a bad method, an oversized header) is one short,
  rate-limited warning line, never a traceback.
* :class:`HttpListener` serves an aiohttp application (the dashboard's, the metrics') on
  a listen address with all of the above; :func:`json_refusal` and :func:`text_refusal`
  are the two ways those servers refuse a request.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from hashcore.errors import ConfigError
from hashcore.lograte import RateLimitedLog

log = logging.getLogger("hashcore.listen")

#: Names every local HTTP server answers to, besides its listen address and the operator's own.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

#: Connections waiting to be accepted, as aiohttp's own sites keep.
BACKLOG = 128

_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?", re.ASCII | re.IGNORECASE)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


def parse_listen(text: str, what: str = "a listen address") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (loopback) -> (host, port).

    Raises ConfigError naming ``what`` and the accepted forms."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        raise ConfigError(f"{what} is HOST:PORT, e.g. 127.0.0.1:8080; got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{what}: write an IPv6 address in brackets, e.g. [::1]:8080; got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what}: {port_text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} is not 0-65535")
    return host or "127.0.0.1", port


# --- the listening socket ----------------------------------------------------------------


def dual_stack_socket(host: str, port: int) -> socket.socket | None:
    """A listening socket on ``::`` that takes IPv4 clients too (as ``::ffff:a.b.c.d``).

    None for any other host: the server binds it itself. Raises OSError when the socket
    cannot be made or bound. Where the system cannot turn IPV6_V6ONLY off, the socket is
    IPv6-only and one warning says that IPv4 clients cannot reach it."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version != 6 or not ip.is_unspecified:
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except (OSError, AttributeError):
            log.warning("[::]:%d listens on IPv6 only: IPv4 clients cannot reach it (listen on 0.0.0.0 for them)",
                        port)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_failure(exc: BaseException, host: str = "") -> str:
    """Why a server could not listen, in words (``exc`` is what binding raised)."""
    if isinstance(exc, socket.gaierror):
        shown = f"{host!r} " if host else "the host "
        return f"{shown}is neither an address of this machine nor a name that resolves here ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL:
        shown = f"{host} " if host else "the address "
        return f"{shown}is not an address of this machine"
    if isinstance(exc, OSError) and exc.errno and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


# --- the Host header ---------------------------------------------------------------------


def host_of(value: str) -> str | None:
    """The name a ``Host`` header (or a URL's authority) gives: lower case, without the
    port, the brackets of an IPv6 address or one trailing dot, the IPv6 address in its
    short form. None unless it is exactly ``name``, ``name:port``, ``[IPv6]`` or
    ``[IPv6]:port`` (a port of digits)."""
    if value.startswith("["):
        inside, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        try:
            return ipaddress.IPv6Address(inside).compressed
        except ValueError:
            return None
    name, colon, port = value.partition(":")
    if (colon and not _PORT.fullmatch(port)) or not _NAME.fullmatch(name):
        return None
    return name.lower().removesuffix(".")


def allowed_name(value: str) -> str | None:
    """A name from a listen address or an allowed-host setting, as :func:`host_of` gives
    it; an IPv6 address may be written without brackets. None when it is not a name."""
    value = value.strip()
    try:
        return ipaddress.IPv6Address(value).compressed
    except ValueError:
        return host_of(value)


class HostRule:
    """The names a request may carry in ``Host``, against DNS rebinding (a page on another
    site whose name is made to resolve to this machine).

    Args:
        listen_host: the address listened on (one more allowed name).
        extra: names the operator allowed; ConfigError when one is not a name.
        option: the setting that adds names, for the error messages.
    """

    def __init__(self, listen_host: str, extra: Iterable[str] = (), option: str = "--web-allow-host") -> None:
        names: set[str] = set()
        for value in (*LOCAL_HOSTS, listen_host, *extra):
            if not value.strip():
                continue
            name = allowed_name(value)
            if name is None:
                raise ConfigError(f"{option} {value.strip()[:80]!r}: not a host name or address")
            names.add(name)
        self.names = frozenset(names)
        self.option = option

    def refusal(self, hosts: Sequence[str], target: str) -> tuple[int, str] | None:
        """Why a request is refused, as (HTTP status, message); None when it is not.

        ``hosts`` are its ``Host`` headers (none: HTTP/1.0, not a browser), ``target`` the
        request target as sent (``/path``, ``*``, or the absolute form ``http://host/path``)."""
        if len(hosts) > 1:
            return 400, "a request carries one Host header"
        if hosts:
            given = hosts[0]
            name = host_of(given)
            if name is None:
                return 400, f"malformed Host header {given[:80]!r}: write name, name:port or [IPv6]:port"
            if name not in self.names:
                return 403, (f"this server does not answer to host {given[:80]!r}; the operator can allow it "
                             f"with {self.option}")
        if not target.startswith("/") and target != "*":
            scheme, separator, rest = target.partition("://")
            authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
            name = host_of(authority) if separator and scheme.lower() in ("http", "https") else None
            if name is None:
                return 400, f"malformed request target {target[:80]!r}"
            if name not in self.names:
                return 403, (f"this server does not answer to host {authority[:80]!r}; the operator can allow it "
                             f"with {self.option}")
        return None


# --- the log of malformed requests -------------------------------------------------------


class PeerErrorLog:
    """The logger an HTTP server (aiohttp's request handler) is given, for the requests it
    cannot parse: one short warning line each, a few per interval (the rest counted), never
    a traceback. ``what`` names the server in each line."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = 10.0, burst: int = 5) -> None:
        self.logger = logger
        self.what = what
        self._limited = RateLimitedLog(logger, interval=interval, burst=burst)

    def exception(self, msg: object, *args: object, exc_info: object = None, **_kwargs: object) -> None:
        self._limited.warning(f"{self.what} bad request", "%s: %s%s", self.what, _format(msg, args),
                              _reason(exc_info))

    def error(self, msg: object, *args: object, exc_info: object = None, **_kwargs: object) -> None:
        self.exception(msg, *args, exc_info=exc_info)

    def warning(self, msg: object, *args: object, exc_info: object = None, **_kwargs: object) -> None:
        self.exception(msg, *args, exc_info=exc_info)

    def info(self, msg: object, *args: object, exc_info: object = None, **_kwargs: object) -> None:
        self.logger.info("%s: %s%s", self.what, _format(msg, args), _reason(exc_info))

    def debug(self, msg: object, *args: object, exc_info: object = None, **_kwargs: object) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s: %s%s", self.what, _format(msg, args), _reason(exc_info))

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)


def _format(msg: object, args: tuple[object, ...]) -> str:
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        text = " ".join(map(str, (msg, *args)))
    return _one_line(text)


def _reason(exc_info: object) -> str:
    exc = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else exc_info
    if not isinstance(exc, BaseException):
        return ""
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message.strip() else str(exc)
    text = _one_line(text).removesuffix(" ^")  # the HTTP parser's pointer under the bad byte
    return f": {type(exc).__name__}: {text}" if text else f": {type(exc).__name__}"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- an HTTP server on a listen address ----------------------------------------------------


class HttpListener:
    """An aiohttp application served on one address, set up as the dashboard and the
    metrics both need it.

    :meth:`start` binds (``[::]`` dual-stack, see :func:`dual_stack_socket`) with no
    access log and no signal handlers of its own (the command line owns SIGINT), logs the
    requests the HTTP parser cannot read through :class:`PeerErrorLog`, and raises
    ConfigError naming the address and why (:func:`listen_failure`) when it cannot listen.
    :meth:`refusal` applies the server's :class:`HostRule` to a request.

    Args:
        what: the server's name in messages (``dashboard``, ``metrics``).
        host / port: where to listen (port 0: any free port; :attr:`port` once started).
        hosts: the names a request may carry in ``Host``.
        peer_log: the logger of the requests the parser cannot read.
        shutdown_timeout: seconds :meth:`stop` waits for a request in progress (twice at
            most: to finish, then to cancel).
        lingering_time: seconds an answered request's unread body is still read and
            dropped, so its client reads the answer (0: the connection is closed at once).
    """

    def __init__(self, what: str, host: str, port: int, hosts: HostRule, *, peer_log: logging.Logger,
                 shutdown_timeout: float, lingering_time: float) -> None:
        self.what = what
        self.host = host
        self._port = port
        self.hosts = hosts
        self.peer_log = peer_log
        self.shutdown_timeout = shutdown_timeout
        self.lingering_time = lingering_time
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) bound; the ones asked for before :meth:`start`."""
        if self._runner is not None and self._runner.addresses:
            bound: Any = self._runner.addresses[0]
            return str(bound[0]), int(bound[1])
        return self.host, self._port

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        return self.address[1]

    async def start(self, app: web.Application) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.shutdown_timeout,
                               lingering_time=self.lingering_time, logger=PeerErrorLog(self.peer_log, self.what))
        await runner.setup()
        try:
            sock = dual_stack_socket(self.host, self._port)
            site = web.TCPSite(runner, self.host, self._port, reuse_address=True) if sock is None \
                else web.SockSite(runner, sock)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"{self.what} cannot listen on {self.host}:{self._port}: "
                              f"{listen_failure(exc, self.host)}") from exc
        self._runner = runner

    async def stop(self) -> None:
        """Close every connection (a request in progress gets :attr:`shutdown_timeout`)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def refusal(self, request: web.BaseRequest) -> tuple[int, str] | None:
        """Why a request is refused for the name it is addressed to (see :meth:`HostRule.refusal`)."""
        return self.hosts.refusal(request.headers.getall("Host", []), request.raw_path)


def json_refusal(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A refusal as a JSON object, ``{"error": message, "status": status}`` (the dashboard's)."""
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


def text_refusal(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A refusal as one line of text, the connection closed after it with any body left
    unread (the metrics')."""
    response = web.Response(status=status, text=message + "\n", headers=headers)
    response.force_close()
    return response
