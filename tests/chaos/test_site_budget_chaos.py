"""A site's live budget file rewritten with what no budget is: garbage, a negative number,
infinity, nothing, a binary blob, an integer of hundreds of digits, or deleted outright.

The site treats a budget it cannot read as zero once its last good reading is too old
(three polls), says why once (naming the file), and takes the budget again as soon as the
file is good. The miner is a real stand-in on loopback; the clock is virtual, so each
poll is a tick away.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hashcore.app.site.config import parse_site_config
from hashcore.app.site.controller import SiteController
from hashcore.throttle.clock import VirtualClock
from tests.site.standins import MinerModel, StandinFleet

BAD = {
    "garbage": b"lots of sun\n",
    "negative": b"-5\n",
    "infinite": b"inf\n",
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "huge JSON integer": b'{"watts": 1' + b"0" * 400 + b"}",
    "JSON true": b'{"watts": true}',
    "deleted": None,
}


async def test_an_unreadable_budget_is_zero_said_once_and_the_site_recovers(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture):
    budget = tmp_path / "budget.txt"
    budget.write_text("2000\n")
    clock = VirtualClock(1000.0)
    async with StandinFleet([MinerModel(max_watts=3000, lag_s=0)]) as fleet:
        document = {"site": {"power_budget": str(budget), "budget_poll": 1, "tick": 1, "timeout_s": 1},
                    "miners": [{"address": fleet.addresses[0], "max_watts": 3000}]}
        site = SiteController(parse_site_config(document, "site.toml"), clock=clock)

        async def ticks(count: int) -> None:
            for _ in range(count):
                clock.advance(1.0)
                await site.tick()

        await ticks(1)
        assert site.view().budget_w == 2000 and site.signal_error is None
        for name, content in BAD.items():
            caplog.clear()
            if content is None:
                budget.unlink()
            else:
                budget.write_bytes(content)
            await ticks(5)  # past the last good reading's three polls
            view = site.view()
            assert view.budget_w == 0, name
            assert view.signal_error is not None and str(budget) in view.signal_error, (name, view.signal_error)
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) == 1 and str(budget) in warnings[0].getMessage(), (name, caplog.text)
            budget.write_text("2000\n")
            await ticks(1)
            assert site.view().budget_w == 2000 and site.signal_error is None, name
