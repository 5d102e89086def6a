"""Every surface an operator, or a hostile local client, touches, fed bad input through
the real transport: the command line (as a process, or ``hashcore.cli.main``), the
cgminer API over TCP and the dashboard over HTTP.

Each test proves one case: a clear error instead of a hang or a traceback, and no pool
password in any output whatever its characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hashcore.api import ApiServer
from hashcore.backends import base as registry
from hashcore.cli import main
from hashcore.config import MAX_THREADS
from hashcore.control import MAX_POOLS
from hashcore.engine import Miner
from hashcore.errors import ConfigError
from hashcore.metrics import MetricsServer
from hashcore.stratum.pool import EmbeddedPool
from hashcore.web import WebServer
from tests import doubles
from tests.api.client import ask, ask_json, rig, status_of
from tests.doubles import MinerDouble, ThrottleDouble
from tests.live import free_port, wait_until

#: A password holding each character that once cut a URL short (and so showed the rest).
#: Every piece says "sekrit", so any fragment of it in an output is found.
SECRET = "sekrit1#sekrit2/sekrit3?sekrit4@sekrit5%sekrit6:sekrit7"
TOKEN = "operator-token-0123456789"
#: Deeper than any JSON parser's recursion limit in Python: once a RecursionError.
DEEP = "[" * 3000


def hashcore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hashcore.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback, or say a request failed."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def idle_miner(*urls: str, user: str = "alice") -> Miner:
    """A miner that is never started: its figures and pool list are all the API and the
    dashboard need, and no pool is dialled."""
    return Miner(list(urls) or ["stratum+tcp://127.0.0.1:1"], user, "x", backends=["reference"], threads=1)


@contextlib.asynccontextmanager
async def dashboard(miner: Any, **options: Any) -> AsyncIterator[tuple[WebServer, aiohttp.ClientSession]]:
    async with WebServer(miner, "127.0.0.1", 0, **options) as web, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        yield web, http


# --- 1. a taken port ---------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("flag", ["--metrics-listen", "--web-listen", "--api-listen"])
def test_a_taken_port_stops_the_run_at_once_with_one_line_naming_the_flag(flag: str, taken_port: int) -> None:
    address = f"127.0.0.1:{taken_port}"
    api = [] if flag == "--api-listen" else ["--api-listen", f"127.0.0.1:{free_port()}"]
    # The process once held the pool, hashed nothing and outlived --duration: the timeout,
    # well under --duration, is what catches that hang.
    done = hashcore("mine", "--embedded", "--backend", "reference", "--threads", "1", "--duration", "120",
                    *api, flag, address, timeout=40)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"hashcore: error: {flag} {address}: cannot listen there"), errors
    assert "Traceback" not in done.stderr


async def test_the_dashboard_and_the_metrics_refuse_a_taken_port_alike_and_hold_nothing(taken_port: int) -> None:
    miner = MinerDouble()
    servers = {"dashboard": WebServer(miner, "127.0.0.1", taken_port),
               "metrics": MetricsServer(miner, "127.0.0.1", taken_port)}
    for what, server in servers.items():
        with pytest.raises(ConfigError) as refused:
            await server.start()
        assert str(refused.value) == \
            f"{what} cannot listen on 127.0.0.1:{taken_port}: {os.strerror(errno.EADDRINUSE)}"
        assert server.port == taken_port
        await server.stop()  # a failed start leaves nothing to stop


# --- 2 and 3. pool URLs: no password shown, no traceback ----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"stratum+tcp://worker:{SECRET}@127.0.0.1:99999",  # bad port
        f"worker:{SECRET}@127.0.0.1:99999",  # no scheme
        f"stratum+tcp://worker:{SECRET}@[::1:3333",  # bad IPv6
        "stratum+tcp://[::1:3333",
        f"http://worker:{SECRET}@127.0.0.1:3333",  # wrong scheme
        f"stratum+tcp://worker:{SECRET}@127.0.0.1",  # no port
    ],
)
def test_a_bad_pool_url_is_one_line_exit_2_without_the_password(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["mine", "--pool", url, "--user", "u", "--backend", "reference"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "--pool" in err and "pool URL" in err
    assert "sekrit" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "table",
    [
        f'url = "stratum+tcp://worker:{SECRET}@127.0.0.1:99999"',
        f'url = "worker:{SECRET}@[::1:3333"',
        f'url = "127.0.0.1:99999"\nuser = "worker"\npassword = "{SECRET}"',
    ],
)
def test_a_bad_pool_url_in_the_config_is_one_line_without_the_password(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hashcore.toml"
    config.write_text(f"[[pools]]\n{table}\n")
    assert main(["mine", "--config", str(config), "--user", "u", "--backend", "reference"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("bad port" in err or "IPv6" in err), err
    assert "sekrit" not in err


async def test_a_pool_password_never_reaches_any_output_of_a_running_miner() -> None:
    """Logs at debug level, every API reply, the metrics, the dashboard and the JSON summary."""
    async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0) as pool:
        address = pool.url.split("://", 1)[1]
        api_port, metrics_port, web_port = free_port(), free_port(), free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hashcore.cli", "-vv", "mine", "--pool", f"stratum+tcp://alice:{SECRET}@{address}",
            "--user", "u", "--backend", "reference", "--threads", "1", "--duration", "90", "--json",
            "--api-listen", f"127.0.0.1:{api_port}", "--api-allow", "W:127.0.0.1",
            "--metrics-listen", f"127.0.0.1:{metrics_port}", "--web-listen", f"127.0.0.1:{web_port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        seen: list[str] = []
        try:
            async def accepted() -> bool:
                with contextlib.suppress(OSError, ValueError, KeyError, AssertionError):
                    return bool((await ask_json(api_port, "summary"))["SUMMARY"][0]["Accepted"] >= 1)
                return False

            for _ in range(300):
                if await accepted():
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the miner never had a share accepted")
            replies = [
                await ask_json(api_port, "addpool", f"bob:{SECRET}@{address}"),  # no scheme: echoed once
                await ask_json(api_port, "addpool", f"stratum+tcp://{address},carol,{SECRET}"),
                await ask_json(api_port, "addpool", f"bob:{SECRET}@127.0.0.1:99999,bob,{SECRET}"),
            ]
            assert [status_of(r)["Code"] for r in replies] == [55, 55, 53]
            pools = await ask_json(api_port, "pools")
            assert [p["User"] for p in pools["POOLS"]] == ["alice", "bob", "carol"]  # each pool's own user
            replies += [pools, await ask_json(api_port, "stats"), await ask_json(api_port, "summary+pools")]
            seen += [json.dumps(r) for r in replies]
            seen.append((await ask(api_port, "pools")).decode())
            async with aiohttp.ClientSession() as http:
                for url in (f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{web_port}/api/stats"):
                    async with http.get(url) as response:
                        seen.append(await response.text())
            assert status_of(await ask_json(api_port, "quit"))["Msg"] == "BYE"
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert len(summary["pools"]) == 3
    seen += [stdout.decode(), stderr.decode()]
    leaks = [text[max(0, text.find("sekrit") - 80):text.find("sekrit") + 40] for text in seen if "sekrit" in text]
    assert not leaks, leaks


@pytest.mark.parametrize("source", ["environment", "config"])
def test_the_password_can_stay_off_the_command_line(source: str, tmp_path: Path) -> None:
    """HASHCORE_PASSWORD or the config file: nothing another user reads in ``ps``."""
    async def run() -> tuple[int, str, str]:
        # The pool authorizes this worker with this password only, so a share accepted proves it arrived.
        async with EmbeddedPool(difficulty=1e-4, vardiff=None, job_interval=0, accounts={"u": SECRET}) as pool:
            args = ["--pool", pool.url]
            env = {**os.environ, "HASHCORE_PASSWORD": SECRET}
            if source == "config":
                config = tmp_path / "hashcore.toml"
                config.write_text(f'[[pools]]\nurl = "{pool.url}"\npassword = "{SECRET}"\n')
                args, env = ["--config", str(config)], {k: v for k, v in os.environ.items() if k != "HASHCORE_PASSWORD"}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hashcore.cli", "mine", *args, "--user", "u", "--backend", "reference",
                "--threads", "1", "--duration", "4", "--json", "--api-listen", "off",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode or 0, stdout.decode(), stderr.decode()

    code, stdout, stderr = asyncio.run(run())
    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["accepted"] >= 1
    assert "sekrit" not in stdout + stderr


# --- 3. deep JSON, bad addpool: clear replies, no traceback ------------------------------


async def test_addpool_with_a_bad_port_is_an_error_reply_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with ApiServer(idle_miner(), "127.0.0.1", 0, "W:127.0.0.1") as api:
        for url in (f"stratum+tcp://u:{SECRET}@127.0.0.1:99999", f"u:{SECRET}@[::1:3333", "127.0.0.1:99999"):
            reply = await ask_json(api.port, "addpool", f"{url},u,x")
            status = status_of(reply)
            assert status["STATUS"] == "E" and status["Code"] == 53, status
            assert "sekrit" not in json.dumps(reply)
    assert not tracebacks(caplog)


@pytest.mark.parametrize(
    "request_text",
    [DEEP, '{"command": "summary", "parameter": ' + DEEP + "}", '{"command": ' + DEEP],
)
async def test_deeply_nested_json_to_the_api_is_an_error_reply_not_a_traceback(
    request_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ApiServer(idle_miner(), "127.0.0.1", 0) as api:
        reply = await ask(api.port, request_text)
        assert reply.endswith(b"\x00")
        text = reply[:-1].decode()
        assert "STATUS=E" in text or json.loads(text)["STATUS"][0]["STATUS"] == "E", text
        # The server still answers the next client.
        assert status_of(await ask_json(api.port, "version"))["STATUS"] == "S"
    assert not tracebacks(caplog)


async def test_deeply_nested_json_to_a_dashboard_control_is_400_not_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with dashboard(idle_miner(), allow_control=True, token=TOKEN, throttle=ThrottleDouble(50.0)) as (web, http):
        for path in ("target", "pool", "pause"):
            async with http.post(f"{web.url}api/control/{path}", data=DEEP,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status == 400, await response.text()
                assert "nested deeper" in (await response.json())["error"]
    assert not tracebacks(caplog)


# --- 4. config keys and thread counts -----------------------------------------------------


@pytest.mark.parametrize("backend", registry.names())
def test_a_misspelt_backend_option_is_an_error_naming_the_key(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hashcore.toml"
    config.write_text(f'[backends.{backend}]\npth = "auto"\n')
    assert main(["mine", "--config", str(config), "--embedded", "--backend", "reference"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"unknown key 'backends.{backend}.pth'" in err, err


def test_too_many_threads_is_refused_naming_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["mine", "--embedded", "--backend", "reference", "--threads", "100000"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--threads" in err and f"over {MAX_THREADS}" in err, err


# --- 5. DNS rebinding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 403),
        ("evil.example:{port}", 403),
        ("127.0.0.1.evil.example", 403),
        ("localhost.evil.example:{port}", 403),
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST", 200),
        ("[::1]:{port}", 200),
        ("miner.lan:{port}", 200),
        ("rig-7.farm", 200),
    ],
)
async def test_the_dashboard_answers_only_to_its_own_names(host: str, status: int) -> None:
    async with dashboard(idle_miner(), allowed_hosts=["miner.lan", "rig-7.farm."]) as (web, http):
        for path in ("", "api/stats", "static/app.js", "api/history"):
            headers = {"Host": host.format(port=web.port)}
            async with http.get(f"{web.url}{path}", headers=headers) as response:
                assert response.status == status, (path, await response.text())
                if status == 403:
                    assert "host" in (await response.json())["error"]


def test_web_allow_host_reaches_the_dashboard_from_the_command_line(tmp_path: Path) -> None:
    """``--web-allow-host`` (repeated and comma-separated) and ``[web] allow_hosts``."""
    async def run(config: Path) -> dict[str, int]:
        async with EmbeddedPool(difficulty=1e-3, vardiff=None, job_interval=0) as pool:
            web_port = free_port()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hashcore.cli", "mine", "--config", str(config), "--pool", pool.url,
                "--user", "u", "--backend", "reference", "--threads", "1", "--duration", "60",
                "--api-listen", "off", "--web-listen", f"127.0.0.1:{web_port}",
                "--web-allow-host", "a.lan,b.lan", "--web-allow-host", "c.lan",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )
            statuses: dict[str, int] = {}
            try:
                async with aiohttp.ClientSession() as http:
                    for _ in range(200):
                        with contextlib.suppress(aiohttp.ClientError):
                            async with http.get(f"http://127.0.0.1:{web_port}/api/stats"):
                                break
                        await asyncio.sleep(0.1)
                    for name in ("a.lan", "b.lan", "c.lan", "d.lan", "evil.example"):
                        async with http.get(f"http://127.0.0.1:{web_port}/api/stats",
                                            headers={"Host": f"{name}:{web_port}"}) as response:
                            statuses[name] = response.status
            finally:
                process.terminate()
                await asyncio.wait_for(process.communicate(), 30)
            return statuses

    config = tmp_path / "hashcore.toml"
    config.write_text('[web]\nallow_hosts = ["d.lan"]\n')
    statuses = asyncio.run(run(config))
    assert statuses == {"a.lan": 200, "b.lan": 200, "c.lan": 200, "d.lan": 200, "evil.example": 403}


# --- 6. one power-target rule, each pool's user, a pool limit -----------------------------


async def test_a_power_target_of_zero_is_refused_by_the_dashboard_as_by_the_api() -> None:
    throttle = ThrottleDouble(50.0)
    miner = idle_miner()
    async with ApiServer(miner, "127.0.0.1", 0, "W:127.0.0.1", throttle=throttle) as api, \
            dashboard(miner, allow_control=True, token=TOKEN, throttle=throttle) as (web, http):
        for watts in (0, -1, 0.0):
            assert status_of(await ask_json(api.port, "powertarget", str(watts)))["Code"] == 1004
            async with http.post(f"{web.url}api/control/target", json={"watts": watts},
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                assert response.status == 400, await response.text()
                assert "above 0" in (await response.json())["error"]
        async with http.post(f"{web.url}api/control/target", json={"watts": 75},
                             headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
    assert throttle.targets == [75.0]


async def test_the_pools_reply_shows_each_pools_own_user() -> None:
    miner = idle_miner("stratum+tcp://carol:pw@127.0.0.1:1", "stratum+tcp://127.0.0.1:2", user="alice")
    async with ApiServer(miner, "127.0.0.1", 0) as api:
        pools = (await ask_json(api.port, "pools"))["POOLS"]
    assert [p["User"] for p in pools] == ["carol", "alice"]


async def test_addpool_stops_at_the_pool_limit_with_a_clear_error() -> None:
    async with ApiServer(idle_miner(), "127.0.0.1", 0, "W:127.0.0.1") as api:
        for port in range(2, MAX_POOLS + 1):
            assert status_of(await ask_json(api.port, "addpool", f"stratum+tcp://127.0.0.1:{port},u,x"))["Code"] == 55
        refused = status_of(await ask_json(api.port, "addpool", "stratum+tcp://127.0.0.1:999,u,x"))
        assert refused["STATUS"] == "E" and refused["Code"] == 1010 and f"at most {MAX_POOLS}" in refused["Msg"]
        assert len((await ask_json(api.port, "pools"))["POOLS"]) == MAX_POOLS


def test_more_pools_than_the_limit_on_the_command_line_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pools = [arg for port in range(1, MAX_POOLS + 2) for arg in ("--pool", f"127.0.0.1:{port}")]
    assert main(["mine", *pools, "--user", "u", "--backend", "reference"]) == 1
    assert f"at most {MAX_POOLS}" in capsys.readouterr().err


# --- each backend's state in the API and on the dashboard ---------------------------------


#: The engine's per-backend states: one mining, one retrying, one failed.
STATES = {"c": "mining", "opencl": "retrying: no census reply", "asic": "failed: /dev/ttyUSB0 vanished"}


async def test_each_backends_state_shows_in_devs_and_on_the_dashboard() -> None:
    miner = MinerDouble(doubles.stats(backends={name: doubles.backend(state=state) for name, state in STATES.items()}))
    async with ApiServer(miner, "127.0.0.1", 0) as api:
        devs = {d["Name"]: d for d in (await ask_json(api.port, "devs"))["DEVS"]}
    assert {n: (d["Status"], d["Enabled"], d["State"]) for n, d in devs.items()} == {
        "c": ("Alive", "Y", "mining"),
        "opencl": ("Sick", "Y", "retrying: no census reply"),
        "asic": ("Dead", "N", "failed: /dev/ttyUSB0 vanished"),
    }
    async with dashboard(miner) as (web, http), http.get(f"{web.url}api/stats") as response:
        backends = (await response.json())["summary"]["backends"]
    assert {name: b["state"] for name, b in backends.items()} == STATES


async def test_a_hashing_backend_shows_alive_and_enabled_with_its_state() -> None:
    async with rig() as r:
        await wait_until(lambda: r.miner.stats().hashes > 0, what="hashing")
        (device,) = (await ask_json(r.port, "devs"))["DEVS"]
    assert (device["Status"], device["Enabled"], device["State"]) == ("Alive", "Y", "mining")
