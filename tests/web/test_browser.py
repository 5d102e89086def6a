"""The dashboard in a real browser: headless Chromium driven by selenium, during a real run.

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium from PyPI. Without them the
test is skipped with a reason that says so loudly; with ``HASHCORE_REQUIRE_BROWSER=1`` (CI)
it fails instead. The screenshot goes to ``$HASHCORE_WEB_SCREENSHOT`` or
``<tmp>/hashcore-web/dashboard.png`` and its path is printed.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hashcore.engine import Miner
from hashcore.stratum.pool import EmbeddedPool
from hashcore.web import WebServer
from tests.live import FAST, free_port, wait_until
from tests.web.conftest import BENCH_REPORTS, page_throttle

DIFFICULTY = 1e-4

#: Every figure the test reads: its text and the raw number in data-value.
FIGURES = ("hashrate", "hashrate-avg", "hashes", "accepted", "rejected", "stale", "blocks", "power", "jth", "energy",
           "energy-source", "duty", "budget", "throttle-state", "miner-state", "active-pool")

READ_PAGE = """
const out = {};
for (const id of arguments[0]) {
  const el = document.getElementById(id);
  out[id] = el ? {text: el.textContent, value: el.dataset.value ?? null} : null;
}
out.status = document.getElementById("status").dataset.state;
out.points = Number(document.getElementById("chart").dataset.points);
out.span = document.getElementById("chart").dataset.span;
out.pools = document.querySelectorAll("#pools tr").length;
out.bench = document.querySelectorAll("#bench tr").length;
return out;
"""


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


def _browser_or_skip() -> tuple[str, str]:
    """Chromium and chromedriver paths, or a loud skip (a failure where CI requires them)."""
    chromium = _find("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
    driver = _find("chromedriver", "/usr/lib/chromium/chromedriver")
    problems = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("selenium is not installed (.venv/bin/pip install selenium)")
    if chromium is None or driver is None:
        problems.append("chromium/chromedriver not found (as root: apt-get install -y chromium chromium-driver)")
    if not problems:
        assert chromium is not None and driver is not None
        return chromium, driver
    reason = "BROWSER TEST NOT RUN: " + "; ".join(problems)
    if os.environ.get("HASHCORE_REQUIRE_BROWSER"):
        pytest.fail(reason + " (HASHCORE_REQUIRE_BROWSER is set)")
    pytest.skip(reason)


def _start_chromium(chromium: str, driver_path: str, profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1700"):
        options.add_argument(argument)
    # Every request the page makes, and the console: script errors and CSP violations land there.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def _screenshot_path() -> Path:
    path = Path(os.environ.get("HASHCORE_WEB_SCREENSHOT") or Path(tempfile.gettempdir()) / "hashcore-web/dashboard.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def _page_until(driver: Any, predicate: Callable[[dict[str, Any]], bool], what: str,
                      timeout: float = 30.0) -> dict[str, Any]:
    """Read the page's figures until ``predicate`` holds (selenium blocks: it runs in a thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        page = await asyncio.to_thread(driver.execute_script, READ_PAGE, list(FIGURES))
        if predicate(page):
            return page
        if loop.time() > deadline:
            raise AssertionError(f"the page never showed {what}; last read: {page}")
        await asyncio.sleep(0.25)


def _replay_a_day(web: WebServer, end: float) -> None:
    """Fill the chart history as a replayed day-long solar trace would: one point a minute,
    ending an hour before ``end``, so the live hour stays the run's own."""
    for minute in range(23 * 60):
        t = end - 86400 + 60 * minute
        sun = max(0.0, math.sin(math.pi * (minute - 6 * 60) / (12 * 60)))  # daylight from 06:00 to 18:00
        budget = 30.0 * sun
        power = min(budget, 4.0)
        web.history.add(t, power * 150_000.0, power, budget)


def _value(page: dict[str, Any], figure: str) -> float:
    raw = page[figure]["value"]
    return float(raw) if raw not in (None, "") else 0.0


async def test_dashboard_in_chromium_shows_the_run_live_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    chromium, driver_path = _browser_or_skip()
    throttle = page_throttle()
    port = free_port()
    async with EmbeddedPool(difficulty=DIFFICULTY, vardiff=None, job_interval=0) as pool:
        miner = Miner([pool.url], "alice", "x", backends=["reference"], threads=1, **FAST)
        web = WebServer(miner, port=port, allow_control=True, throttle=throttle, bench_reports=BENCH_REPORTS)
        await web.start()
        _replay_a_day(web, time.time())
        origin = web.url.rstrip("/")
        driver = await asyncio.to_thread(_start_chromium, chromium, driver_path, tmp_path / "profile")
        try:
            # The page is open before the miner starts, so it sees the figures rise from zero.
            await asyncio.to_thread(driver.get, f"{web.url}#token={web.token}")
            before = await _page_until(driver, lambda p: p["status"] == "live", "the live state")
            assert _value(before, "accepted") == 0 and _value(before, "hashrate") == 0
            assert before["bench"] == 2 and before["pools"] == 1
            await miner.start()
            # Shares can come faster than the once-a-second pushes that draw the chart's points.
            rising = await _page_until(
                driver, lambda p: _value(p, "hashrate") > 0 and _value(p, "accepted") >= 2 and p["points"] >= 2,
                "the hashrate and the accepted count rise, and the chart draw the pushed points",
            )
            assert rising["energy-source"]["text"] in ("estimate, not measured", "not measured") \
                or rising["energy-source"]["text"].startswith("measured (")
            assert rising["budget"]["value"] == "40" and rising["throttle-state"]["text"] == "throttled"

            # The page's own pause button, with the token from the link: the miner stops hashing
            # and, once it holds still, the page shows exactly the miner's figures.
            await asyncio.to_thread(lambda: driver.find_element("id", "pause").click())
            await wait_until(lambda: miner.stats().paused, what="the page's pause")
            await asyncio.sleep(miner.scan_seconds * 2 + 0.3)
            await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")
            stats = miner.stats()
            paused = await _page_until(
                driver, lambda p: p["miner-state"]["text"] == "paused" and _value(p, "hashes") == stats.hashes,
                "the paused miner's figures",
            )
            assert _value(paused, "accepted") == stats.accepted > _value(before, "accepted")
            assert _value(paused, "rejected") == stats.rejected and _value(paused, "stale") == stats.stale
            assert _value(paused, "blocks") == stats.block_candidates
            assert _value(paused, "hashrate-avg") > 0
            await asyncio.to_thread(lambda: driver.find_element("id", "resume").click())
            await wait_until(lambda: not miner.stats().paused, what="the page's resume")
            await _page_until(driver, lambda p: p["miner-state"]["text"] == "mining", "mining again")

            screenshot = _screenshot_path()
            await asyncio.to_thread(driver.save_screenshot, str(screenshot))
            print(f"dashboard screenshot: {screenshot}")
            assert screenshot.stat().st_size > 10_000
            # The day view: one point a minute, the replayed day and then the run.
            await asyncio.to_thread(lambda: driver.find_element("id", "span-day").click())
            day = await _page_until(driver, lambda p: p["span"] == "day" and p["points"] > 1000, "the day chart")
            assert day["points"] <= 1440
            day_screenshot = screenshot.with_name(screenshot.stem + "-day.png")
            await asyncio.to_thread(driver.save_screenshot, str(day_screenshot))
            print(f"dashboard screenshot, day view: {day_screenshot}")

            # Nothing outside hashcore: every resource the page loaded, and every request the
            # browser sent (the DevTools log also holds failed and blocked ones).
            names = await asyncio.to_thread(
                driver.execute_script,
                "return [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]"
                ".map(e => e.name);",
            )
            assert names and all(name.startswith(origin + "/") for name in names), names
            log = await asyncio.to_thread(driver.get_log, "performance")
            sent = [
                (message["params"].get("documentURL", ""), message["params"]["request"]["url"])
                for message in (json.loads(entry["message"])["message"] for entry in log)
                if message["method"] == "Network.requestWillBeSent"
            ]
            from_page = [url for document, url in sent if document.startswith(origin + "/")]
            assert len(from_page) >= 5 and all(url.startswith(origin + "/") for url in from_page), from_page
            # Chromium's own blank tab loads chrome:// pages; no one loads anything else from the network.
            network = [url for _, url in sent if url.split(":", 1)[0] in ("http", "https", "ws", "wss")]
            assert all(url.startswith(origin + "/") for url in network), network

            console = await asyncio.to_thread(driver.get_log, "browser")
            assert [entry for entry in console if entry["level"] == "SEVERE"] == [], console

            # The miner's dashboard goes away: the page says so; it comes back: the page is live again.
            await web.stop()
            gone = await _page_until(driver, lambda p: p["status"] in ("stopped", "offline"), "the stop")
            assert gone["status"] == "stopped"
            web = WebServer(miner, port=port, allow_control=True, throttle=throttle, bench_reports=BENCH_REPORTS)
            await web.start()
            await _page_until(driver, lambda p: p["status"] == "live", "the live state again", timeout=20)
        finally:
            await asyncio.to_thread(driver.quit)
            await web.stop()
            await miner.stop()
