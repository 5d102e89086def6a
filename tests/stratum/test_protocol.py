"""The sans-I/O client core: bytes in, events out, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashcore.stratum import events as ev
from hashcore.stratum.protocol import ClientConnection, LocalProtocolError, State
from hashcore.work import WorkOrigin

NOTIFY = {
    "id": None,
    "method": "mining.notify",
    "params": [
        "bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",
        "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
        [], "00000002", "1c2ac4af", "504e86b9", False,
    ],
}


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def events(conn: ClientConnection) -> list[ev.Event]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def sent(data: bytes) -> dict[str, Any]:
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    return json.loads(data)


def subscribed(mask: bool = True) -> ClientConnection:
    """A connection that has configured, subscribed and authorized (ids 1, 2, 3)."""
    conn = ClientConnection()
    conn.configure()
    conn.subscribe()
    conn.authorize("alice", "x")
    conn.receive_data(line({"id": 1, "result": {"version-rolling": mask, "version-rolling.mask": "1fffe000"},
                            "error": None}))
    conn.receive_data(line({"id": 2, "result": [[["mining.set_difficulty", "s1"], ["mining.notify", "s1"]],
                                                "08000002", 4], "error": None}))
    conn.receive_data(line({"id": 3, "result": True, "error": None}))
    events(conn)
    return conn


def test_requests_have_the_shapes_pools_expect():
    conn = ClientConnection(user_agent="hashcore/test")
    configure = sent(conn.configure(0x1FFFE000, 2))
    assert configure["method"] == "mining.configure"
    assert configure["params"] == [["version-rolling"],
                                   {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}]
    subscribe = sent(conn.subscribe())
    assert subscribe == {"id": 2, "method": "mining.subscribe", "params": ["hashcore/test"]}
    assert sent(conn.authorize("alice.1", "pw"))["params"] == ["alice.1", "pw"]
    assert sent(conn.extranonce_subscribe())["method"] == "mining.extranonce.subscribe"
    assert sent(conn.suggest_difficulty(0.5))["params"] == [0.5]


def test_full_handshake_gives_configured_subscribed_authorized():
    conn = ClientConnection()
    conn.configure()
    conn.subscribe()
    conn.authorize("alice")
    # Replies may arrive in any order and split anywhere.
    data = (
        line({"id": 2, "result": [[["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4],
              "error": None})
        + line({"id": 1, "result": {"version-rolling": True, "version-rolling.mask": "00ffe000"}, "error": None})
        + line({"id": 3, "result": True, "error": None})
    )
    for i in range(0, len(data), 7):
        conn.receive_data(data[i : i + 7])
    got = events(conn)
    assert got == [
        ev.Subscribed(bytes.fromhex("08000002"), 4, "ae6812eb4cd7735a302a8a9dd95cf71f"),
        ev.Configured(0x00FFE000),
        ev.Authorized("alice", True),
    ]
    assert conn.state is State.AUTHORIZED
    assert conn.version_mask == 0x00FFE000


def test_version_rolling_refused_or_unknown_method_gives_mask_zero():
    conn = ClientConnection()
    conn.configure()
    conn.receive_data(line({"id": 1, "result": None, "error": [20, "Method 'mining.configure' not found", None]}))
    assert events(conn) == [ev.Configured(0)]
    conn = ClientConnection()
    conn.configure()
    conn.receive_data(line({"id": 1, "result": {"version-rolling": False}, "error": None}))
    assert events(conn) == [ev.Configured(0)]


def test_granted_mask_never_exceeds_what_was_asked():
    conn = ClientConnection()
    conn.configure(0x1FFFE000)
    conn.receive_data(line({"id": 1, "result": {"version-rolling": True, "version-rolling.mask": "ffffffff"},
                            "error": None}))
    assert events(conn) == [ev.Configured(0x1FFFE000)]


def test_notify_becomes_a_job_with_internal_byte_orders():
    conn = subscribed()
    conn.receive_data(line(NOTIFY))
    (event,) = events(conn)
    assert isinstance(event, ev.NewJob)
    job = event.job
    assert job.job_id == "bf"
    assert job.prev_hash.hex() == "f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000"
    assert (job.version, job.nbits, job.ntime, job.clean_jobs) == (2, 0x1C2AC4AF, 0x504E86B9, False)


def test_pool_notifications():
    conn = subscribed()
    conn.receive_data(
        line({"id": None, "method": "mining.set_difficulty", "params": [0.001]})
        + line({"id": None, "method": "mining.set_extranonce", "params": ["aabbccdd", 6]})
        + line({"id": None, "method": "mining.set_version_mask", "params": ["00ff0000"]})
        + line({"id": None, "method": "client.reconnect", "params": ["pool.example", "3334", 5]})
        + line({"id": None, "method": "client.show_message", "params": ["maintenance at noon"]})
    )
    assert events(conn) == [
        ev.SetDifficulty(0.001),
        ev.SetExtranonce(bytes.fromhex("aabbccdd"), 6),
        ev.SetVersionMask(0x1FFFE000 & 0x00FF0000),
        ev.Reconnect("pool.example", 3334, 5.0),
        ev.ShowMessage("maintenance at noon"),
    ]
    assert conn.extranonce1 == bytes.fromhex("aabbccdd")


def test_the_session_state_is_the_protocols_from_subscription_on():
    conn = ClientConnection()
    assert (conn.extranonce1, conn.extranonce2_size, conn.version_mask, conn.difficulty) == (None, 0, 0, 1.0)
    conn = subscribed()
    assert (conn.extranonce1, conn.extranonce2_size) == (bytes.fromhex("08000002"), 4)
    assert conn.version_mask == 0x1FFFE000 and conn.difficulty == 1.0  # 1 until the pool says


def test_set_extranonce_holds_for_the_jobs_after_it_not_a_job_before_it_in_the_same_read():
    conn = subscribed()
    conn.receive_data(line(NOTIFY) + line({"id": None, "method": "mining.set_extranonce", "params": ["aabbccdd", 6]})
                      + line({**NOTIFY, "params": ["c0", *NOTIFY["params"][1:]]}))
    first = conn.next_event()
    assert isinstance(first, ev.NewJob) and conn.extranonce1 == bytes.fromhex("08000002")
    assert conn.extranonce2_size == 4  # what the first job is mined with
    assert conn.next_event() == ev.SetExtranonce(bytes.fromhex("aabbccdd"), 6)
    second = conn.next_event()
    assert isinstance(second, ev.NewJob) and second.job.job_id == "c0"
    assert (conn.extranonce1, conn.extranonce2_size) == (bytes.fromhex("aabbccdd"), 6)


def test_a_set_extranonce_refused_leaves_the_session_as_it_was():
    conn = subscribed()
    conn.receive_data(line({"id": None, "method": "mining.set_extranonce", "params": ["aabbccdd", 99]}))
    (event,) = events(conn)
    assert isinstance(event, ev.ProtocolError)
    assert (conn.extranonce1, conn.extranonce2_size) == (bytes.fromhex("08000002"), 4)


def test_the_version_mask_narrows_to_bits_asked_for_and_may_change_again():
    conn = subscribed()
    conn.receive_data(line({"id": None, "method": "mining.set_version_mask", "params": ["0000ffff"]}))
    assert events(conn) == [ev.SetVersionMask(0x0000E000)]
    assert conn.version_mask == 0x0000E000  # bits 0-12 were never asked for
    conn.receive_data(line({"id": None, "method": "mining.set_version_mask", "params": ["e0000000"]}))
    events(conn)
    assert conn.version_mask == 0  # no bit of it was asked for: no rolling
    refused = ClientConnection()
    refused.configure()
    refused.receive_data(line({"id": 1, "result": {"version-rolling": False}, "error": None}))
    events(refused)
    assert refused.version_mask == 0


def test_difficulty_follows_set_difficulty_in_event_order_and_ignores_a_bad_one():
    conn = subscribed()
    conn.receive_data(line({"id": None, "method": "mining.set_difficulty", "params": [0.5]}) + line(NOTIFY)
                      + line({"id": None, "method": "mining.set_difficulty", "params": [64]}))
    assert conn.next_event() == ev.SetDifficulty(0.5)
    assert isinstance(conn.next_event(), ev.NewJob) and conn.difficulty == 0.5  # the job's difficulty
    assert conn.next_event() == ev.SetDifficulty(64.0) and conn.difficulty == 64.0
    conn.receive_data(line({"id": None, "method": "mining.set_difficulty", "params": [-1]}))
    assert isinstance(conn.next_event(), ev.ProtocolError) and conn.difficulty == 64.0


def test_get_version_and_ping_are_answered_in_the_outbox():
    conn = subscribed()
    conn.receive_data(line({"id": 77, "method": "client.get_version", "params": []}))
    assert events(conn) == []
    assert json.loads(conn.data_to_send()) == {"id": 77, "result": conn.user_agent, "error": None}
    assert conn.data_to_send() == b""


def test_submit_params_and_results_matched_by_id_out_of_order():
    conn = subscribed()
    first, data1 = conn.submit("alice", WorkOrigin("bf", bytes.fromhex("00000001"), 0x504E86ED, 0x4000), 0xB2957C02)
    second, data2 = conn.submit("alice", WorkOrigin("bf", bytes.fromhex("00000002"), 0x504E86ED, None), 1)
    assert sent(data1)["params"] == ["alice", "bf", "00000001", "504e86ed", "b2957c02", "00004000"]
    assert sent(data2)["params"] == ["alice", "bf", "00000002", "504e86ed", "00000001"]
    conn.receive_data(line({"id": second, "result": None, "error": [21, "Job not found", None]}))
    conn.receive_data(line({"id": first, "result": True, "error": None}))
    assert events(conn) == [
        ev.ShareResult(second, False, stale=True, code=21, reason="Job not found"),
        ev.ShareResult(first, True),
    ]


@pytest.mark.parametrize(
    ("error", "stale", "code"),
    [
        ([23, "Low difficulty share", None], False, 23),
        ({"code": 22, "message": "Duplicate share"}, False, 22),
        ("Stale share", True, None),
        ([20, "stale-prevblk", None], True, 20),
    ],
)
def test_reject_shapes_that_pools_use(error, stale, code):
    conn = subscribed()
    request_id, _ = conn.submit("alice", WorkOrigin("bf", bytes(4), 0, None), 0)
    conn.receive_data(line({"id": request_id, "result": None, "error": error}))
    (result,) = events(conn)
    assert isinstance(result, ev.ShareResult)
    assert (result.accepted, result.stale, result.code) == (False, stale, code)


def test_submit_before_authorization_is_a_local_error():
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError):
        conn.submit("alice", WorkOrigin("j", bytes(4), 0, None), 0)
    with pytest.raises(LocalProtocolError):
        conn.authorize("alice")


def test_authorization_refused():
    conn = ClientConnection()
    conn.subscribe()
    conn.authorize("mallory")
    conn.receive_data(line({"id": 1, "result": [[], "00", 4], "error": None}))
    conn.receive_data(line({"id": 2, "result": False, "error": [24, "Unauthorized worker", None]}))
    assert events(conn)[-1] == ev.Authorized("mallory", False, "Unauthorized worker")
    assert conn.state is State.SUBSCRIBED


def test_subscribe_refused_or_malformed_is_fatal():
    conn = ClientConnection()
    conn.subscribe()
    conn.receive_data(line({"id": 1, "result": None, "error": [20, "go away", None]}))
    (error,) = events(conn)
    assert isinstance(error, ev.ProtocolError) and error.fatal
    assert conn.state is State.ERROR
    conn = ClientConnection()
    conn.subscribe()
    conn.receive_data(line({"id": 1, "result": [[], "zz", 4], "error": None}))
    (error,) = events(conn)
    assert isinstance(error, ev.ProtocolError) and error.fatal and "extranonce1" in error.message


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"this is not json\n", "not JSON"),
        (b"[1,2,3]\n", "JSON object"),
        (line({"id": 999, "result": True, "error": None}), "unknown request id"),
        (line({"id": None, "method": "mining.unknown_thing", "params": []}), "unknown method"),
        (line({"id": None, "method": "mining.notify", "params": ["x"]}), "needs 9 params"),
        (line({"id": None, "method": "mining.notify", "params": [*NOTIFY["params"][:1], 5, *NOTIFY["params"][2:]]}),
         "prevhash"),
        (line({"id": None, "method": "mining.notify", "params": [*NOTIFY["params"][:6], "1d80ffff",
                                                                   *NOTIFY["params"][7:]]}), "nbits"),
        (line({"id": None, "method": "mining.notify", "params": [*NOTIFY["params"][:8], "yes"]}), "clean_jobs"),
        (line({"id": None, "method": "mining.set_difficulty", "params": ["1"]}), "not a number"),
        (line({"id": None, "method": "mining.set_difficulty", "params": [-1]}), "positive"),
        (line({"id": None, "method": "mining.set_extranonce", "params": ["00", 0]}), "extranonce2_size"),
        (line({"id": None, "method": "client.reconnect", "params": ["h", "port?", 0]}), "port"),
        (line({"id": None, "method": 42, "params": []}), "not a string"),
        (line({"foo": "bar"}), "neither method nor id"),
        (b"\xff\xfe\n", "not JSON"),
    ],
)
def test_malformed_messages_become_non_fatal_protocol_errors(payload, needle):
    conn = subscribed()
    conn.receive_data(payload)
    (error,) = events(conn)
    assert isinstance(error, ev.ProtocolError)
    assert not error.fatal
    assert needle in error.message
    assert conn.state is State.AUTHORIZED
    # The connection goes on: a good message right after is understood.
    conn.receive_data(line(NOTIFY))
    assert isinstance(events(conn)[0], ev.NewJob)


def test_unknown_request_with_an_id_gets_an_error_reply():
    conn = subscribed()
    conn.receive_data(line({"id": 5, "method": "mining.get_transactions", "params": []}))
    events(conn)
    reply = json.loads(conn.data_to_send())
    assert reply["id"] == 5 and reply["error"][0] == 20


def test_half_lines_wait_for_the_rest():
    conn = subscribed()
    data = line(NOTIFY)
    conn.receive_data(data[:50])
    assert events(conn) == []
    conn.receive_data(data[50:])
    assert isinstance(events(conn)[0], ev.NewJob)


def test_a_huge_line_is_fatal_and_not_buffered_without_end():
    conn = ClientConnection(max_line=4096)
    conn.subscribe()
    for _ in range(10):
        conn.receive_data(b"x" * 1000)
    got = events(conn)
    assert len(got) == 1 and isinstance(got[0], ev.ProtocolError) and got[0].fatal
    assert conn._lines.pending <= 4096
    assert conn.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        conn.authorize("alice")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
_methods = st.sampled_from(
    ["mining.notify", "mining.set_difficulty", "mining.set_extranonce", "mining.set_version_mask",
     "client.reconnect", "client.show_message", "client.get_version", "mining.ping", "bogus"]
)
_messages = st.one_of(
    st.builds(lambda m, p, i: {"id": i, "method": m, "params": p}, _methods, _json_values, _json_values),
    st.builds(lambda i, r, e: {"id": i, "result": r, "error": e}, st.integers(0, 8) | _json_values, _json_values,
              _json_values),
    _json_values,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_messages | st.binary(max_size=40), max_size=12), st.integers(1, 50))
def test_no_pool_input_makes_an_exception_escape(messages, chunk):
    conn = subscribed()
    for _ in range(3):
        conn.submit("alice", WorkOrigin("bf", bytes(4), 0, None), 0)
    data = b"".join(
        m + b"\n" if isinstance(m, bytes) else json.dumps(m, allow_nan=True).encode() + b"\n" for m in messages
    )
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk])
    for event in events(conn):
        assert isinstance(event, ev.Event.__args__)  # type: ignore[attr-defined]
        if isinstance(event, ev.NewJob):
            assert len(event.job.prev_hash) == 32
        if isinstance(event, ev.SetDifficulty):
            assert event.difficulty > 0
    conn.data_to_send()


def test_hex_fields_with_spaces_or_signs_are_refused_not_read_loosely():
    connection = ClientConnection()
    connection.subscribe()
    connection.receive_data(b'{"id":1,"result":[[],"00 00 00 01",4],"error":null}\n')
    event = connection.next_event()
    assert event is not None and getattr(event, "fatal", False)
    assert "not hex" in getattr(event, "message", "")


def test_pool_text_with_control_characters_cannot_become_a_job_id_or_a_reconnect_host():
    connection = ClientConnection()
    connection.subscribe()
    connection.receive_data(b'{"id":1,"result":[[],"00000001",4],"error":null}\n')
    assert isinstance(connection.next_event(), ev.Subscribed)
    notify = ["a\x1b[2J\nforged", "00" * 32, "", "", [], "20000000", "1d00ffff", "5f5e0f00", True]
    connection.receive_data(json.dumps({"id": None, "method": "mining.notify", "params": notify}).encode() + b"\n")
    connection.receive_data(b'{"id":null,"method":"client.reconnect","params":["evil\\u001b]0;x\\u0007\\nhost",3333,0]}\n')
    events = [connection.next_event(), connection.next_event()]
    assert all(isinstance(e, ev.ProtocolError) for e in events)
    assert all("\x1b" not in e.message and "\n" not in e.message for e in events)  # type: ignore[union-attr]
