"""Files and URLs an operator names, when they are not what a file or a URL should be: a
FIFO (whose open and read block), ``/dev/zero`` (endless), a file swapped for a FIFO
while the miner reads it, an HTTP server that answers one byte at a time, a config that
is not UTF-8 or is nested thousands deep.

Each test proves one case: a clear error naming the path, never a hang, a traceback or
memory without end, and a miner that stops on time (``--duration``, SIGTERM) whatever
the source does. The hangs these tests guard against are caught by the subprocess
timeouts, which are far above the runs' own durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from hashcore.app.inputs import load_trace
from hashcore.app.live import in_daemon_thread
from hashcore.app.sources import LiveSource, parse_battery_reading, parse_reading, read_location
from hashcore.boundedio import fetch_bounded, read_bounded, read_text_bounded
from hashcore.cli import main
from hashcore.config import MAX_CONFIG_BYTES, load_config
from hashcore.errors import ConfigError
from hashcore.web.snapshot import load_bench
from tests.api.client import ask_json, status_of
from tests.live import free_port

SECRET = "sekrit-password"
#: Deeper than tomllib's and json's recursion: once a RecursionError traceback.
DEPTH = 5000
#: A run's generous ceiling: the runs below last a few seconds; a hang meets this.
HANG = 60

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def mine(*args: str) -> list[str]:
    return [sys.executable, "-m", "hashcore.cli", "mine", "--embedded", "--backend", "reference", "--threads", "1",
            "--api-listen", "off", *args]


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("hashcore: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "budget.fifo"
    os.mkfifo(path)
    return path


# --- the helpers themselves ------------------------------------------------------------


def test_a_fifo_is_refused_at_once_not_waited_on(fifo: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"reading {fifo} is a FIFO, not a regular file")):
        read_bounded(fifo, 1024, "reading")


def test_dev_zero_is_refused_before_a_byte_is_read() -> None:
    with pytest.raises(ConfigError, match="/dev/zero is a character device, not a regular file"):
        read_bounded("/dev/zero", 1024, "reading")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        read_bounded(tmp_path, 1024, "reading")


def test_a_file_over_the_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 2049)
    assert read_bounded(path, 2049, "reading") == b"x" * 2049
    with pytest.raises(ConfigError, match=r"is over 2 KiB"):
        read_bounded(path, 2048, "reading")


def test_a_missing_file_is_a_config_error_with_the_os_error_behind_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read reading .*No such file") as caught:
        read_bounded(tmp_path / "none", 10, "reading")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_text_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1"
    path.write_bytes(b"watts = 3\n\xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        read_text_bounded(path, 100, "reading")


# --- a tiny HTTP server that misbehaves --------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Starts a server on 127.0.0.1 whose every connection ``handler`` answers; gives its URL."""
    stop = threading.Event()
    listeners: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        listeners.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        def answer(conn: socket.socket) -> None:
            with conn, contextlib.suppress(OSError):
                conn.recv(4096)
                handler(conn)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/budget"

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    stop.set()
    for listener in listeners:
        listener.close()


def trickle_body(stop: threading.Event) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        while not stop.wait(0.3):
            conn.sendall(b" ")
    return handler


def trickle_headers(stop: threading.Event) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"a" * 10_000:
            if stop.wait(0.3):
                return
            conn.sendall(bytes([byte]))
    return handler


@pytest.mark.parametrize("make", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_url_answering_a_byte_at_a_time_ends_at_the_deadline_for_the_whole_fetch(
    make: Callable[[threading.Event], Callable[[socket.socket], None]], http_server: Callable[..., str]
) -> None:
    url = http_server(make(http_server.stop))  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"no complete answer within 1 s"):
        fetch_bounded(url, 1 << 20, 1.0)
    # Each byte comes within the socket timeout: only a deadline for the whole fetch ends it.
    assert time.monotonic() - started < 30


def test_a_url_answering_without_end_is_cut_at_the_size_cap(http_server: Callable[..., str]) -> None:
    def flood(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
        for _ in range(64):  # 4 MiB, then the server gives up
            conn.sendall(b"1" * 65536)

    url = http_server(flood)
    with pytest.raises(ConfigError, match=r"the answer is over 1 MiB"):
        fetch_bounded(url, 1 << 20, 20.0)


def test_a_url_that_answers_is_read(http_server: Callable[..., str]) -> None:
    def good(conn: socket.socket) -> None:
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\n{"watts": 640}')

    url = http_server(good)
    assert read_location(url, 5.0) == '{"watts": 640}'


def test_an_http_error_status_is_named(http_server: Callable[..., str]) -> None:
    def missing(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with pytest.raises(ConfigError, match="cannot read: HTTP Error 404"):
        fetch_bounded(http_server(missing), 100, 5.0)


# --- live readings -----------------------------------------------------------------------


@pytest.mark.parametrize("parse", [parse_reading, parse_battery_reading])
def test_a_reading_nested_thousands_deep_is_a_config_error(parse: Callable[[str, str], object]) -> None:
    with pytest.raises(ConfigError, match="nested deeper"):
        parse('{"watts": ' + "[" * DEPTH + "]" * DEPTH + "}", "source")


def test_a_live_source_that_is_a_fifo_reports_the_error_and_budgets_zero(fifo: Path) -> None:
    source = LiveSource(str(fifo), interval_s=1.0)
    source.refresh(0.0)
    assert source.error is not None and "is a FIFO" in source.error
    assert source.at(0.0).watts == 0.0


async def test_a_read_that_never_ends_does_not_hold_up_the_loop_or_its_shutdown() -> None:
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(in_daemon_thread(release.wait), 0.2)
        assert await in_daemon_thread(lambda: 7) == 7
        with pytest.raises(ZeroDivisionError):
            await in_daemon_thread(lambda: 1 / 0)
    finally:
        release.set()


def test_asyncio_run_returns_while_a_daemon_read_still_blocks() -> None:
    release = threading.Event()

    async def run() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(in_daemon_thread(release.wait), 0.1)

    done = threading.Event()
    runner = threading.Thread(target=lambda: (asyncio.run(run()), done.set()), daemon=True)
    runner.start()
    try:
        assert done.wait(HANG), "asyncio.run waited for the blocked read"
    finally:
        release.set()


# --- the live budget through the real CLI ------------------------------------------------


def test_a_fifo_as_the_live_budget_is_named_and_the_run_ends_on_time(fifo: Path) -> None:
    done = subprocess.run(mine("--duration", "3", "--power-budget", str(fifo), "--budget-poll", "0.5"),
                          capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{fifo} is a FIFO, not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_dev_zero_as_the_live_budget_is_refused_without_reading_it() -> None:
    done = subprocess.run(mine("--duration", "2", "--power-budget", "/dev/zero", "--budget-poll", "0.5"),
                          capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "/dev/zero is a character device, not a regular file" in done.stderr


def test_a_budget_file_swapped_for_a_fifo_mid_run_does_not_hold_up_the_exit(tmp_path: Path) -> None:
    path = tmp_path / "budget"
    path.write_text("50\n")
    process = subprocess.Popen(mine("--duration", "5", "--power-budget", str(path), "--budget-poll", "0.5"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        path.unlink()
        os.mkfifo(path)
        stdout, stderr = process.communicate(timeout=HANG)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    assert "mined" in stdout  # the summary
    assert "Traceback" not in stderr


def test_a_trickling_budget_url_does_not_hold_up_the_end_of_the_run(http_server: Callable[..., str]) -> None:
    url = http_server(trickle_body(http_server.stop))  # type: ignore[attr-defined]
    done = subprocess.run(mine("--duration", "3", "--power-budget", url, "--budget-poll", "0.5"),
                          capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mined" in done.stdout
    assert "Traceback" not in done.stderr


def test_sigterm_ends_a_run_within_two_seconds_while_its_budget_url_trickles(
    http_server: Callable[..., str],
) -> None:
    stop: threading.Event = http_server.stop  # type: ignore[attr-defined]
    reading = threading.Event()
    trickle = trickle_body(stop)

    def handler(conn: socket.socket) -> None:
        reading.set()
        trickle(conn)

    url = http_server(handler)
    process = subprocess.Popen(mine("--duration", "120", "--power-budget", url, "--budget-poll", "0.5"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reading.wait(HANG), "the miner never read its budget URL"
        time.sleep(0.5)  # the read is under way, a byte at a time
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        stdout, stderr = process.communicate(timeout=HANG)
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]  # a clean stop, not killed by the signal
    assert stopped_in < 2.0, f"took {stopped_in:.1f} s"
    assert "mined" in stdout


def test_a_fifo_as_a_trace_is_one_line(fifo: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"trace {fifo} is a FIFO")):
        load_trace(fifo)


# --- the config file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[miner]\nuser = "caf\xe9"\n', "is not UTF-8 text"),
        (b"a = " + b"[" * DEPTH + b"]" * DEPTH + b"\n", "nested too deeply"),
        (b"a = " + b"{b = " * DEPTH + b"1" + b"}" * DEPTH + b"\n", "nested too deeply"),
        (b"# " + b"x" * MAX_CONFIG_BYTES + b"\n", "is over 1 MiB"),
    ],
    ids=["not-utf8", "deep-arrays", "deep-inline-tables", "too-big"],
)
def test_a_broken_config_file_is_one_line(content: bytes, message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hashcore.toml"
    config.write_bytes(content)
    assert main(["mine", "--config", str(config), "--user", "u", "--backend", "reference"]) == 1
    error = one_error(capsys.readouterr().err)
    assert message in error and str(config) in error


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_config_that_is_a_fifo_or_a_device_is_one_line_not_a_hang(special: str, fifo: Path) -> None:
    path = str(fifo) if special == "fifo" else special
    done = subprocess.run(mine("--config", path, "--duration", "1"), capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 1
    assert "not a regular file" in one_error(done.stderr)


@pytest.mark.parametrize(
    "table",
    [
        f'url = ["stratum+tcp://u:{SECRET}@127.0.0.1:1"]',
        f'url = {{ at = "stratum+tcp://u:{SECRET}@127.0.0.1:1" }}',
        f'url = "stratum+tcp://127.0.0.1:1"\npriority = "u:{SECRET}@host"',
        f'url = "stratum+tcp://127.0.0.1:1"\npassword = ["{SECRET}"]',
    ],
    ids=["url-list", "url-table", "string-with-credentials", "password-list"],
)
def test_a_wrong_type_error_never_shows_a_value_that_may_hold_a_password(table: str, tmp_path: Path) -> None:
    config = tmp_path / "hashcore.toml"
    config.write_text(f"[[pools]]\n{table}\n")
    with pytest.raises(ConfigError, match="value") as caught:
        load_config(config)
    assert SECRET not in str(caught.value)


# --- the dashboard's bench file ----------------------------------------------------------


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_load_bench_refuses_a_fifo_or_a_device_at_once(special: str, fifo: Path) -> None:
    path = fifo if special == "fifo" else Path(special)
    with pytest.raises(ValueError, match="not a regular file"):
        load_bench(path)


def test_load_bench_says_a_missing_file_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_bench(tmp_path / "bench.json")


async def test_a_fifo_as_the_web_bench_is_an_error_reply_while_the_api_and_pool_keep_working(fifo: Path) -> None:
    api_port, web_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hashcore.cli", "mine", "--embedded", "--backend", "reference", "--threads", "1",
        "--duration", "60", "--api-listen", f"127.0.0.1:{api_port}", "--api-allow", "W:127.0.0.1",
        "--web-listen", f"127.0.0.1:{web_port}", "--web-bench", str(fifo),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{web_port}/api/stats"):
                        break
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{web_port}/api/bench") as response:
                assert response.status == 200
                bench = await response.json()
            assert bench["rows"] == [] and "is a FIFO, not a regular file" in bench["error"]
            async with http.get(f"http://127.0.0.1:{web_port}/api/stats") as response:
                assert response.status == 200
        summary = await ask_json(api_port, "summary")
        assert status_of(summary)["STATUS"] == "S"
        for _ in range(300):  # the pool connects and mining goes on
            pools = await ask_json(api_port, "pools")
            if pools["POOLS"][0]["Status"] == "Alive":
                break
            await asyncio.sleep(0.1)
        assert pools["POOLS"][0]["Status"] == "Alive", json.dumps(pools)
        assert status_of(await ask_json(api_port, "quit"))["Msg"] == "BYE"
        _, stderr = await asyncio.wait_for(process.communicate(), HANG)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]


# --- JSON files handed over at start (a model, a device curve, an account, a run) ------


@pytest.mark.parametrize("content", ["fifo", "deep", "not-utf8"])
def test_a_model_file_that_is_a_fifo_too_deep_or_not_text_is_one_line(tmp_path: Path, content: str) -> None:
    model = tmp_path / "model.json"
    if content == "fifo":
        os.mkfifo(model)
    else:
        model.write_bytes(b"[" * DEPTH if content == "deep" else b'{"backend": "\xff"}')
    trace = tmp_path / "day.csv"
    trace.write_text("timestamp,watts\n0,500\n600,0\n")
    done = subprocess.run([sys.executable, "-m", "hashcore.cli", "simulate", "--trace", str(trace), "--model",
                           str(model)], capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 1
    assert str(model) in one_error(done.stderr)
