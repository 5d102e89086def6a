"""The API wire format and the allow list, without sockets."""

from __future__ import annotations

import json

import pytest

from hashcore.api.access import PRIVILEGED, READ_ONLY, AllowList
from hashcore.api.protocol import (
    Code,
    Command,
    Reply,
    RequestError,
    RequestReader,
    Section,
    Severity,
    parse_request,
    render,
    split_parameter,
    status,
    text_value,
)
from hashcore.control import redact_url
from hashcore.errors import ConfigError
from tests.api.client import parse_text

# --- parsing ------------------------------------------------------------------------------


def test_plain_text_request_with_and_without_parameter():
    assert parse_request(b"summary").commands == (Command("summary", ""),)
    request = parse_request(b"switchpool|1\n")
    assert request.commands == (Command("switchpool", "1"),) and not request.json and not request.joined


def test_json_request_and_a_numeric_parameter_becomes_its_text():
    request = parse_request(b'{"command": "switchpool", "parameter": 2}')
    assert request.json and request.commands == (Command("switchpool", "2"),)
    assert parse_request(b'{"command":"summary"}').commands == (Command("summary", ""),)


def test_joined_commands_run_once_each_in_order():
    request = parse_request(b'{"command": "summary+pools+summary+devs"}')
    assert request.joined and [c.name for c in request.commands] == ["summary", "pools", "devs"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"command": ', Code.INVALID_JSON),
        (b'{"parameter": "1"}', Code.MISSING_COMMAND),
        (b'{"command": 5}', Code.INVALID_COMMAND),
        (b"", Code.INVALID_COMMAND),
        (b"+", Code.INVALID_COMMAND),
    ],
)
def test_malformed_requests_name_what_is_wrong(data, code):
    with pytest.raises(RequestError) as caught:
        parse_request(data)
    assert caught.value.code == code
    assert caught.value.json_form == data.startswith(b"{")


def test_addpool_parameter_honours_backslash_escapes():
    assert split_parameter(r"stratum+tcp://h:1,us\,er,p\\w") == ["stratum+tcp://h:1", "us,er", "p\\w"]


# --- framing ------------------------------------------------------------------------------


def test_reader_ends_a_text_request_at_newline_or_nul():
    reader = RequestReader()
    reader.feed(b"summ")
    assert not reader.done
    reader.feed(b"ary\nrest")
    assert reader.done and reader.request() == b"summary"
    nul = RequestReader()
    nul.feed(b"pools\x00")
    assert nul.done and nul.request() == b"pools"


def test_reader_ends_a_json_request_when_it_parses_even_across_newlines():
    reader = RequestReader()
    reader.feed(b'{\n  "command": "summary",\n')
    assert not reader.done
    reader.feed(b'  "parameter": ""\n}')
    assert reader.done and json.loads(reader.request()) == {"command": "summary", "parameter": ""}


def test_reader_flags_an_oversized_request():
    reader = RequestReader(max_size=16)
    reader.feed(b"a" * 10)
    assert not reader.done
    reader.feed(b"a" * 10)
    assert reader.done and reader.oversized


# --- rendering ----------------------------------------------------------------------------


def _summary_reply() -> Reply:
    section = Section("SUMMARY", [{"Elapsed": 3, "MHS av": 1e-05, "Paused": False, "J/TH": None, "URL": "a,b|c=d\\"}])
    return Reply(status(Severity.SUCCESS, Code.SUMMARY, "Summary", "hashcore test", when=7), [section])


def test_json_envelope_is_status_then_sections_then_id():
    body = json.loads(render(True, {"summary": _summary_reply()}, joined=False))
    assert list(body) == ["STATUS", "SUMMARY", "id"]
    assert body["STATUS"] == [{"STATUS": "S", "When": 7, "Code": 11, "Msg": "Summary", "Description": "hashcore test"}]
    assert body["SUMMARY"][0]["J/TH"] is None and body["id"] == 1


def test_joined_json_has_one_key_per_command_each_a_list_with_its_reply():
    replies = {"summary": _summary_reply(), "version": _summary_reply()}
    body = json.loads(render(True, replies, joined=True))
    assert list(body) == ["summary", "version"]
    assert body["summary"][0]["STATUS"][0]["Code"] == 11 and body["summary"][0]["id"] == 1


def test_text_form_escapes_separators_and_never_uses_exponents():
    data = render(False, {"summary": _summary_reply()}, joined=False) + b"\x00"
    assert data.startswith(b"STATUS=S,When=7,Code=11,Msg=Summary,Description=hashcore test|SUMMARY,Elapsed=3,")
    rows = parse_text(data)
    assert rows[1].label == "SUMMARY"
    assert rows[1].fields == {"Elapsed": "3", "MHS av": "0.00001", "Paused": "false", "J/TH": "", "URL": "a,b|c=d\\"}


def test_joined_text_puts_cmd_before_each_reply():
    data = render(False, {"summary": _summary_reply(), "pools": _summary_reply()}, joined=True)
    assert data.startswith(b"CMD=summary|STATUS=S,") and b"|CMD=pools|STATUS=S," in data


def test_text_values():
    assert text_value(True) == "true" and text_value(None) == "" and text_value(12) == "12"
    assert text_value(2.5e-9) == "0.0000000025" and text_value(float("nan")) == ""


# --- allow list ---------------------------------------------------------------------------


def test_default_allows_loopback_read_only_and_nobody_else():
    allow = AllowList.parse(None)
    assert allow.lookup("127.0.0.1") == READ_ONLY and allow.lookup("::1") == READ_ONLY
    assert allow.lookup("192.168.1.5") is None


def test_cgminer_allow_syntax_prefixes_padding_networks_and_first_match():
    allow = AllowList.parse("W:127.0.0.1, 192.168.1/24 ,W:10.0.0.0/8,R:10.1.2.3,W:::1")
    assert allow.lookup("127.0.0.1") == PRIVILEGED
    assert allow.lookup("192.168.1.200") == READ_ONLY
    assert allow.lookup("10.1.2.3") == PRIVILEGED  # W:10.0.0.0/8 comes first
    assert allow.lookup("::1") == PRIVILEGED
    assert allow.lookup("::ffff:127.0.0.1") == PRIVILEGED  # an IPv4 peer on a dual-stack socket
    assert allow.lookup("172.16.0.1") is None
    assert AllowList.parse("0/0").lookup("8.8.8.8") == READ_ONLY
    assert AllowList.parse("W:0/0").lookup("2001:db8::1") == PRIVILEGED


@pytest.mark.parametrize("spec", ["X:127.0.0.1", "300.1.2.3", "W:localhost", "10.0.0.0/40", ","])
def test_bad_allow_entries_are_config_errors_naming_the_entry(spec):
    with pytest.raises(ConfigError, match="--api-allow"):
        AllowList.parse(spec)


def test_passwords_are_cut_from_pool_urls():
    assert redact_url("stratum+tcp://bob:secret@pool.example:3333") == "stratum+tcp://bob@pool.example:3333"
    assert redact_url("stratum+ssl://u:p@[::1]:3333") == "stratum+ssl://u@[::1]:3333"
    assert redact_url("stratum+tcp://pool.example:3333") == "stratum+tcp://pool.example:3333"
