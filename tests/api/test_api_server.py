"""The cgminer API over real TCP, in front of a miner mining against the embedded pool."""

from __future__ import annotations

import asyncio
import json

import pytest

from hashcore.api import ApiServer
from tests.api.client import ask, ask_json, parse_text, rig, status_of
from tests.doubles import ThrottleDouble
from tests.live import wait_until

#: Every report command, its parameter, the JSON section of its reply, and what starts
#: that section's rows in the text form (the section name, or the row's own id field).
REPORTS = [
    ("version", "", "VERSION", "VERSION"),
    ("config", "", "CONFIG", "CONFIG"),
    ("summary", "", "SUMMARY", "SUMMARY"),
    ("pools", "", "POOLS", "POOL"),
    ("devs", "", "DEVS", "CPU"),
    ("stats", "", "STATS", "STATS"),
    ("devdetails", "", "DEVDETAILS", "DEVDETAILS"),
    ("coin", "", "COIN", "COIN"),
    ("power", "", "POWER", "POWER"),
    ("check", "summary", "CHECK", "CHECK"),
]

SUMMARY_FIELDS = {
    "Elapsed", "MHS av", "MHS 5s", "GHS av", "GHS 5s", "Found Blocks", "Accepted", "Rejected", "Hardware Errors",
    "Utility",
    "Discarded", "Stale", "Remote Failures", "Total MH", "Difficulty Accepted", "Pool Rejected%", "Pool Stale%",
    "Power", "Power av", "Energy", "J/TH", "Energy Source", "Energy Exact",
}
POOL_FIELDS = {
    "POOL", "URL", "Status", "Priority", "Quota", "Accepted", "Rejected", "Stale", "User", "Last Share Time",
    "Difficulty Accepted", "Stratum Difficulty", "Has Stratum", "Stratum Active", "Stratum URL",
    "Pool Rejected%", "Pool Stale%",
}
DEV_FIELDS = {"CPU", "Name", "ID", "Enabled", "Status", "MHS av", "MHS 5s", "Accepted", "Rejected", "Hardware Errors",
              "Total MH", "Device Elapsed", "Last Share Time", "Power av", "J/TH", "Energy Source"}


async def test_every_report_command_answers_in_json_and_in_text():
    async with rig() as r:
        await wait_until(lambda: r.miner.stats().hashes > 0, what="hashing")
        for command, parameter, section, marker in REPORTS:
            body = await ask_json(r.port, command, parameter)
            assert status_of(body)["STATUS"] == "S", (command, body)
            assert isinstance(body[section], list) and body[section] and body["id"] == 1
            text = parse_text(await ask(r.port, f"{command}|{parameter}" if parameter else command))
            assert text[0].label is None and text[0].fields["STATUS"] == "S", command
            assert text[0].fields["Code"] == str(status_of(body)["Code"])
            assert len(text) == 1 + len(body[section]), command
            for row, json_row in zip(text[1:], body[section], strict=True):
                assert row.label == marker or next(iter(row.fields)) == marker, (command, row)
                assert set(row.fields) == set(json_row), command


async def test_summary_pools_and_devs_carry_the_fields_farm_tools_read_with_live_figures():
    async with rig() as r:
        await wait_until(lambda: r.miner.stats().accepted >= 2, what="two shares")
        summary = (await ask_json(r.port, "summary"))["SUMMARY"][0]
        pools = (await ask_json(r.port, "pools"))["POOLS"]
        devs = (await ask_json(r.port, "devs"))["DEVS"]
        stats = r.miner.stats()
    assert set(summary) >= SUMMARY_FIELDS
    assert summary["Accepted"] >= 2 and summary["Accepted"] <= stats.accepted
    assert summary["MHS av"] > 0 and summary["Total MH"] > 0 and summary["Elapsed"] >= 0
    assert summary["Energy Source"] == stats.energy.source
    assert set(pools[0]) >= POOL_FIELDS
    assert pools[0]["URL"] == r.pools[0].url and pools[0]["Status"] == "Alive" and pools[0]["Stratum Active"] is True
    assert pools[0]["User"] == "alice" and pools[0]["Last Share Time"] > 1_600_000_000
    assert set(devs[0]) >= DEV_FIELDS and devs[0]["Name"] == "reference" and devs[0]["CPU"] == 0


async def test_joined_commands_answer_each_under_its_own_key_in_both_forms():
    async with rig() as r:
        body = await ask_json(r.port, "summary+pools+devs")
        assert list(body) == ["summary", "pools", "devs"]
        for key, section in (("summary", "SUMMARY"), ("pools", "POOLS"), ("devs", "DEVS")):
            assert status_of(body[key][0])["STATUS"] == "S" and section in body[key][0]
        text = (await ask(r.port, "version+config\n")).decode()
        assert text.startswith("CMD=version|STATUS=S,") and "|CMD=config|STATUS=S," in text and "CONFIG," in text


async def test_a_client_that_does_not_close_its_side_still_gets_its_answer():
    async with rig(api_options={"quiet_time": 0.1}) as r:
        pretty = json.dumps({"command": "summary", "parameter": ""}, indent=2)
        assert "SUMMARY" in json.loads((await ask(r.port, pretty, half_close=False))[:-1])
        assert (await ask(r.port, "version", half_close=False)).startswith(b"STATUS=S,")


@pytest.mark.parametrize(
    ("request_bytes", "code", "json_form"),
    [
        (b'{"command": "summary"', 23, True),
        (b'{"parameter": "0"}', 24, True),
        (b'{"command": ["summary"]}', 14, True),
        (b'{"command": "bogus"}', 14, True),
        (b"bogus|1", 14, False),
        (b"", 14, False),
        (b"\xff\xfe", 14, False),
    ],
)
async def test_malformed_and_unknown_requests_get_an_error_status_and_a_clean_close(request_bytes, code, json_form):
    async with rig() as r:
        reply = await ask(r.port, request_bytes)  # reads to EOF: a reset would raise here
        if json_form:
            body = json.loads(reply[:-1])
            assert list(body) == ["STATUS", "id"]
            assert status_of(body)["STATUS"] == "E" and status_of(body)["Code"] == code
        else:
            row = parse_text(reply)[0].fields
            assert row["STATUS"] == "E" and row["Code"] == str(code)
        # The server is still there for the next client.
        assert "SUMMARY" in await ask_json(r.port, "summary")


async def test_oversized_requests_get_an_error_in_their_own_form_and_the_client_reads_it():
    async with rig(api_options={"max_request": 1024}) as r:
        big_json = b'{"command": "summary", "parameter": "' + b"x" * 200_000 + b'"}'
        body = json.loads((await ask(r.port, big_json))[:-1])
        assert status_of(body)["STATUS"] == "E" and status_of(body)["Code"] == 1005
        text = parse_text(await ask(r.port, b"summary" + b"y" * 5000))
        assert text[0].fields["Code"] == "1005" and "1024 bytes" in text[0].fields["Msg"]


async def test_write_commands_are_refused_without_api_allow_and_nothing_changes():
    async with rig(pools=2) as r:
        await wait_until(lambda: r.miner.stats().active_pool == r.pools[0].url, what="the first pool")
        for command, parameter in [("switchpool", "1"), ("disablepool", "0"), ("enablepool", "1"),
                                   ("addpool", "stratum+tcp://127.0.0.1:1,alice,x"), ("pause", ""),
                                   ("resume", ""), ("powertarget", "100"), ("privileged", ""), ("quit", "")]:
            body = await ask_json(r.port, command, parameter)
            assert status_of(body)["STATUS"] == "E" and status_of(body)["Code"] == 45
            assert status_of(body)["Msg"] == f"Access denied to '{command}' command"
            text = parse_text(await ask(r.port, f"{command}|{parameter}"))[0].fields
            assert text["Code"] == "45"
        check = (await ask_json(r.port, "check", "switchpool"))["CHECK"][0]
        assert check == {"Exists": "Y", "Access": "N"}
        await asyncio.sleep(0.3)
        stats = r.miner.stats()
        assert stats.active_pool == r.pools[0].url and len(stats.pools) == 2 and not stats.paused
        assert all(p.enabled for p in stats.pools)


async def test_read_only_entries_and_unlisted_addresses():
    async with rig(allow="R:127.0.0.1") as r:
        assert status_of(await ask_json(r.port, "switchpool", "0"))["Code"] == 45
        assert "SUMMARY" in await ask_json(r.port, "summary")
    async with rig(allow="W:10.9.8.7") as r:
        # Not listed: cgminer ignores the client; the connection closes without a reply.
        assert await ask(r.port, "summary") == b""


async def test_switchpool_with_w_access_switches_the_miner_in_both_forms():
    async with rig(pools=2, allow="W:127.0.0.1") as r:
        first, second = r.pools
        await wait_until(lambda: r.miner.stats().active_pool == first.url, what="the first pool")
        body = await ask_json(r.port, "switchpool", "1")
        assert status_of(body)["STATUS"] == "S" and status_of(body)["Code"] == 27
        assert status_of(body)["Msg"] == f"Switching to pool 1:'{second.url}'"
        await wait_until(lambda: r.miner.stats().active_pool == second.url, what="the switch to pool 1")
        await wait_until(lambda: second.stats.accepted >= 1, what="shares on pool 1")
        pools = (await ask_json(r.port, "pools"))["POOLS"]
        assert [p["Priority"] for p in pools] == [1, 0] and pools[1]["Stratum Active"] is True
        reply = parse_text(await ask(r.port, "switchpool|0"))[0].fields
        assert reply["STATUS"] == "S" and reply["Msg"] == f"Switching to pool 0:'{first.url}'"
        await wait_until(lambda: r.miner.stats().active_pool == first.url, what="the switch back")
        for bad in ("2", "x", ""):
            code = status_of(await ask_json(r.port, "switchpool", bad))["Code"]
            assert code == (25 if not bad else 26)


async def test_enable_disable_and_add_pools_through_the_api():
    async with rig(pools=2, allow="W:127.0.0.1") as r:
        first, second = r.pools
        assert status_of(await ask_json(r.port, "enablepool", "1"))["Code"] == 49  # already enabled
        assert status_of(await ask_json(r.port, "disablepool", "1"))["Code"] == 48
        assert status_of(await ask_json(r.port, "disablepool", "1"))["Code"] == 50  # already disabled
        last = await ask_json(r.port, "disablepool", "0")
        assert status_of(last)["STATUS"] == "E" and status_of(last)["Code"] == 51
        pools = (await ask_json(r.port, "pools"))["POOLS"]
        assert [p["Status"] for p in pools][1] == "Disabled"
        assert status_of(await ask_json(r.port, "enablepool", "1"))["Code"] == 47
        assert r.miner.stats().pools[1].enabled

        added = await ask_json(r.port, "addpool", f"{second.url},bob,hunter2")
        status = status_of(added)
        assert status["STATUS"] == "S" and status["Code"] == 55 and "'bob'" in status["Msg"]
        assert "hunter2" not in json.dumps(added)
        own_user = second.url.replace("://", "://carol@")
        other = status_of(await ask_json(r.port, "addpool", f"{own_user},bob,hunter2"))
        assert other["STATUS"] == "W" and other["Code"] == 1008 and "'carol'" in other["Msg"]
        same_user = parse_text(await ask(r.port, f"addpool|{first.url},alice,x"))[0].fields
        assert same_user["STATUS"] == "S" and same_user["Code"] == "55"
        assert [p.user for p in r.miner.stats().pools] == ["alice", "alice", "bob", "carol", "alice"]
        bad = await ask_json(r.port, "addpool", "ftp://nowhere,alice,topsecret")
        assert status_of(bad)["Code"] == 53 and "topsecret" not in json.dumps(bad)
        assert status_of(await ask_json(r.port, "addpool", ""))["Code"] == 52
        pools_text = (await ask(r.port, "pools")).decode()
        assert "hunter2" not in pools_text and "topsecret" not in pools_text


async def test_pause_resume_and_power_target_reach_the_miner_and_the_throttle():
    throttle = ThrottleDouble(120.0, mode="test")
    async with rig(allow="W:127.0.0.1", api_options={"throttle": throttle}) as r:
        assert status_of(await ask_json(r.port, "pause"))["Code"] == 1000
        assert r.miner.stats().paused
        assert (await ask_json(r.port, "summary"))["SUMMARY"][0]["Paused"] is True
        device = (await ask_json(r.port, "devs"))["DEVS"][0]
        assert device["Enabled"] == "N" and device["Status"] == "Alive"
        assert parse_text(await ask(r.port, "resume"))[0].fields["Code"] == "1001"
        assert not r.miner.stats().paused

        assert status_of(await ask_json(r.port, "powertarget", "250.5"))["Code"] == 1002
        assert parse_text(await ask(r.port, "powertarget|off"))[0].fields["STATUS"] == "S"
        assert throttle.targets == [250.5, None]
        for bad in ("-5", "abc", "nan", "inf"):
            assert status_of(await ask_json(r.port, "powertarget", bad))["Code"] == 1004
        throttle.set_target(90.0)
        assert (await ask_json(r.port, "summary"))["SUMMARY"][0]["Power Limit"] == 90.0
        stats_rows = (await ask_json(r.port, "stats"))["STATS"]
        assert stats_rows[0]["ID"] == "HASHCORE" and stats_rows[0]["Throttle mode"] == "test"


async def test_power_target_without_a_throttle_is_an_error():
    async with rig(allow="W:127.0.0.1") as r:
        assert status_of(await ask_json(r.port, "powertarget", "100"))["Code"] == 1003
        assert "Power Limit" not in (await ask_json(r.port, "summary"))["SUMMARY"][0]


async def test_write_commands_cannot_be_joined_even_with_w_access():
    async with rig(pools=2, allow="W:127.0.0.1") as r:
        body = await ask_json(r.port, "summary+switchpool", "1")
        assert status_of(body["summary"][0])["STATUS"] == "S"
        assert status_of(body["switchpool"][0])["Code"] == 45
        await asyncio.sleep(0.3)
        assert r.miner.stats().pools[1].priority == 1


async def test_quit_answers_bye_then_calls_the_cli_callback():
    async with rig(allow="W:127.0.0.1") as r:
        called = asyncio.Event()
        api = ApiServer(r.miner, "127.0.0.1", 0, "W:127.0.0.1", on_quit=called.set)
        async with api:
            assert await ask(api.port, "quit") == b"BYE\x00"
            await asyncio.wait_for(called.wait(), 5)
            body = await ask_json(api.port, "quit")
            assert status_of(body)["STATUS"] == "S" and status_of(body)["Msg"] == "BYE"
        # Without a callback nobody can act on quit: refused.
        assert status_of(await ask_json(r.port, "quit"))["Code"] == 1007


async def test_coin_answers_sha256_and_the_current_block_from_the_snapshot():
    async with rig() as r:
        await wait_until(lambda: r.miner.stats().hashes > 0, what="work from the pool")
        coin = (await ask_json(r.port, "coin"))["COIN"][0]
        assert coin["Hash Method"] == "sha256" and coin["LP"] is False
        job = r.miner.stats().current_job
        assert job is not None and coin["Current Block Hash"] == job.prev_hash[::-1].hex()
        assert coin["Current Block Time"] == job.ntime and coin["Network Difficulty"] > 0
