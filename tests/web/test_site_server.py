"""The site page's HTTP server over real sockets on loopback: its routes, the Host rule,
read-only methods, the event stream and its goodbye, and a page that never runs what a
miner's address or note holds.

The site is a small source handing out real :class:`SiteView` objects (the controller's
snapshot type), changed by the tests between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hashcore.app.site.view import SiteMinerView, SiteView
from hashcore.errors import ConfigError
from hashcore.web import site as site_module
from hashcore.web.server import MAX_STREAMS
from hashcore.web.site import SiteServer
from tests.web.conftest import read_events

#: An address as hostile as a configuration file (or a peer's echo of it) can make one.
HOSTILE = "<script>window.pwned=1</script>\"'\n<img src=x onerror=\"window.pwned=2\">:4028"


def miner_view(address: str = "127.0.0.2:4028", **changes: Any) -> SiteMinerView:
    """One miner as the controller reports it; ``changes`` replace fields."""
    base = SiteMinerView(
        address=address, kind="hashcore", state="on", watts=120.5, hashrate_hs=4.2e9, j_per_th=28.7,
        energy_j=3600.0, allotted_w=125.0, target_w=125.0, control="target", rank=0, locked=None, since_s=42.0,
        energy_source="rapl", error=None, note="",
    )
    return replace(base, **changes)


def site_view(*miners: SiteMinerView, **changes: Any) -> SiteView:
    """The site with ``miners`` (two ordinary ones by default); ``changes`` replace fields."""
    if not miners:
        miners = (
            miner_view(),
            miner_view("127.0.0.3:4028", kind="cgminer", state="read-only", control="none", rank=None,
                       target_w=None, watts=300.0, allotted_w=300.0, note="read-only API: no write access"),
        )
    base = SiteView(
        seconds=600.0, ticks=120, tick_s=5.0, last_tick_cost_s=0.0123, budget_w=500.0, surplus_w=520.0,
        usable_w=475.0, measured_w=420.5, budget_energy_j=300_000.0, energy_j=250_000.0,
        energy_over_budget_j=1_200.0, absorbed_j=248_800.0, curtailed_j=40_000.0, hashes=2.5e12,
        policy="surplus", signal="trace solar.csv", signal_error=None, battery=None, co2_location_g=None,
        co2_market_g=None, miners=tuple(miners),
    )
    return replace(base, **changes)


class ViewSource:
    """A :class:`~hashcore.app.site.view.SiteSource` that hands out ``current`` and counts the reads."""

    def __init__(self, view: SiteView | None = None) -> None:
        self.current = view or site_view()
        self.reads = 0
        self.failure: Exception | None = None

    def view(self) -> SiteView:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return self.current


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[SiteServer, ViewSource]]:
    source = ViewSource()
    async with SiteServer(source, allowed_hosts=["site.lan"]) as server:
        yield server, source


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def raw(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send ``request`` as bytes; the answer's status (0: none) and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    return (int(match.group(1)) if match else 0), body


# --- routes -------------------------------------------------------------------------------


async def test_the_page_and_its_assets_are_served_with_their_types_and_security_headers(
        served: tuple[SiteServer, ViewSource], http: aiohttp.ClientSession) -> None:
    server, _ = served
    kinds = {"": "text/html", "static/site.js": "text/javascript", "static/style.css": "text/css",
             "static/site.css": "text/css", "static/favicon.svg": "image/svg+xml"}
    static = resources.files("hashcore.web").joinpath("static")
    for path, kind in kinds.items():
        async with http.get(server.url + path) as response:
            assert response.status == 200, path
            assert response.content_type == kind, path
            body = await response.read()
            assert body == static.joinpath(path.removeprefix("static/") or "site.html").read_bytes()
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"


async def test_only_the_pages_own_assets_are_served(served: tuple[SiteServer, ViewSource],
                                                    http: aiohttp.ClientSession) -> None:
    server, _ = served
    for name in ("app.js", "index.html", "site.html", "..%2Fsite.py", "__init__.py"):
        async with http.get(server.url + "static/" + name) as response:
            assert response.status == 404, name
            assert (await response.json())["status"] == 404


async def test_api_site_is_the_views_json(served: tuple[SiteServer, ViewSource], http: aiohttp.ClientSession) -> None:
    server, source = served
    async with http.get(server.url + "api/site") as response:
        assert response.status == 200 and response.content_type == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == source.current.to_json()
    source.current = site_view(miner_view(state="asleep", watts=3.0), budget_w=0.0, measured_w=None,
                               battery={"soc": 0.42, "stored_kwh": 4.2}, co2_location_g=12.5, co2_market_g=0.0)
    async with http.get(server.url + "api/site") as response:
        data = await response.json()
    assert data == source.current.to_json()
    assert data["miners"][0]["state"] == "asleep" and data["measured_w"] is None
    source.current = site_view(hashes=math.inf, energy_j=math.nan)  # a figure past a float's range is unknown
    async with http.get(server.url + "api/site") as response:
        assert response.status == 200
        data = await response.json()
    assert data["hashes"] is None and data["energy_j"] is None


async def test_unknown_paths_are_a_json_404(served: tuple[SiteServer, ViewSource], http: aiohttp.ClientSession) -> None:
    server, _ = served
    for path in ("nothing", "api/stats", "api/control/pause", "metrics/extra"):
        async with http.get(server.url + path) as response:
            assert response.status == 404, path
            assert response.content_type == "application/json"
            assert await response.json() == {"error": f"nothing at /{path}", "status": 404}


# --- read-only ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_every_method_but_get_and_head_is_a_405(served: tuple[SiteServer, ViewSource],
                                                      http: aiohttp.ClientSession, method: str) -> None:
    server, _ = served
    for path in ("", "api/site", "api/events", "metrics", "nothing"):
        async with http.request(method, server.url + path, json={"watts": 0}) as response:
            assert response.status == 405, (method, path)
            assert response.headers["Allow"] == "GET, HEAD"
            assert method in (await response.json())["error"]


async def test_head_answers_without_a_body(served: tuple[SiteServer, ViewSource]) -> None:
    server, _ = served
    status, body = await raw(server.port, b"HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status == 200 and body == b""
    status, _ = await raw(server.port, b"HEAD /api/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status == 405  # a stream has no HEAD


async def test_a_get_carrying_a_body_is_refused(served: tuple[SiteServer, ViewSource]) -> None:
    server, _ = served
    status, body = await raw(server.port, b"GET /api/site HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                                          b"Connection: close\r\n\r\nhello")
    assert status == 400 and b"carries no body" in body


# --- the Host rule --------------------------------------------------------------------------


async def test_requests_for_another_host_name_are_refused(served: tuple[SiteServer, ViewSource],
                                                          http: aiohttp.ClientSession) -> None:
    server, _ = served
    for path in ("", "api/site", "api/events", "metrics"):
        async with http.get(server.url + path, headers={"Host": "evil.example"}) as response:
            assert response.status == 403, path
            assert "--site-allow-host" in (await response.json())["error"]
    for host in ("site.lan", f"site.lan:{server.port}", "localhost", f"127.0.0.1:{server.port}", "[::1]"):
        async with http.get(server.url + "api/site", headers={"Host": host}) as response:
            assert response.status == 200, host
    async with http.get(server.url + "api/site", headers={"Host": "localhost:abc"}) as response:
        assert response.status == 400
    status, _ = await raw(server.port, b"GET http://evil.example/api/site HTTP/1.1\r\nHost: localhost\r\n"
                                       b"Connection: close\r\n\r\n")
    assert status == 403


def test_a_bad_allowed_name_or_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--site-allow-host"):
        SiteServer(ViewSource(), allowed_hosts=["not a name/"])
    with pytest.raises(ConfigError, match="0-65535"):
        SiteServer(ViewSource(), port=70000)


async def test_a_request_the_parser_cannot_read_is_one_short_log_line(
        served: tuple[SiteServer, ViewSource], caplog: pytest.LogCaptureFixture) -> None:
    server, _ = served
    caplog.set_level(logging.DEBUG)
    for request in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50,  # a TLS hello
                    b"G\xffET / HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * 9000 + b"\r\n\r\n"):
        status, _ = await raw(server.port, request)
        assert status in (400, 431), request[:20]
    assert (await raw(server.port, b"GET /api/site HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))[0] \
        == 200  # the server goes on
    lines = [r for r in caplog.records if r.name == "hashcore.web.site.http"]
    assert lines and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert all(r.getMessage().startswith("site page:") for r in lines)
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") or r.exc_info]


# --- the event stream -------------------------------------------------------------------------


async def test_the_stream_sends_the_view_at_once_then_each_new_reading_and_bye_when_stopping(
        monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    monkeypatch.setattr(site_module, "PUSH_INTERVAL", 0.1)
    source = ViewSource()
    server = SiteServer(source)
    await server.start()
    try:
        async with http.get(server.url + "api/events") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            [(name, data)] = await read_events(response, 1)
            assert name == "site" and data == source.current.to_json()
            source.current = site_view(miner_view(state="sleeping"), ticks=121)
            while data["ticks"] != 121:
                [(name, data)] = await read_events(response, 1)
            assert name == "site" and data == source.current.to_json()
            started = time.monotonic()
            await server.stop()
            events = await read_events(response, 10)
            assert time.monotonic() - started < 2.0
    finally:
        await server.stop()
    assert events and events[-1] == ("bye", {"reason": "the site controller is stopping"})
    assert all(name == "site" for name, _ in events[:-1])


async def test_one_sampler_reads_the_view_once_a_second_however_many_pages_listen(
        served: tuple[SiteServer, ViewSource], http: aiohttp.ClientSession) -> None:
    server, source = served
    responses = [await http.get(server.url + "api/events") for _ in range(3)]
    try:
        for response in responses:
            await read_events(response, 1)  # the view at hand, sent at once
        before = source.reads
        started = time.monotonic()
        await asyncio.gather(*(read_events(response, 2) for response in responses))
        elapsed = time.monotonic() - started
        reads = source.reads - before
    finally:
        for response in responses:
            response.close()
    assert elapsed >= 1.0  # two new readings are a second apart
    assert 2 <= reads <= 3, reads  # one reading for all three pages, not one each


async def test_a_failing_view_sends_a_fault_and_recovers(monkeypatch: pytest.MonkeyPatch,
                                                         http: aiohttp.ClientSession) -> None:
    monkeypatch.setattr(site_module, "PUSH_INTERVAL", 0.1)
    source = ViewSource()
    async with SiteServer(source) as server:
        async with http.get(server.url + "api/events") as response:
            await read_events(response, 1)
            source.failure = RuntimeError("the controller's books are locked")
            [(name, data)] = await read_events(response, 1)
            assert name == "fault" and data == {"error": "the controller's books are locked"}
            async with http.get(server.url + "api/site") as failed:
                assert failed.status == 500 and "error" in await failed.json()
            source.failure = None
            [(name, data)] = await read_events(response, 1)
            assert name == "site" and data == source.current.to_json()


async def test_event_streams_are_bounded_and_a_closed_page_frees_its_place(
        monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    monkeypatch.setattr(site_module, "PUSH_INTERVAL", 0.1)
    async with SiteServer(ViewSource()) as server:
        responses = []
        try:
            for _ in range(MAX_STREAMS):
                response = await http.get(server.url + "api/events")
                assert response.status == 200
                responses.append(response)
            async with http.get(server.url + "api/events") as refused:
                assert refused.status == 503 and "too many" in (await refused.json())["error"]
            responses.pop().close()
            # The server sees the page go at its next write.
            deadline = asyncio.get_running_loop().time() + 5
            while True:
                again = await http.get(server.url + "api/events")
                if again.status == 200:
                    responses.append(again)
                    break
                again.close()
                assert asyncio.get_running_loop().time() < deadline, "the closed page's place was never freed"
                await asyncio.sleep(0.1)
        finally:
            for response in responses:
                response.close()


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the process's memory from /proc")
async def test_pages_that_never_read_their_stream_hold_no_backlog_and_do_not_stop_the_server(
        monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    monkeypatch.setattr(site_module, "PUSH_INTERVAL", 0.02)
    big = site_view(*(miner_view(f"10.0.{i // 250}.{i % 250}:4028", error="x" * 200) for i in range(2000)))
    stalled: list[socket.socket] = []
    try:
        async with SiteServer(ViewSource(big)) as server:
            for _ in range(8):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stalled.append(sock)
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
            await asyncio.sleep(1.0)  # each stream's socket fills; what follows would be its backlog
            before = _rss_bytes()
            await asyncio.sleep(2.0)  # a hundred events of about a megabyte for each stalled page
            assert _rss_bytes() - before < 100 * 2 ** 20
            async with http.get(server.url + "api/site") as response:
                assert response.status == 200
            began = time.monotonic()
        assert time.monotonic() - began < 3.0  # stopping waits on no stalled page
    finally:
        for sock in stalled:
            sock.close()


# --- the page never interprets the site's strings ---------------------------------------------


def test_the_script_writes_text_never_html() -> None:
    static = resources.files("hashcore.web").joinpath("static")
    script = static.joinpath("site.js").read_text()
    page = static.joinpath("site.html").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"on", "srcdoc"):
        assert sink not in script, sink
    assert "textContent" in script
    # No inline script or style: the Content-Security-Policy forbids both.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/site.js" defer>']
    assert "style=" not in page and "<style" not in page
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handler


async def test_a_hostile_address_reaches_the_json_as_data(http: aiohttp.ClientSession) -> None:
    source = ViewSource(site_view(miner_view(HOSTILE, kind="<b>kind</b>", error="</td><script>x</script>",
                                             note="\"quoted\"\nnew line")))
    async with SiteServer(source) as server, http.get(server.url + "api/site") as response:
        data = await response.json()
        text = await response.text()
    assert data["miners"][0]["address"] == HOSTILE
    assert "\n" not in text  # the newline travels escaped inside a JSON string


async def test_the_page_in_chromium_shows_a_hostile_address_as_text(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.web.test_browser import _browser_or_skip, _start_chromium

    chromium, driver_path = _browser_or_skip()
    monkeypatch.setattr(site_module, "PUSH_INTERVAL", 0.2)
    hostile = miner_view(HOSTILE, kind="<b>kind</b>", rank=1, error="</td><script>window.pwned=3</script>")
    cheap = miner_view("127.0.0.2:4028", rank=0, j_per_th=20.0)
    down = miner_view("127.0.0.9:4028", state="down", rank=None, control="target", watts=0.0, allotted_w=0.0,
                      error="connection refused")
    source = ViewSource(site_view(hostile, cheap, down, battery={"soc": 0.61, "stored_kwh": 6.1},
                                  co2_location_g=1530.0, co2_market_g=120.0))
    server = SiteServer(source)
    await server.start()
    driver = await asyncio.to_thread(_start_chromium, chromium, driver_path, tmp_path / "profile")
    try:
        await asyncio.to_thread(driver.get, server.url)
        # A few ticks for the chart: the budget steps up and the site follows.
        for tick in range(1, 8):
            source.current = replace(source.current, seconds=600.0 + 5 * tick, ticks=120 + tick,
                                     budget_w=500.0 + 40 * tick, measured_w=420.0 + 38 * tick)
            await asyncio.sleep(0.25)
        page = await _page_until(driver, lambda p: p["status"] == "live" and p["points"] >= 3, "the live chart")
        screenshot = Path(tempfile.gettempdir()) / "hashcore-web" / "site.png"
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(driver.save_screenshot, str(screenshot))
        print(f"site page screenshot: {screenshot}")
        # The controller stops: the page says so, keeps the last figures and comes back with it.
        port = server.port
        await server.stop()
        stopped = await _page_until(driver, lambda p: p["status"] == "stopped", "the goodbye")
        assert stopped["addresses"] == page["addresses"]
        server = SiteServer(source, port=port)
        await server.start()
        await _page_until(driver, lambda p: p["status"] == "live", "the page live again")
        # A proxy that will not pass the event stream: the page reads the figures by polling.
        await asyncio.to_thread(driver.execute_cdp_cmd, "Network.enable", {})
        await asyncio.to_thread(driver.execute_cdp_cmd, "Network.setBlockedURLs", {"urls": ["*/api/events"]})
        await asyncio.to_thread(driver.refresh)
        source.current = replace(source.current, ticks=500)
        polled = await _page_until(driver, lambda p: p["status"] == "polling" and p["ticks"] == "500", "polling")
        assert polled["addresses"] == page["addresses"]
    finally:
        await asyncio.to_thread(driver.quit)
        await server.stop()
    assert page["status"] == "live", page
    assert page["pwned"] is None and page["scripts"] == 1 and page["images"] == 0
    assert page["addresses"] == ["127.0.0.2:4028", HOSTILE, "127.0.0.9:4028"]  # by rank, the unsteered last
    assert page["kinds"][1] == "<b>kind</b>" and page["notes"][1] == "</td><script>window.pwned=3</script>"
    assert page["states"] == ["on", "on", "down"] and page["stateClasses"][2] == "down"
    assert float(page["budget"]) == source.current.budget_w and page["points"] >= 3
    assert page["battery"] and page["co2"]


async def _page_until(driver: Any, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Read the page until ``predicate`` holds (selenium blocks: it runs in a thread)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        page: dict[str, Any] = await asyncio.to_thread(driver.execute_script, READ_SITE_PAGE)
        if predicate(page):
            return page
        assert asyncio.get_running_loop().time() < deadline, f"the page never showed {what}; last read: {page}"
        await asyncio.sleep(0.2)


READ_SITE_PAGE = """
const cells = (column) => [...document.querySelectorAll(`#miners td[data-column="${column}"]`)];
return {
  status: document.getElementById("status").dataset.state,
  points: Number(document.getElementById("chart").dataset.points),
  budget: document.getElementById("budget").dataset.value,
  ticks: document.getElementById("ticks").dataset.value,
  pwned: window.pwned ?? null,
  scripts: document.querySelectorAll("script").length,
  images: document.querySelectorAll("img").length,
  addresses: cells("address").map((td) => td.textContent),
  kinds: cells("kind").map((td) => td.textContent),
  notes: cells("note").map((td) => td.textContent),
  states: cells("state").map((td) => td.textContent),
  stateClasses: cells("state").map((td) => td.className),
  battery: !document.getElementById("battery-figure").hidden,
  co2: !document.getElementById("co2-figure").hidden,
};
"""
