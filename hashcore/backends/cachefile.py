"""The files where measured choices are kept between runs: where they live, how they are
read, updated and removed.

Each file is a cache: anything wrong with it (a FIFO or a device in its place, a file
over :data:`MAX_BYTES`, JSON nested past the bounded parser's depth, a folder that
cannot be written) costs a measurement, never a start. Reads are bounded
(:func:`read`); an update (:func:`update`) reads, changes and replaces the file under an
advisory lock, so two processes measuring at once do not drop each other's entries, and
writes a new file beside it first, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hashcore.boundedio import read_json_bounded
from hashcore.errors import ConfigError

log = logging.getLogger("hashcore.backends.cache")

#: The largest cache file read; each is a few kilobytes.
MAX_BYTES = 4 << 20
#: How long an update waits for another process's update of the same file (which takes
#: milliseconds); waited once per process and lock.
LOCK_SECONDS = 2.0

_warned: set[str] = set()
_stuck: set[Path] = set()
_warned_lock = threading.Lock()


def cache_dir() -> Path:
    """``$HASHCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/hashcore``, else ``~/.cache/hashcore``."""
    if os.environ.get("HASHCORE_CACHE_DIR"):
        return Path(os.environ["HASHCORE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hashcore"


def warn_once(message: str) -> None:
    """Log ``message`` once per process: a damaged cache is read at every open."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("%s", message)


def read(path: Path, what: str) -> Any:
    """The JSON of a cache file, or None where there is none or it cannot be used (named
    in one log line): never read without end, never raised from."""
    try:
        return read_json_bounded(path, what, MAX_BYTES)
    except ConfigError as exc:
        if not isinstance(exc.__cause__, FileNotFoundError):
            problem = str(exc) if what in str(exc) else f"{what} {exc}"
            warn_once(f"{problem}: ignored, measuring again")
        return None


def _acquire(fd: int, seconds: float) -> bool:
    """Take the exclusive lock on ``fd`` within ``seconds``; whether it was had."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory lock on ``path.lock`` for one update. A lock held past
    :data:`LOCK_SECONDS` (a process stopped while it held it) is waited for once per
    process, then updates go ahead unlocked, still atomic; so do they on a file system
    that has no locks."""
    lock = path.with_name(path.name + ".lock")
    fd = None
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if not _acquire(fd, 0 if lock in _stuck else LOCK_SECONDS) and lock not in _stuck:
            _stuck.add(lock)
            log.warning("%s has been held by another process for %.0f s; updating without it", lock, LOCK_SECONDS)
    except OSError as exc:
        warn_once(f"cannot lock {lock} ({exc.strerror or exc}); updating {path} without it")
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


def update(path: Path, what: str, change: Callable[[Any], dict[str, Any]]) -> None:
    """Replace ``path`` with ``change(what it holds now)`` (None when nothing usable); a
    failure is logged (the next start measures again), never raised."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            data = change(read(path, what))
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
    except OSError as exc:
        warn_once(f"cannot save the {what} to {path} ({exc.strerror or exc}); the next start measures again")
        with contextlib.suppress(OSError):
            tmp.unlink()


def remove(path: Path, what: str) -> None:
    """Remove a cache file, whatever stands in its place; what cannot be removed is
    logged and left (its entries are measured over when they cannot be read)."""
    try:
        if path.is_dir() and not path.is_symlink():
            os.rmdir(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the %s %s (%s); measuring again regardless", what, path, exc.strerror or exc)
