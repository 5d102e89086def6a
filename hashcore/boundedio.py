"""Files and URLs an operator names, read with a size cap and a deadline.

A path given on the command line or in a config may name anything: a FIFO (whose open
blocks until a writer comes, whose read blocks until it writes), ``/dev/zero`` (endless),
a directory, a terminal. :func:`read_bounded` opens without blocking, takes only a
regular file, and reads at most ``limit`` bytes. A URL may answer one byte at a time for
ever (urllib's timeout is per socket operation, not per fetch): :func:`fetch_bounded`
gives the whole fetch, from the connection to the last byte, one deadline, and takes at
most ``limit`` bytes. Both raise :class:`~hashcore.errors.ConfigError` with one line
naming the path or URL; the OSError behind it, if any, is its ``__cause__``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import stat
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hashcore import boundedjson
from hashcore.errors import ConfigError

_CHUNK = 1 << 16


def size_text(limit: int) -> str:
    """``limit`` bytes in words (``1 MiB``, ``64 KiB``, ``100 bytes``)."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``what`` names the file in messages (``config``, ``bench file``). Never blocks on a
    FIFO or a device: they, directories and sockets are refused, as is a file longer
    than ``limit`` (checked while reading, so a file that grows is caught too).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{what} {path} is {_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ConfigError(f"{what} {path} is over {size_text(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def read_text_bounded(path: str | Path, limit: int, what: str) -> str:
    """:func:`read_bounded`, decoded as UTF-8 (ConfigError when it is not)."""
    return decode_text(read_bounded(path, limit, what), f"{what} {path}")


#: The largest JSON file an operator hands over (a model, a sweep, an account, a run).
MAX_JSON_FILE = 16 << 20


def read_json_bounded(path: str | Path, what: str, limit: int = MAX_JSON_FILE) -> Any:
    """A JSON file read with :func:`read_text_bounded` and parsed with a nesting bound;
    ConfigError naming the file for anything wrong."""
    text = read_text_bounded(path, limit, what)
    try:
        return boundedjson.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from None


def decode_text(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text; ConfigError naming ``where`` and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where} is not UTF-8 text (byte {exc.start})") from None


class _Watchdog:
    """Shuts down every socket of one fetch when its deadline passes, which ends any
    read blocked on them at once."""

    def __init__(self, deadline_s: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(deadline_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: it ends a blocked read
    # without touching the TLS state another thread is reading through.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's opener (redirects, proxies, HTTP errors as usual) whose connections the
    watchdog can cut."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.track(self.sock)

    class TLSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.track(self.sock)

    context = ssl.create_default_context()

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(Connection, req)

    class TLSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(TLSConnection, req, context=context)

    return urllib.request.build_opener(Handler(), TLSHandler(context=context))


def fetch_bounded(url: str, limit: int, deadline_s: float) -> bytes:
    """The body of an HTTP(S) GET of ``url``: at most ``limit`` bytes, all of it within
    ``deadline_s`` seconds of the call (connecting, the headers and every byte of the
    body); ConfigError naming the URL otherwise."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{url}: only http:// and https:// URLs can be fetched")
    if not deadline_s > 0:
        raise ConfigError(f"a fetch deadline must be positive, not {deadline_s}")
    started = time.monotonic()
    watchdog = _Watchdog(deadline_s)
    try:
        with _opener(watchdog).open(url, timeout=deadline_s) as response:
            body = response.read(limit + 1)
        if watchdog.expired:  # a cut connection reads as a short body
            raise ConfigError(f"{url}: no complete answer within {deadline_s:g} s")
    except ConfigError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if watchdog.expired or time.monotonic() - started >= deadline_s:
            raise ConfigError(f"{url}: no complete answer within {deadline_s:g} s") from exc
        plain = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = exc.reason if plain and isinstance(exc, urllib.error.URLError) else exc
        raise ConfigError(f"{url}: cannot read: {reason}") from exc
    finally:
        watchdog.cancel()
    if len(body) > limit:
        raise ConfigError(f"{url}: the answer is over {size_text(limit)}")
    return bytes(body)
