"""The dashboard's HTTP and event-stream endpoints over real sockets, during a real run.

One miner (reference backend, one thread) mines against two embedded pools for the whole
module; three dashboards watch it: one with control off, one with control on, a throttle
and a bench table, and (where a test needs it) a short-lived third.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hashcore.engine import Miner
from hashcore.errors import ConfigError
from hashcore.stratum.pool import EmbeddedPool
from hashcore.web import WebServer
from hashcore.web.server import MAX_BODY
from tests.doubles import ThrottleDouble
from tests.live import FAST, wait_until
from tests.web.conftest import BENCH_REPORTS, page_throttle, read_events

pytestmark = pytest.mark.asyncio(loop_scope="module")

DIFFICULTY = 1e-4
SECRET = "hunter2-never-on-the-page"
TOKEN = "test-token-0123456789"


@dataclass
class Rig:
    first: EmbeddedPool
    second: EmbeddedPool
    miner: Miner
    plain: WebServer  # control off
    steer: WebServer  # control on, with a throttle and a bench table
    throttle: ThrottleDouble


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def rig() -> AsyncIterator[Rig]:
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as first, \
            EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as second:
        with_credentials = first.url.replace("://", f"://alice:{SECRET}@")
        miner = Miner([with_credentials, second.url], "alice", SECRET, backends=["reference"], threads=1, **FAST)
        throttle = page_throttle()
        async with miner, WebServer(miner) as plain, WebServer(
            miner, allow_control=True, token=TOKEN, throttle=throttle, bench_reports=BENCH_REPORTS
        ) as steer:
            await wait_until(lambda: miner.stats().accepted >= 1, what="a first accepted share")
            yield Rig(first, second, miner, plain, steer, throttle)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        return await response.json()


async def stop_hashing(miner: Miner) -> None:
    """Pause and let the last scan and every answer come back, so the counters hold still."""
    miner.pause()
    await asyncio.sleep(miner.scan_seconds * 2 + 0.3)
    await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's counts and labels (figures that move with the clock left out)."""
    keys = ("hashes", "accepted", "rejected", "stale", "discarded", "duplicates", "blocks", "pools", "paused",
            "energy_source", "energy_exact")
    data = {k: summary[k] for k in keys}
    data["backends"] = {name: (b["hashes"], b["threads"], b["duty"], b["active_threads"], b["energy_source"])
                        for name, b in summary["backends"].items()}
    return data


# --- figures -----------------------------------------------------------------------------


async def test_stats_endpoint_figures_equal_the_json_summary(rig: Rig, http: aiohttp.ClientSession) -> None:
    await stop_hashing(rig.miner)
    try:
        before = rig.miner.stats()
        snap = await get_json(http, rig.plain.url + "api/stats")
        after = rig.miner.stats()
    finally:
        rig.miner.resume()
    assert comparable(snap["summary"]) == comparable(before.to_json()) == comparable(after.to_json())
    assert snap["summary"]["accepted"] >= 1 and snap["summary"]["hashes"] > 0
    assert before.seconds <= snap["summary"]["seconds"] <= after.seconds + 1e-3
    assert before.hashrate_hs >= snap["summary"]["hashrate_hs"] >= after.hashrate_hs  # same hashes, more seconds
    assert snap["state"] == "paused" and snap["control"] is False
    assert snap["live"]["active_pool"] == before.active_pool
    assert snap["live"]["duty"] == 1.0
    assert snap["throttle"] is None


async def test_events_are_pushed_once_a_second_with_the_summary_figures(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.get(rig.plain.url + "api/events") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        low = rig.miner.stats()
        events = await read_events(response, 4)
        high = rig.miner.stats()
    assert [name for name, _ in events] == ["stats"] * 4
    # Arrival times would measure this test's own loop (client and server share it); the
    # snapshots' times are taken on the server.
    stamps = [data["time"] for _, data in events]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(stamps)), stamps
    hashes = [data["summary"]["hashes"] for _, data in events]
    accepted = [data["summary"]["accepted"] for _, data in events]
    assert hashes == sorted(hashes) and hashes[-1] > hashes[0]
    assert accepted == sorted(accepted)
    assert low.hashes <= hashes[0] and hashes[-1] <= high.hashes
    assert low.accepted <= accepted[0] and accepted[-1] <= high.accepted
    for _, data in events:
        assert data["point"][0] == data["time"]
        assert data["point"][1] == data["live"]["recent_hashrate_hs"]
        assert data["point"][2] == data["summary"]["recent_watts"]


async def test_events_while_paused_equal_the_summary_exactly(rig: Rig, http: aiohttp.ClientSession) -> None:
    await stop_hashing(rig.miner)
    try:
        async with http.get(rig.plain.url + "api/events") as response:
            [(_, data)] = await read_events(response, 1)
        assert comparable(data["summary"]) == comparable(rig.miner.stats().to_json())
        assert data["state"] == "paused"
    finally:
        rig.miner.resume()


async def test_history_holds_the_pushed_points(rig: Rig, http: aiohttp.ClientSession) -> None:
    await wait_until(lambda: len(rig.plain.history.hour()) >= 3, what="three history points")
    hour = await get_json(http, rig.plain.url + "api/history?span=hour")
    day = await get_json(http, rig.plain.url + "api/history")
    assert hour["span"] == "hour" and day["span"] == "hour"
    assert len(hour["points"]) >= 3 and any(p[1] for p in hour["points"])
    assert all(p[3] is None for p in hour["points"])  # no throttle, no budget
    by_minute = await get_json(http, rig.plain.url + "api/history?span=day")
    assert by_minute["span"] == "day" and 1 <= len(by_minute["points"]) <= 2
    steered = await get_json(http, rig.steer.url + "api/history?span=hour")
    assert steered["points"][-1][3] == 40.0  # the throttle's budget
    async with http.get(rig.plain.url + "api/history?span=week") as response:
        assert response.status == 400
        assert "hour" in (await response.json())["error"]


async def test_throttle_and_bench_reach_the_page_as_whitelisted_fields(rig: Rig, http: aiohttp.ClientSession) -> None:
    snap = await get_json(http, rig.steer.url + "api/stats")
    assert snap["throttle"] == {"budget_w": 40.0, "power_w": 12.5, "policy": "surplus", "state": "throttled"}
    assert snap["control"] is True
    bench = await get_json(http, rig.steer.url + "api/bench")
    assert [row["backend"] for row in bench["rows"]] == ["c", "reference"]
    assert bench["rows"][0]["j_per_th"] == 2.5e6 and bench["rows"][1]["energy_exact"] is False
    assert "energy_note" not in bench["rows"][0] and bench["error"] is None
    empty = await get_json(http, rig.plain.url + "api/bench")
    assert empty == {"rows": [], "error": None, "source": None}


async def test_a_failing_throttle_leaves_the_miner_figures(rig: Rig, http: aiohttp.ClientSession) -> None:
    class Broken(ThrottleDouble):
        def status(self) -> dict[str, Any]:
            raise RuntimeError("controller crashed")

    async with WebServer(rig.miner, throttle=Broken()) as web:
        snap = await get_json(http, web.url + "api/stats")
    assert snap["throttle"] is None and "controller crashed" in snap["throttle_error"]
    assert snap["summary"]["hashes"] > 0


async def test_bench_table_is_read_from_its_file_on_each_request(rig: Rig, http: aiohttp.ClientSession,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    async with WebServer(rig.miner, bench_reports=path) as web:
        missing = await get_json(http, web.url + "api/bench")
        assert missing["rows"] == [] and "no bench file yet" in missing["error"]
        path.write_text(json.dumps({"backends": BENCH_REPORTS, "chart": "bench.png"}))  # bench --all --json
        table = await get_json(http, web.url + "api/bench")
        assert [r["backend"] for r in table["rows"]] == ["c", "reference"] and table["source"] == "bench.json"
        path.write_text(json.dumps(BENCH_REPORTS[1]))  # bench --json: one report
        assert [r["backend"] for r in (await get_json(http, web.url + "api/bench"))["rows"]] == ["reference"]
        path.write_text("{not json")
        broken = await get_json(http, web.url + "api/bench")
        assert broken["rows"] == [] and "not JSON" in broken["error"]
        path.write_text(json.dumps([{"hashrate_hs": 1}]))
        assert "no 'backend'" in (await get_json(http, web.url + "api/bench"))["error"]


# --- the page ----------------------------------------------------------------------------


async def test_page_and_its_assets_come_from_hashcore_only(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.get(rig.plain.url) as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
        page = await response.text()
    for element in ("hashrate", "power", "jth", "accepted", "rejected", "stale", "blocks", "energy-source", "duty",
                    "budget", "throttle-state", "pools", "backends", "bench", "chart", "status", "pause", "resume",
                    "target-watts", "token"):
        assert f'id="{element}"' in page, element
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references and all(ref.startswith("/static/") for ref in references), references
    assets = {"/static/app.js": "text/javascript", "/static/style.css": "text/css",
              "/static/favicon.svg": "image/svg+xml"}
    assert set(references) == set(assets)
    for path, kind in assets.items():
        async with http.get(rig.plain.url.rstrip("/") + path) as response:
            assert response.status == 200 and response.content_type == kind
            body = await response.text()
            assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in body
    for path in ("/static/server.py", "/static/%2e%2e%2fserver.py", "/static/index.html", "/nothing"):
        async with http.get(rig.plain.url.rstrip("/") + path) as response:
            assert response.status == 404
            assert "error" in await response.json()


async def test_listens_on_loopback_unless_told_and_says_when_the_port_is_taken(rig: Rig) -> None:
    assert rig.plain.url.startswith("http://127.0.0.1:")
    assert rig.plain.token is None
    with pytest.raises(ConfigError, match="cannot listen"):
        await WebServer(rig.miner, port=rig.plain.port).start()
    async with WebServer(rig.miner, allow_control=True) as web:
        assert web.token is not None and len(web.token) >= 24  # made at start when none is given


async def test_pool_passwords_never_reach_the_page(rig: Rig, http: aiohttp.ClientSession) -> None:
    texts = []
    for path in ("", "api/stats", "api/history?span=hour", "api/history?span=day", "api/bench"):
        async with http.get(rig.steer.url + path) as response:
            texts.append(await response.text())
    async with http.get(rig.steer.url + "api/events") as response:
        [(_, data)] = await read_events(response, 1)
        texts.append(json.dumps(data))
    async with http.post(rig.steer.url + "api/control/resume", headers=bearer()) as response:
        texts.append(await response.text())
    assert all(SECRET not in text for text in texts)
    assert data["summary"]["pools"][0]["url"] == rig.first.url
    assert data["summary"]["pools"][0]["user"] == "alice"


async def test_stopping_the_server_tells_open_pages(rig: Rig, http: aiohttp.ClientSession) -> None:
    web = WebServer(rig.miner)
    await web.start()
    async with http.get(web.url + "api/events") as response:
        [(name, _)] = await read_events(response, 1)
        assert name == "stats"
        stopping = asyncio.create_task(web.stop())
        # A stats event already on its way may come first; the page must then get "bye".
        for _ in range(3):
            [(name, data)] = await read_events(response, 1)
            if name != "stats":
                break
        await stopping
    assert name == "bye" and "stopping" in data["reason"]


# --- control -----------------------------------------------------------------------------

CONTROLS = [("pause", {}), ("resume", {}), ("target", {"watts": 10}), ("pool", {"index": 1})]


async def test_control_is_refused_when_not_allowed_even_with_a_token(rig: Rig, http: aiohttp.ClientSession) -> None:
    for action, body in CONTROLS:
        for headers in ({}, bearer(), {"X-Hashcore-Token": TOKEN}):
            async with http.post(rig.plain.url + f"api/control/{action}", json=body, headers=headers) as response:
                assert response.status == 403, action
                assert "--web-allow-control" in (await response.json())["error"]
    stats = rig.miner.stats()
    assert not stats.paused and stats.active_pool == rig.first.url and rig.throttle.targets == []


async def test_control_without_the_right_token_is_refused(rig: Rig, http: aiohttp.ClientSession) -> None:
    wrong = ({}, bearer("not-the-token"), {"X-Hashcore-Token": "not-the-token"}, {"Authorization": f"Basic {TOKEN}"},
             {"Authorization": "Bearer "})
    for action, body in CONTROLS:
        for headers in wrong:
            async with http.post(rig.steer.url + f"api/control/{action}", json=body, headers=headers) as response:
                assert response.status == 401, (action, headers)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "token" in (await response.json())["error"]
    stats = rig.miner.stats()
    assert not stats.paused and stats.active_pool == rig.first.url and rig.throttle.targets == []


async def test_pause_and_resume_with_the_token(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.post(rig.steer.url + "api/control/pause", headers=bearer()) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer["ok"] and answer["stats"]["state"] == "paused"
    assert rig.miner.stats().paused
    await asyncio.sleep(rig.miner.scan_seconds * 2 + 0.3)
    held = rig.miner.stats().hashes
    await asyncio.sleep(0.8)
    assert rig.miner.stats().hashes == held  # hashing really stopped
    snap = await get_json(http, rig.steer.url + "api/stats")
    assert snap["state"] == "paused" and snap["summary"]["paused"] is True
    async with http.post(rig.steer.url + "api/control/resume", headers={"X-Hashcore-Token": TOKEN}) as response:
        assert response.status == 200
    assert not rig.miner.stats().paused
    await wait_until(lambda: rig.miner.stats().hashes > held, what="hashing again")


async def test_switch_pool_with_the_token(rig: Rig, http: aiohttp.ClientSession) -> None:
    try:
        async with http.post(rig.steer.url + "api/control/pool", json={"index": 1}, headers=bearer()) as response:
            assert response.status == 200, await response.text()
        await wait_until(lambda: rig.miner.stats().active_pool == rig.second.url, what="the second pool")
        snap = await get_json(http, rig.steer.url + "api/stats")
        assert snap["live"]["active_pool"] == rig.second.url
        for body in ({"index": 7}, {"index": "1"}, {"index": True}, {"index": 1.0}, {}):
            async with http.post(rig.steer.url + "api/control/pool", json=body, headers=bearer()) as response:
                assert response.status == 400, body
                assert (await response.json())["error"]
    finally:
        async with http.post(rig.steer.url + "api/control/pool", json={"index": 0}, headers=bearer()) as response:
            assert response.status == 200
    await wait_until(lambda: rig.miner.stats().active_pool == rig.first.url, what="the first pool again")


async def test_power_target_with_the_token(rig: Rig, http: aiohttp.ClientSession) -> None:
    url = rig.steer.url + "api/control/target"
    async with http.post(url, json={"watts": 25.5}, headers=bearer()) as response:
        assert response.status == 200
        assert (await response.json())["stats"]["throttle"]["budget_w"] == 25.5
    async with http.post(url, json={"watts": None}, headers=bearer()) as response:
        assert response.status == 200
    assert rig.throttle.targets == [25.5, None]
    for raw in ('{"watts": -1}', '{"watts": "10"}', '{"watts": NaN}', '{"watts": true}', "{}"):
        async with http.post(url, data=raw, headers=bearer()) as response:
            assert response.status == 400, raw
            assert (await response.json())["error"]
    assert rig.throttle.targets == [25.5, None]
    async with WebServer(rig.miner, allow_control=True, token=TOKEN) as web:  # no throttle
        async with http.post(web.url + "api/control/target", json={"watts": 5}, headers=bearer()) as response:
            assert response.status == 409
            assert "no throttle" in (await response.json())["error"]


# --- bad requests ------------------------------------------------------------------------


async def test_oversized_requests_get_413_with_a_json_message(rig: Rig, http: aiohttp.ClientSession) -> None:
    url = rig.steer.url + "api/control/pause"
    async with http.post(url, data=b"{" + b" " * MAX_BODY + b"}", headers=bearer()) as response:
        assert response.status == 413
        assert "too large" in (await response.json())["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(8):
            yield b" " * 1024

    async with http.post(url, data=chunks(), headers=bearer()) as response:
        assert response.status == 413
        assert "too large" in (await response.json())["error"]
    assert not rig.miner.stats().paused


async def test_malformed_requests_get_400_with_a_json_message(rig: Rig, http: aiohttp.ClientSession) -> None:
    url = rig.steer.url + "api/control/pause"
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b'"pause"'):
        async with http.post(url, data=raw, headers=bearer()) as response:
            assert response.status == 400, raw
            assert (await response.json())["error"]
    assert not rig.miner.stats().paused
    async with http.get(url) as response:
        assert response.status == 405
        assert "POST" in (await response.json())["error"]
    # Not HTTP at all: answered 400 and the server goes on.
    host, port = "127.0.0.1", rig.steer.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\x16\x03\x01 this is not http\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split(b" ")[1] == b"400"
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/stats HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 20000 + b"\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split(b" ")[1] in (b"400", b"431")
    assert (await get_json(http, rig.steer.url + "api/stats"))["summary"]["hashes"] > 0
