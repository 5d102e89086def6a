"""The site file: what it accepts, and the clear errors for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashcore.app.site.config import load_site_config, parse_site_config
from hashcore.errors import ConfigError

EXAMPLE = '''
[site]
power_budget = "budget.txt"
budget_poll = 1
tick = 2
headroom = 0.05
min_on_s = 30
min_off_s = 45
battery_kwh = 10
grid_intensity = 300
listen = "127.0.0.1:0"

[[miners]]
address = "127.0.0.2:4028"
max_watts = 30
min_watts = 8
sleep_watts = 2

[[miners]]
address = "[::1]:4029"
kind = "cgminer"
min_on_s = 5

[[miners]]
address = "10.0.0.7:4028"
kind = "braiins"
username = "root"
password = "hunter2"
'''


def test_a_site_file_gives_the_budget_the_rules_and_each_miner(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(EXAMPLE)
    config = load_site_config(path)
    assert config.power_budget == "budget.txt" and config.budget_poll == 1 and config.tick_s == 2
    assert config.rules.headroom == 0.05
    assert config.budget.battery_kwh == 10 and config.budget.grid_intensity == 300
    assert [m.address for m in config.miners] == ["127.0.0.2:4028", "[::1]:4029", "10.0.0.7:4028"]
    first, second, third = config.miners
    assert (first.kind, first.rules.max_watts, first.rules.min_watts, first.rules.sleep_watts) == (
        "hashcore", 30, 8, 2)
    assert (first.rules.min_on_s, first.rules.min_off_s) == (30, 45)  # the site's defaults
    assert second.kind == "cgminer" and second.rules.min_on_s == 5  # its own
    assert third.password == "hunter2" and "hunter2" not in repr(third)


@pytest.mark.parametrize(("document", "message"), [
    ({"miners": [{"address": "127.0.0.2:4028"}]}, "site.power_budget is missing"),
    ({"site": {"power_budget": 10}}, r"list the miners as \[\[miners\]\]"),
    ({"site": {"power_budget": 10}, "miners": [{"kind": "hashcore"}]}, r"miners\[0\].address is missing"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "nohost"}]}, r"miners\[0\].address"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028"}, {"address": "127.0.0.2:4028"}]},
     "127.0.0.2:4028 is listed twice"),
    ({"site": {"power_budget": 10, "tick": -1}, "miners": [{"address": "127.0.0.2:4028"}]}, "site.tick"),
    ({"site": {"power_budget": 10, "headroom": 2}, "miners": [{"address": "127.0.0.2:4028"}]}, "site.headroom"),
    ({"site": {"power_budget": 10, "colour": "red"}, "miners": [{"address": "127.0.0.2:4028"}]},
     "unknown key 'site.colour'"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028", "min_watts": 20, "max_watts": 10}]},
     "min_watts 20 is above max_watts 10"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028", "password": 5}]},
     "value not shown"),
    ({"site": {"power_budget": 10}, "pools": []}, "unknown section 'pools'"),
])
def test_a_bad_site_file_is_refused_naming_what_is_wrong(document: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_site_config(document, "site.toml")


def test_a_site_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[site\npower_budget = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site_config(path)


def test_the_example_site_file_reads_as_documented():
    config = load_site_config(Path(__file__).parents[2] / "site.example.toml")
    assert config.power_budget == "budget.txt" and config.tick_s == 2 and config.listen == "127.0.0.1:8090"
    assert [(m.address, m.kind) for m in config.miners] == [
        ("127.0.0.2:4028", "hashcore"), ("192.0.2.10:4028", "braiins"), ("192.0.2.11:4028", "cgminer")]
    hashcore, braiins, _ = config.miners
    assert (hashcore.rules.max_watts, hashcore.rules.min_watts, hashcore.rules.ramp_w_per_s) == (30, 10, 5)
    assert braiins.rules.j_per_th == 21.5 and braiins.rules.min_on_s == 300
    assert config.rules.wake_batch == 10
