"""Stand-in miners (:mod:`tests.site.standins`) served in a process of their own.

``python -m tests.site.fleet --miners 1000`` serves a fleet: it prints
``{"addresses": [...]}`` as one JSON line and serves until SIGTERM or the end of its
stdin; :class:`FleetProcess` runs it from a test or a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.site.standins import StandinFleet, fleet_models

ROOT = Path(__file__).resolve().parents[2]


class FleetProcess:
    """``python -m tests.site.fleet`` as a child process (optionally pinned to ``cpu``).

    ``with FleetProcess(1000) as fleet: fleet.addresses``; it stops on leaving (its stdin
    closed, then SIGTERM, then SIGKILL, each with a deadline).
    """

    def __init__(self, miners: int, *, cpu: int | None = None, start_timeout_s: float = 60.0,
                 extra_args: Sequence[str] = ()) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.site.fleet", "--miners", str(miners), *extra_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=env)
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, {cpu})
        try:
            self.addresses: list[str] = self._first_line(start_timeout_s)["addresses"]
        except BaseException:
            self.close()
            raise

    def _first_line(self, timeout_s: float) -> dict[str, Any]:
        lines: list[bytes] = []
        assert self.process.stdout is not None
        stdout = self.process.stdout
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not lines or not lines[0]:
            raise RuntimeError(f"the stand-in fleet did not start within {timeout_s:g} s "
                               f"(exit status {self.process.poll()})")
        body = json.loads(lines[0])
        assert isinstance(body, dict)
        return body

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> FleetProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    stdin = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    except (OSError, ValueError):
        stdin.feed_data(b"?")  # stdin is a file or a terminal: SIGTERM alone stops it

    async def watch_stdin() -> None:
        while await stdin.read(4096):
            pass
        stop.set()

    watcher = asyncio.create_task(watch_stdin())
    models = fleet_models(args.miners, throttled=not args.no_throttle)
    async with StandinFleet(models, write=not args.read_only, host=args.host) as fleet:
        print(json.dumps({"addresses": fleet.addresses}), flush=True)
        await stop.wait()
    watcher.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve stand-in miners until SIGTERM or the end of stdin.")
    parser.add_argument("--miners", type=int, default=10)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--read-only", action="store_true", help="refuse write commands (no W: access)")
    parser.add_argument("--no-throttle", action="store_true", help="no power budget: sleep and wake only")
    args = parser.parse_args(argv)
    if not 1 <= args.miners <= 20_000:
        parser.error("--miners is 1-20000")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
