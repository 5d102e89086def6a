"""The TOML config: valid files, wrong types, unknown keys, secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashcore.config import load_config, parse_config
from hashcore.errors import ConfigError
from tests.test_cli import hashcore, last_json

EXAMPLE = Path(__file__).parents[1] / "hashcore.example.toml"


def test_the_example_file_loads_with_pools_in_priority_order():
    config = load_config(EXAMPLE)
    assert config.miner["backends"] == ["c"] and config.miner["threads"] == 2
    urls = config.pool_urls()
    assert urls[0] == "stratum+tcp://pool.example.com:3333"
    assert urls[1] == "stratum+ssl://bc1qexampleaddress.backup:secret@backup.example.com:443"
    assert config.backends["c"] == {"path": "auto"}
    assert config.api["allow"] == "W:127.0.0.1"


def test_priority_orders_pools_then_file_order():
    config = parse_config({"pools": [{"url": "a:1", "priority": 5}, {"url": "b:2"}, {"url": "c:3", "priority": 0}]})
    assert config.pool_urls() == ["b:2", "c:3", "a:1"]


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"miner": {"usr": "x"}}, "unknown key 'miner.usr'"),
        ({"minr": {}}, "unknown section 'minr'"),
        ({"miner": {"threads": "two"}}, "miner.threads must be a whole number from 1 to"),
        ({"miner": {"threads": 0}}, "miner.threads must be a whole number from 1 to"),
        ({"miner": {"threads": 100_000}}, "(4 per core), got 100000"),
        ({"miner": {"backends": "c"}}, "miner.backends must be a non-empty list"),
        ({"pools": [{"user": "u"}]}, "pools[0].url is missing"),
        ({"pools": [{"url": "x:1", "prio": 1}]}, "unknown key 'pools[0].prio'"),
        ({"pools": {"url": "x:1"}}, "pools must be a list of tables"),
        ({"backends": {"gpu": {}}}, "unknown backend [backends.gpu]"),
        ({"backends": {"c": {"path": {"a": 1}}}}, "backends.c.path must be a string, number or boolean"),
        ({"backends": {"c": {"pth": "auto"}}}, "unknown key 'backends.c.pth' (known in backends.c: path)"),
        ({"tls": {"verify": "yes"}}, "tls.verify must be true or false"),
        ({"telemetry": {"tdp_watts_per_core": -1}}, "telemetry.tdp_watts_per_core must be a positive number"),
        ({"throttle": {"power_budget": -5}}, "throttle.power_budget must be a trace file name or a number"),
    ],
)
def test_wrong_types_and_unknown_keys_are_errors_naming_the_key(document, needle):
    with pytest.raises(ConfigError) as error:
        parse_config(document, "my.toml")
    assert str(error.value).startswith("my.toml: ")
    assert needle in str(error.value)


def test_a_secret_of_the_wrong_type_is_not_echoed():
    with pytest.raises(ConfigError) as error:
        parse_config({"pools": [{"url": "x:1", "password": 123456789}]})
    assert "pools[0].password must be a string" in str(error.value)
    assert "123456789" not in str(error.value)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[miner\nuser = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_repr_hides_pool_passwords():
    config = parse_config({"pools": [{"url": "x:1", "user": "u", "password": "hunter2"}]})
    assert "hunter2" not in repr(config)


def test_mine_with_a_config_file_and_a_flag_overriding_it(tmp_path):
    config = tmp_path / "hashcore.toml"
    config.write_text(
        '[miner]\nbackends = ["nonesuch"]\nthreads = 1\nduration = 4\n'
        '[telemetry]\ntdp_watts_per_core = 7.5\n'
    )
    done = hashcore("mine", "--embedded", "--config", str(config), "--backend", "reference", "--difficulty", "0.0001",
                    "--json")
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)
    assert list(summary["backends"]) == ["reference"]  # the flag won over the file
    assert summary["backends"]["reference"]["threads"] == 1  # the file's value was used
    assert 3.5 < summary["seconds"] < 30
    if summary["energy_source"] == "estimate":  # no readable RAPL: the file's TDP was used
        assert "7.5 W/core" in summary["energy_note"]


def test_mine_with_a_broken_config_gives_one_line(tmp_path):
    config = tmp_path / "hashcore.toml"
    config.write_text('[[pools]]\nurl = "stratum+tcp://x:1"\npassword = 42\n')
    done = hashcore("mine", "--config", str(config), "--user", "u")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"hashcore: error: {config}: pools[0].password must be a string, got a int (value not shown)"
    ]
