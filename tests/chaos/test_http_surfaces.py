"""The miner's local network surfaces (the cgminer API, the Prometheus metrics, the
dashboard) against a hostile local client, over real sockets: requests written byte by
byte, malformed on purpose, left unfinished, or addressed to another host name.

Each test proves one case: the miner still stops within 2 s, answers with the right
status, and logs a bad request as one short line, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashcore.api import ApiServer
from hashcore.cli.common import print_json as _print_json
from hashcore.metrics import MetricsServer
from hashcore.web import WebServer
from tests.api.client import ask, parse_text, status_of
from tests.chaos.test_operator_surfaces import idle_miner
from tests.live import free_port

TOKEN = "operator-token-0123456789"
#: The stop the design promises: SIGTERM, quit or --duration ends the run within this.
STOP_SECONDS = 2.0

#: Requests an HTTP parser cannot read, as port scanners, TLS clients and fuzzers send them.
MALFORMED = [
    b"G\xffET / HTTP/1.1\r\n\r\n",  # a method of bytes
    b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n",  # a version that does not exist
    b"GET /\xff HTTP/1.1\r\nHost: localhost\r\n\r\n",  # a byte no path holds
    b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",  # NUL in Host
    b"GET / HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * 9000 + b"\r\n\r\n",  # a header line over 8 KiB
    b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50,  # a TLS ClientHello on the plain port
    b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
]


async def http(port: int, raw: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0) -> tuple[int, bytes]:
    """Send raw bytes; the status code of the answer (0: closed without one) and its body."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            data = await asyncio.wait_for(reader.read(), timeout)
            head, _, body = data.partition(b"\r\n\r\n")
            match = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
            return (int(match.group(1)) if match else 0), body
        return 0, b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def get(path: str, host: str, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode() + extra + b"\r\n"


def post(path: str, body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
            .encode() + extra + b"\r\n" + body)


def traceback_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.stack_info or r.levelno >= logging.ERROR]


@contextlib.asynccontextmanager
async def servers(**web_options: Any) -> AsyncIterator[tuple[Any, WebServer, MetricsServer]]:
    miner = idle_miner()
    async with WebServer(miner, "127.0.0.1", 0, **web_options) as web, \
            MetricsServer(miner, "127.0.0.1", 0) as metrics:
        yield miner, web, metrics


# --- the command line, as a process ------------------------------------------------------


class Run:
    """``hashcore mine --embedded`` with every server on, its output in files."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.api, self.metrics, self.web = free_port(), free_port(), free_port()
        self.out, self.err = folder / "out.txt", folder / "err.txt"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hashcore.cli", "mine", "--embedded", "--backend", "reference",
                 "--threads", "1", "--duration", "60", "--api-listen", f"127.0.0.1:{self.api}",
                 "--api-allow", "W:127.0.0.1", "--metrics-listen", f"127.0.0.1:{self.metrics}",
                 "--web-listen", f"127.0.0.1:{self.web}", "--web-allow-control", *extra],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while "dashboard control token" not in self.out.read_text():
            assert self.process.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, "the miner did not start"
            time.sleep(0.1)

    def stop(self) -> float:
        """SIGTERM; seconds until the process is gone."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    runs: list[Run] = []

    def start(*extra: str) -> Run:
        runs.append(Run(tmp_path, *extra))
        return runs[-1]

    yield start
    for started in runs:
        started.kill()


def hashcore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hashcore.cli", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


# --- 1. stopping within 2 s whatever a local client does ---------------------------------


def test_unfinished_http_requests_do_not_delay_the_stop_past_two_seconds(run: Any) -> None:
    miner = run()
    held = []
    try:
        for port, raw in [
            # a body that never ends, on a route that takes none
            (miner.metrics, b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n"),
            # a control request without the token, its body never ending
            (miner.web, b"POST /api/control/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"1\r\n{\r\n"),
            # headers that never end
            (miner.web, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
            (miner.metrics, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
            (miner.api, b'{"command":'),
        ]:
            for _ in range(3):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(raw)
                held.append(sock)
        time.sleep(1.0)
        seconds = miner.stop()
    finally:
        for sock in held:
            sock.close()
    assert seconds < STOP_SECONDS, f"stopping took {seconds:.2f} s"
    assert miner.process.returncode == 0, miner.err.read_text()
    assert "Traceback" not in miner.err.read_text()


async def test_a_metrics_request_with_a_body_is_refused_at_once_without_reading_it() -> None:
    async with servers() as (_, _web, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", metrics.port)
        writer.write(b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 2.0)  # the answer, then the close: no body read
        writer.close()
        assert answer.startswith(b"HTTP/1.1 405 "), answer[:80]
        assert b"Allow: GET, HEAD" in answer
        with_body = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc"
        status, _ = await http(metrics.port, with_body)
        assert status == 400
        status, body = await http(metrics.port, get("/metrics", "127.0.0.1"))
        assert status == 200 and b"hashcore_uptime_seconds" in body


# --- 2. malformed HTTP: one short line, never a traceback --------------------------------


async def test_malformed_http_is_answered_400_and_logged_as_one_short_line_at_most(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with servers() as (_, web, metrics):
        for port in (web.port, metrics.port):
            for raw in MALFORMED:
                status, _ = await http(port, raw)
                assert status in (0, 400, 431), (port, raw[:40], status)
            status, _ = await http(port, get("/metrics" if port == metrics.port else "/api/stats", "127.0.0.1"))
            assert status == 200  # the server goes on
    assert traceback_records(caplog) == []
    lines = [r for r in caplog.records if r.name.startswith(("hashcore.web.http", "hashcore.metrics.http"))]
    assert lines and all("\n" not in r.getMessage() and len(r.getMessage()) < 300 for r in lines)
    for name in ("hashcore.web.http", "hashcore.metrics.http"):  # a few a burst, the rest counted
        assert sum(r.levelno >= logging.WARNING and r.name == name for r in lines) <= 5
    assert not [r for r in caplog.records if r.name.startswith("aiohttp")]


def test_malformed_http_puts_no_traceback_on_the_command_lines_stderr(run: Any) -> None:
    miner = run()
    for port in (miner.web, miner.metrics):
        for raw in MALFORMED:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(raw)
                with contextlib.suppress(OSError):
                    sock.recv(200)
    assert miner.stop() < STOP_SECONDS
    err = miner.err.read_text()
    assert "Traceback" not in err
    assert len(err.splitlines()) <= 12, err  # five lines a server at most, and what the run says itself


# --- 3. a token that is not UTF-8 --------------------------------------------------------


async def test_a_control_token_of_undecodable_bytes_is_401(caplog: pytest.LogCaptureFixture) -> None:
    async with servers(allow_control=True, token=TOKEN) as (miner, web, _):
        for token in (b"\xff\xfe\xfd", "é€".encode(), b"\xed\xa0\x80"):
            status, body = await http(web.port, post("/api/control/pause", b"{}", b"X-Hashcore-Token: " + token))
            assert status == 401, body
            assert json.loads(body)["error"] == "wrong control token"
            status, _ = await http(web.port, post("/api/control/pause", b"{}", b"Authorization: Bearer " + token))
            assert status == 401
        assert not miner.stats().paused
    assert traceback_records(caplog) == []


# --- 4. [::] takes IPv4 clients too ------------------------------------------------------


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 on this machine")
async def test_listening_on_the_ipv6_wildcard_serves_ipv4_clients_too() -> None:
    miner = idle_miner()
    # An IPv4 client shows as ::ffff:127.0.0.1 on the dual-stack socket; either spelling allows it.
    async with ApiServer(miner, "::", 0, allow="W:::ffff:127.0.0.1,W:::1") as api, \
            MetricsServer(miner, "::", 0) as metrics, WebServer(miner, "::", 0) as web:
        for address in ("127.0.0.1", "::1"):
            reply = parse_text(await _ask_at(address, api.port, b"version"))
            assert reply[0].fields["STATUS"] == "S", address
            status, _ = await http(metrics.port, get("/metrics", "localhost"), host=address)
            assert status == 200, address
            status, _ = await http(web.port, get("/api/stats", "localhost"), host=address)
            assert status == 200, address


async def _ask_at(address: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(address, port)
    writer.write(request)
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


# --- 5. the Host header, strictly --------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("[::1]evil.example", 400),
        ("[::1].evil.example", 400),
        ("localhost:abc", 400),
        ("localhost:", 400),
        ("localhost:80:90", 400),
        ("evil.example@localhost", 400),
        ("localhost, evil.example", 400),
        ("::1", 400),
        ("evil.example", 403),
        ("localhost.evil.example:8080", 403),
        ("localhost:8080", 200),
        ("[::1]:8080", 200),
        ("[::1]", 200),
        ("LOCALHOST.", 200),
    ],
)
async def test_the_dashboard_takes_only_an_exact_host_header(host: str, status: int) -> None:
    async with servers() as (_, web, _metrics):
        assert (await http(web.port, get("/api/stats", host)))[0] == status


async def test_an_absolute_form_target_must_name_an_allowed_host() -> None:
    async with servers() as (_, web, metrics):
        for port, path in ((web.port, "/api/stats"), (metrics.port, "/metrics")):
            for authority, status in [("evil.example", 403), ("evil.example:80", 403),
                                      ("localhost@evil.example", 400), ("localhost", 200), ("[::1]:80", 200)]:
                raw = f"GET http://{authority}{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                assert (await http(port, raw.encode()))[0] == status, (path, authority)
            raw = f"GET ftp://localhost{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            assert (await http(port, raw.encode()))[0] == 400


async def test_metrics_answer_only_their_own_host_names_unless_allowed() -> None:
    miner = idle_miner()
    async with MetricsServer(miner, "127.0.0.1", 0) as plain, \
            MetricsServer(miner, "127.0.0.1", 0, allowed_hosts=["prometheus.lan"]) as allowed:
        for host, status in [("attacker.example:8080", 403), ("prometheus.lan:9100", 403), ("127.0.0.1", 200),
                             ("localhost:9100", 200), ("[::1]evil", 400)]:
            code, body = await http(plain.port, get("/metrics", host))
            assert code == status, host
            if status == 403:
                assert b"--metrics-allow-host" in body
        assert (await http(allowed.port, get("/metrics", "prometheus.lan:9100")))[0] == 200
        assert (await http(allowed.port, get("/metrics", "attacker.example")))[0] == 403


def test_metrics_allow_host_reaches_the_metrics_from_the_command_line(run: Any) -> None:
    miner = run("--metrics-allow-host", "prom.lan,scraper.lan")
    try:
        for host, status in [("prom.lan:9100", 200), ("scraper.lan", 200), ("evil.example", 403)]:
            with socket.create_connection(("127.0.0.1", miner.metrics), timeout=5) as sock:
                sock.sendall(get("/metrics", host))
                assert sock.recv(64).startswith(f"HTTP/1.1 {status} ".encode()), host
    finally:
        assert miner.stop() < STOP_SECONDS
    done = hashcore("mine", "--embedded", "--metrics-allow-host", "prom.lan", "--api-listen", "off")
    assert done.returncode == 1 and "--metrics-allow-host needs --metrics-listen" in done.stderr


# --- 6. a key given twice ----------------------------------------------------------------


async def test_a_json_key_given_twice_is_refused_by_the_api_and_the_dashboard() -> None:
    quits: list[bool] = []
    async with servers(allow_control=True, token=TOKEN) as (miner, web, _):
        async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1", on_quit=lambda: quits.append(True)) as api:
            reply = json.loads((await ask(api.port, '{"command":"summary","command":"quit"}')).rstrip(b"\x00"))
            assert status_of(reply)["Msg"] == "Invalid JSON"
            reply = json.loads((await ask(api.port, '{"command":"quit","parameter":"","command":"summary"}'))
                               .rstrip(b"\x00"))
            assert status_of(reply)["Msg"] == "Invalid JSON"
            await asyncio.sleep(0.1)
            assert quits == []
        for path, body in [("/api/control/pool", b'{"index": 0, "index": 5}'),
                           ("/api/control/pause", b'{"a": {"b": 1, "b": 2}}')]:
            status, answer = await http(web.port, post(path, body, b"X-Hashcore-Token: " + TOKEN.encode()))
            assert status == 400 and b"twice" in answer, answer
        assert not miner.stats().paused


# --- 7. the small ones -------------------------------------------------------------------


@pytest.mark.parametrize("address", ["no-such-host.invalid:0", "999.1.1.1:0"])
def test_a_listen_address_that_is_not_here_names_the_reason(address: str) -> None:
    done = hashcore("mine", "--embedded", "--backend", "reference", "--duration", "30", "--api-listen", address)
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"hashcore: error: --api-listen {address}: cannot listen there: "), errors
    assert "resolves" in errors[0] and "Unknown error" not in errors[0]


@pytest.mark.parametrize("index", ["\u0660", "1_0", "+0", " 0x0", "\uff10"])
async def test_a_pool_index_takes_ascii_digits_only(index: str) -> None:
    miner = idle_miner("stratum+tcp://127.0.0.1:1", "stratum+tcp://127.0.0.1:2")
    async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1") as api:
        for command in ("switchpool", "enablepool", "disablepool"):
            reply = parse_text(await ask(api.port, f"{command}|{index}"))[0].fields
            assert reply["STATUS"] == "E" and reply["Code"] == "26", (command, reply)
        reply = parse_text(await ask(api.port, "switchpool|1"))[0].fields
        assert reply["STATUS"] == "S"


async def test_a_control_request_is_logged_only_once_accepted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hashcore.web")
    async with servers(allow_control=True, token=TOKEN) as (miner, web, _):
        auth = b"X-Hashcore-Token: " + TOKEN.encode()
        for raw in (post("/api/control/pause", b"not json", auth), post("/api/control/pause", b"{}"),
                    post("/api/control/pause", b'{"x":1,"x":2}', auth)):
            assert (await http(web.port, raw))[0] in (400, 401)
        assert not [r for r in caplog.records if "dashboard control" in r.getMessage()]
        assert (await http(web.port, post("/api/control/pause", b"{}", auth)))[0] == 200
        assert miner.stats().paused
        assert [r for r in caplog.records if "dashboard control: pause" in r.getMessage()]


@pytest.mark.parametrize("watts", ["1e300", "0", "-5", "inf", "1001"])
def test_tdp_watts_per_core_outside_0_to_1000_is_a_usage_error(watts: str) -> None:
    done = hashcore("telemetry", "--json", "--seconds", "0.1", "--tdp-watts-per-core", watts)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "--tdp-watts-per-core" in done.stderr
    assert done.stdout == ""


def test_json_output_is_strict_with_non_finite_numbers_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    _print_json({"j_per_th": float("inf"), "rows": [float("nan"), 1.5, {"w": float("-inf")}], "n": 3})
    line = capsys.readouterr().out.strip()
    assert json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the JSON")) == {
        "j_per_th": None, "rows": [None, 1.5, {"w": None}], "n": 3}
    done = hashcore("telemetry", "--json", "--seconds", "0.2", "--tdp-watts-per-core", "1000")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout.strip().splitlines()[-1], parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


@pytest.mark.parametrize(
    "flags",
    [
        ["--asic-emulator-faults", "garbage=0.5"],
        ["--backend", "asic", "--asic-emulator-faults", "garbage=0.5"],
        ["--asic-port", "emulator", "--asic-emulator-faults", "garbage=0.5"],
        ["--backend", "reference", "--asic-port", "emulator", "--asic-emulator-faults", "garbage=0.5"],
    ],
)
def test_emulator_faults_without_the_emulator_are_a_usage_error(flags: list[str]) -> None:
    done = hashcore("mine", "--embedded", "--duration", "1", "--api-listen", "off", *flags)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--asic-emulator-faults needs --backend asic --asic-port emulator" in lines[0]
