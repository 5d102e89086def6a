"""Prometheus metrics scraped over HTTP while the miner mines against the embedded pool."""

from __future__ import annotations

import asyncio
import gzip
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hashcore.metrics import MetricsServer
from tests.api.client import ask_json, rig
from tests.doubles import ThrottleDouble
from tests.live import wait_until


def _get(url: str, headers: Mapping[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def scrape(port: int, path: str = "/metrics", **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_get, f"http://127.0.0.1:{port}{path}", **kwargs)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_a_scrape_during_a_run_matches_the_json_summary_and_the_api():
    async with rig() as r:
        miner = r.miner
        async with MetricsServer(miner, "127.0.0.1", 0) as metrics:
            await wait_until(lambda: miner.stats().accepted >= 2, what="two accepted shares")
            live = samples((await scrape(metrics.port))[2].decode())
            assert value(live, "hashcore_hashes_total", backend="reference") > 0
            assert value(live, "hashcore_pool_up", pool="0", url=r.pools[0].url) == 1.0

            # Hold the figures still, then compare one source with the others.
            miner.pause()
            await asyncio.sleep(0.5)  # the scan in progress returns
            await wait_until(lambda: miner.shares_in_flight == 0, what="every answer")
            status, headers, body = await scrape(metrics.port)
            summary = miner.stats().to_json()
            api = (await ask_json(r.port, "summary"))["SUMMARY"][0]
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    found = samples(body.decode())
    url = r.pools[0].url
    for outcome in ("accepted", "rejected", "stale"):
        shares = value(found, "hashcore_shares_total", pool="0", url=url, outcome=outcome)
        assert shares == summary[outcome] == api[outcome.capitalize()]
    assert value(found, "hashcore_shares_total", pool="0", url=url, outcome="unanswered") == 0
    assert value(found, "hashcore_hashes_total", backend="reference") == summary["hashes"]
    assert round(summary["hashes"] / 1e6, 6) == api["Total MH"]
    assert value(found, "hashcore_pool_difficulty_accepted_total", pool="0", url=url) == pytest.approx(
        summary["pools"][0]["difficulty_accepted"]
    )
    assert value(found, "hashcore_paused") == 1.0
    assert value(found, "hashcore_backend_duty_ratio", backend="reference") == 1.0
    assert value(found, "hashcore_energy_info", source=summary["energy_source"],
                 exact=str(summary["energy_exact"]).lower()) == 1.0
    assert value(found, "hashcore_energy_joules_total") > 0
    assert value(found, "hashcore_joules_per_terahash") > 0
    assert value(found, "hashcore_pool_last_share_timestamp_seconds", pool="0", url=url) > 1_600_000_000
    assert value(found, "hashcore_build_info", version=__import__("hashcore").__version__) == 1.0


async def test_duty_and_budget_come_from_the_miner_and_the_throttle():
    throttle = ThrottleDouble(budget_w=None)
    async with rig() as r:
        async with MetricsServer(r.miner, "127.0.0.1", 0, throttle=throttle) as metrics:
            r.miner.set_duty("reference", 0.5)
            found = samples((await scrape(metrics.port))[2].decode())
            assert value(found, "hashcore_backend_duty_ratio", backend="reference") == 0.5
            assert not any(name == "hashcore_power_budget_watts" for name, _ in found)  # no budget yet
            throttle.set_target(75.0)
            found = samples((await scrape(metrics.port))[2].decode())
            assert value(found, "hashcore_power_budget_watts") == 75.0


async def test_http_details_gzip_openmetrics_head_and_not_found():
    async with rig() as r:
        async with MetricsServer(r.miner, "127.0.0.1", 0) as metrics:
            status, headers, body = await scrape(metrics.port, headers={"Accept-Encoding": "gzip"})
            assert status == 200 and headers["Content-Encoding"] == "gzip"
            assert b"hashcore_hashes_total" in gzip.decompress(body)
            status, headers, body = await scrape(
                metrics.port, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
            assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
            status, headers, body = await scrape(metrics.port, method="HEAD")
            assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
            assert (await scrape(metrics.port, "/nothing"))[0] == 404
            assert (await scrape(metrics.port, method="POST"))[0] == 405


async def test_pool_passwords_never_reach_the_metrics():
    async with rig() as r:
        r.miner.add_pool("stratum+tcp://bob:hunter2@127.0.0.1:1")
        async with MetricsServer(r.miner, "127.0.0.1", 0) as metrics:
            body = (await scrape(metrics.port))[2].decode()
    assert "hunter2" not in body and 'pool="1"' in body
