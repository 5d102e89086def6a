"""`hashcore mine` as farm tools see it: the cgminer API and Prometheus over real sockets."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

from tests.live import free_port


def api(port: int, request: dict) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.rstrip(b"\0"))


def test_api_and_metrics_show_the_live_miner_and_quit_stops_it():
    api_port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hashcore.cli", "mine", "--embedded", "--backend", "reference", "--threads", "1",
         "--difficulty", "0.0001", "--duration", "60", "--json", "--api-listen", f"127.0.0.1:{api_port}",
         "--api-allow", "W:127.0.0.1", "--metrics-listen", f"127.0.0.1:{metrics_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        summary: dict = {}
        while time.monotonic() < deadline:
            try:
                summary = api(api_port, {"command": "summary"})["SUMMARY"][0]
                if summary["Accepted"] >= 1:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.3)
        assert summary.get("Accepted", 0) >= 1, "the API never showed an accepted share"
        assert summary["MHS av"] > 0 and summary["Energy Source"] in ("estimate", "rapl")
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
            metrics = reply.read().decode()
        accepted = [float(m.group(1)) for m in re.finditer(
            r'^hashcore_shares_total\{[^}]*outcome="accepted"[^}]*\} (\S+)$', metrics, re.M)]
        assert accepted and sum(accepted) >= 1, metrics[:2000]
        reply = api(api_port, {"command": "quit"})
        assert reply["STATUS"][0]["Msg"] == "BYE"
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    final = json.loads(stdout.strip().splitlines()[-1])
    assert final["accepted"] >= summary["Accepted"] and final["seconds"] < 60
    assert f"cgminer API on 127.0.0.1:{api_port}" in stderr
