"""The worker process of :class:`hashcore.workers.ProcessScanner`.

Run as ``python -m hashcore._scan_child NAME``: it opens backend NAME with the options
sent first, then answers each scan request until its stdin closes. A module of its own,
imported by nothing, so that running it does not import it twice.
"""

from __future__ import annotations

import sys
from typing import Any

from hashcore.backends.base import open_backend
from hashcore.workers import read_message, write_message


def _child_main(name: str) -> None:
    """The worker process: open the backend, then scan each request until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    options = read_message(stdin)
    try:
        backend = open_backend(name, **(options or {}))
    except Exception as exc:
        write_message(stdout, exc)
        return
    write_message(stdout, True)
    while (request := read_message(stdin)) is not None:
        try:
            reply: Any = backend.scan(*request)
        except Exception as exc:
            reply = exc
        write_message(stdout, reply)
    backend.close()


if __name__ == "__main__":
    _child_main(sys.argv[1])
