"""The site's Prometheus metrics, scraped over HTTP from the site page's server and parsed
with prometheus_client's own parser: values, labels, the one-hot state, figures left out
while unknown, and label values that no miner address can break out of."""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from hashcore.app.site.view import SiteView
from hashcore.throttle.site import STATES
from hashcore.web.site import SiteServer
from hashcore.web.sitemetrics import SiteCollector
from tests.web.test_site_server import HOSTILE, ViewSource, miner_view, site_view

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample as {(name, sorted labels): value}."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def names(found: Samples) -> set[str]:
    return {name for name, _ in found}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def scrape(http: aiohttp.ClientSession, view: SiteView, headers: Mapping[str, str] | None = None) -> str:
    async with SiteServer(ViewSource(view)) as server, http.get(server.url + "metrics", headers=headers) as response:
        assert response.status == 200
        return await response.text()


async def test_a_scrape_carries_the_sites_figures(http: aiohttp.ClientSession) -> None:
    view = site_view(co2_location_g=812.5, co2_market_g=40.0)
    found = samples(await scrape(http, view))
    expected = {
        "hashcore_site_budget_watts": view.budget_w,
        "hashcore_site_surplus_watts": view.surplus_w,
        "hashcore_site_usable_watts": view.usable_w,
        "hashcore_site_power_watts": view.measured_w,
        "hashcore_site_energy_joules_total": view.energy_j,
        "hashcore_site_budget_energy_joules_total": view.budget_energy_j,
        "hashcore_site_over_budget_joules_total": view.energy_over_budget_j,
        "hashcore_site_absorbed_joules_total": view.absorbed_j,
        "hashcore_site_curtailed_joules_total": view.curtailed_j,
        "hashcore_site_hashes_total": view.hashes,
        "hashcore_site_ticks_total": view.ticks,
        "hashcore_site_tick_cost_seconds": view.last_tick_cost_s,
    }
    for name, figure in expected.items():
        assert value(found, name) == figure, name
    assert value(found, "hashcore_site_co2_grams", basis="location") == 812.5
    assert value(found, "hashcore_site_co2_grams", basis="market") == 40.0
    assert "python_info" in names(found)  # the process's own metrics too


async def test_each_miner_is_labelled_by_address_and_kind(http: aiohttp.ClientSession) -> None:
    steered = miner_view("10.0.0.5:4028", kind="hashcore", watts=120.5, allotted_w=125.0, target_w=125.0,
                         hashrate_hs=4.2e9, j_per_th=28.7, energy_j=3600.0, control="target")
    sleeper = miner_view("10.0.0.6:4028", kind="antminer", state="asleep", watts=4.0, allotted_w=4.0,
                         target_w=None, hashrate_hs=0.0, j_per_th=None, energy_j=99.5, control="sleep")
    found = samples(await scrape(http, site_view(steered, sleeper)))
    one = {"address": "10.0.0.5:4028", "kind": "hashcore"}
    two = {"address": "10.0.0.6:4028", "kind": "antminer"}
    assert value(found, "hashcore_site_miner_power_watts", **one) == 120.5
    assert value(found, "hashcore_site_miner_allotted_watts", **one) == 125.0
    assert value(found, "hashcore_site_miner_target_watts", **one) == 125.0
    assert value(found, "hashcore_site_miner_hashrate_hashes_per_second", **one) == 4.2e9
    assert value(found, "hashcore_site_miner_joules_per_terahash", **one) == 28.7
    assert value(found, "hashcore_site_miner_energy_joules_total", **one) == 3600.0
    assert value(found, "hashcore_site_miner_control_info", **one, control="target") == 1.0
    assert value(found, "hashcore_site_miner_power_watts", **two) == 4.0
    assert value(found, "hashcore_site_miner_hashrate_hashes_per_second", **two) == 0.0  # reported: zero
    assert value(found, "hashcore_site_miner_energy_joules_total", **two) == 99.5
    assert value(found, "hashcore_site_miner_control_info", **two, control="sleep") == 1.0
    # It holds no target and has no efficiency yet: left out, not zero.
    assert ("hashcore_site_miner_target_watts", tuple(sorted(two.items()))) not in found
    assert ("hashcore_site_miner_joules_per_terahash", tuple(sorted(two.items()))) not in found


async def test_the_state_is_one_hot_over_every_known_state(http: aiohttp.ClientSession) -> None:
    miners = [miner_view(f"10.0.1.{i}:4028", state=state) for i, state in enumerate(STATES)]
    miners.append(miner_view("10.0.1.99:4028", state="rebooting"))  # a state this release does not know
    found = samples(await scrape(http, site_view(*miners)))
    for miner in miners:
        labels = {"address": miner.address, "kind": miner.kind}
        row = {state: value(found, "hashcore_site_miner_state", **labels, state=state) for state in STATES}
        if miner.state in STATES:
            assert row == {state: float(state == miner.state) for state in STATES}, miner.address
        else:
            assert set(row.values()) == {0.0}
            assert value(found, "hashcore_site_miner_state", **labels, state=miner.state) == 1.0


async def test_figures_not_known_yet_are_left_out(http: aiohttp.ClientSession) -> None:
    fresh = miner_view(watts=None, hashrate_hs=None, j_per_th=None, target_w=None)
    view = site_view(fresh, surplus_w=None, measured_w=None, last_tick_cost_s=None, co2_location_g=None,
                     co2_market_g=math.nan)
    found = samples(await scrape(http, view))
    for name in ("hashcore_site_surplus_watts", "hashcore_site_power_watts", "hashcore_site_tick_cost_seconds",
                 "hashcore_site_co2_grams", "hashcore_site_miner_power_watts", "hashcore_site_miner_target_watts",
                 "hashcore_site_miner_hashrate_hashes_per_second", "hashcore_site_miner_joules_per_terahash"):
        assert name not in names(found), name
    assert value(found, "hashcore_site_budget_watts") == view.budget_w
    labels = {"address": fresh.address, "kind": fresh.kind}
    assert value(found, "hashcore_site_miner_allotted_watts", **labels) == fresh.allotted_w
    only_location = samples(await scrape(http, site_view(co2_location_g=5.0)))
    assert [labels for name, labels in only_location if name == "hashcore_site_co2_grams"] == [(("basis", "location"),)]


async def test_a_hostile_address_stays_inside_its_label(http: aiohttp.ClientSession) -> None:
    hostile = miner_view(HOSTILE, kind='k"}\nhashcore_site_budget_watts 1e9\n#', note="</script>")
    view = site_view(hostile)
    text = await scrape(http, view)
    found = samples(text)
    labels = {"address": HOSTILE, "kind": hostile.kind}
    assert value(found, "hashcore_site_miner_power_watts", **labels) == hostile.watts
    assert value(found, "hashcore_site_miner_state", **labels, state="on") == 1.0
    assert value(found, "hashcore_site_budget_watts") == view.budget_w  # not the injected 1e9
    # Every line is a comment or one sample: nothing the address held starts a line of its own.
    sample_line = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$")
    assert all(line.startswith("#") or sample_line.match(line) for line in text.splitlines() if line), text
    assert r'\"' in text and r"\n" in text


async def test_one_view_per_scrape(http: aiohttp.ClientSession) -> None:
    source = ViewSource()
    async with SiteServer(source) as server:
        for _ in range(3):
            before = source.reads
            async with http.get(server.url + "metrics") as response:
                assert response.status == 200
            assert source.reads == before + 1
    assert list(SiteCollector(source).collect())  # the collector on its own reads it too
    assert source.reads >= 4


async def test_openmetrics_gzip_and_head_as_prometheus_asks(http: aiohttp.ClientSession) -> None:
    source = ViewSource()
    async with SiteServer(source) as server:
        url = server.url + "metrics"
        async with http.get(url) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
        async with http.get(url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            body = await response.read()
            assert body.endswith(b"# EOF\n") and b"hashcore_site_budget_watts" in body
        async with http.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert b"hashcore_site_ticks_total" in gzip.decompress(await response.read())
        async with http.head(url) as response:
            assert response.status == 200 and await response.read() == b""
