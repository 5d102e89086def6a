"""The site file: what it accepts, and the clear errors for what it does not."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest

from hashcore.app.site.config import load_site_config, parse_site_config
from hashcore.cli import main
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
    # One miner however its address is written.
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028"}, {"address": " 127.0.0.2:4028"}]},
     "miner 127.0.0.2:4028 is listed twice"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028"}, {"address": "[::ffff:127.0.0.2]:4028"}]},
     r"miner \[::ffff:127.0.0.2\]:4028 \(as 127.0.0.2:4028\) is listed twice"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "[::1]:4028"}, {"address": "[0:0::1]:4028"}]},
     "listed twice"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "Miner.LAN:4028"}, {"address": "miner.lan.:4028"}]},
     "listed twice"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.000.0.2:4028"}]},
     r"miners\[0\].address '127.000.0.2:4028': 127.000.0.2 is not an IPv4 address"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.1:4028"}]}, "127.1 is not an IPv4 address"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:0"}]}, r"miners\[0\].address .* port 0"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028", "kind": "nonsense"}]},
     r"miners\[0\].kind 'nonsense' is not one of hashcore, cgminer, antminer"),
    # Numbers a site cannot be.
    ({"site": {"power_budget": 10, "tick": 0.001}, "miners": [{"address": "127.0.0.2:4028"}]},
     "site.tick must be from 0.1 to 86400, got 0.001"),
    ({"site": {"power_budget": 10, "tick": 1e308}, "miners": [{"address": "127.0.0.2:4028"}]}, "site.tick"),
    ({"site": {"power_budget": 10, "timeout_s": 1e300}, "miners": [{"address": "127.0.0.2:4028"}]},
     "site.timeout_s must be from 0 to 60"),
    ({"site": {"power_budget": 10}, "miners": [{"address": "127.0.0.2:4028", "max_watts": 1e7}]},
     r"miners\[0\].max_watts must be from 0 to 1e\+06"),
    ({"site": {"power_budget": 1e300}, "miners": [{"address": "127.0.0.2:4028"}]}, "site.power_budget"),
    ({"site": {"power_budget": math.inf}, "miners": [{"address": "127.0.0.2:4028"}]}, "site.power_budget"),
    ({"site": {"power_budget": 10, "tick": True}, "miners": [{"address": "127.0.0.2:4028"}]},
     "site.tick must be a positive number, got True"),
    ({"site": {"power_budget": 10}, "miners": [{"address": f"127.0.0.2:{i + 1}"} for i in range(10_001)]},
     "10001 miners listed; at most 10000"),
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


def one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("hashcore: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


@pytest.mark.parametrize(("site", "named"), [
    ('power_budget = "/nonexistent/budget.csv"', "site.power_budget '/nonexistent/budget.csv': cannot read"),
    ('power_budget = "-5"', "site.power_budget '-5': a power budget must be a non-negative number"),
    ('power_budget = 10\npolicy = "bogus"', "[site] unknown policy 'bogus'"),
    ('power_budget = 10\nforecast = "bogus"', "[site] unknown forecast 'bogus'"),
    ("power_budget = 10\nbattery_kwh = 1e308", "[site] --battery-kwh must be above 0 and at most"),
    ('power_budget = 10\nlisten = "127.0.0.1:{busy}"', "site.listen (or --listen): site page cannot listen"),
])
def test_a_site_file_whose_budget_or_page_cannot_start_is_one_line_naming_it(
        site: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:  # a port some other program holds
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        path = tmp_path / "site.toml"
        site = site.format(busy=busy.getsockname()[1])
        path.write_text(f'[site]\n{site}\n[[miners]]\naddress = "127.0.0.1:1"\n')
        assert main(["site", "--config", str(path), "--duration", "1"]) == 1
    error = one_error(capsys.readouterr().err)
    assert f"{path}: " in error and named in error, error
