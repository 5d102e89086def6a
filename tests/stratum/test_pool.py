"""The embedded pool's session logic, fed bytes with no sockets: it never trusts the miner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hashcore.stratum.blocktemplate import EXTRANONCE2_SIZE, REGTEST_NBITS, JobMaker
from hashcore.stratum.fields import job_from_notify
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import PoolSession, VardiffPolicy
from hashcore.work import DIFF1_TARGET, Work, difficulty_to_target, nbits_to_target, rolled_version, verify_nonce


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(session: PoolSession, request_id: int, method: str, params: list[Any]) -> list[dict[str, Any]]:
    data = session.receive_data(json.dumps({"id": request_id, "method": method, "params": params}).encode() + b"\n")
    return [json.loads(x) for x in data.splitlines()]


def reply_to(messages: list[dict[str, Any]], request_id: int) -> dict[str, Any]:
    return next(m for m in messages if m.get("id") == request_id and "method" not in m)


def notifies(messages: list[dict[str, Any]]) -> list[list[Any]]:
    return [m["params"] for m in messages if m.get("method") == "mining.notify"]


@pytest.fixture
def pool() -> EmbeddedPool:
    vardiff = VardiffPolicy(target_seconds=1.0, retarget_seconds=10.0, min_difficulty=1e-9)
    pool = EmbeddedPool(difficulty=1e-6, vardiff=vardiff, seed=b"test")
    pool.new_job(clean=True, broadcast=False)
    return pool


def ready(pool: EmbeddedPool, clock: Clock | None = None, mask: bool = True) -> tuple[PoolSession, list[Any]]:
    session = PoolSession(pool, bytes.fromhex("0a0b0c0d"), "s1", clock or Clock())
    if mask:
        configured = request(session, 1, "mining.configure",
                             [["version-rolling"], {"version-rolling.mask": "1fffe000"}])
        assert reply_to(configured, 1)["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000"}
    subscribed = request(session, 2, "mining.subscribe", ["test"])
    result = reply_to(subscribed, 2)["result"]
    assert result[1:] == ["0a0b0c0d", EXTRANONCE2_SIZE]
    authorized = request(session, 3, "mining.authorize", ["alice", "x"])
    assert reply_to(authorized, 3)["result"] is True
    assert any(m.get("method") == "mining.set_difficulty" for m in authorized)
    return session, notifies(authorized)[-1]


def find_share(session: PoolSession, params: list[Any], target: int, version_bits: int | None = None,
               extranonce2: bytes = b"\x00\x00\x00\x01") -> tuple[int, int]:
    """Mine a nonce for the job as a miner would; (nonce, hash value)."""
    job = job_from_notify(params)
    root = job.merkle_root(session.extranonce1, extranonce2)
    version = rolled_version(job.version, 0x1FFFE000, version_bits) if version_bits is not None else job.version
    work = Work(job.header76(root, version=version), target)
    for nonce in range(1 << 24):
        share = verify_nonce(work, nonce)
        if share.value <= target:
            return nonce, share.value
    raise AssertionError("no share found")


def submit(session: PoolSession, request_id: int, params: list[Any], nonce: int, *, user: str = "alice",
           extranonce2: str = "00000001", ntime: str | None = None, version_bits: str | None = None) -> dict:
    fields = [user, params[0], extranonce2, ntime or params[7], f"{nonce:08x}"]
    if version_bits is not None:
        fields.append(version_bits)
    return reply_to(request(session, request_id, "mining.submit", fields), request_id)


def test_a_valid_share_is_accepted_and_recorded(pool):
    session, params = ready(pool)
    nonce, _ = find_share(session, params, difficulty_to_target(1e-6))
    assert submit(session, 10, params, nonce) == {"id": 10, "result": True, "error": None}
    assert pool.stats.accepted == 1
    job_id, header, _digest, user = pool.stats.shares[-1]
    assert (job_id, user) == (params[0], "alice") and len(header) == 80


def test_a_version_rolled_share_is_accepted(pool):
    session, params = ready(pool)
    nonce, _ = find_share(session, params, difficulty_to_target(1e-6), version_bits=0x6000)
    assert submit(session, 10, params, nonce, version_bits="00006000")["result"] is True
    assert pool.stats.shares[-1][1][:4] == (0x20006000).to_bytes(4, "little")


def test_duplicates_low_difficulty_stale_and_bad_fields_get_their_codes(pool):
    session, params = ready(pool)
    nonce, _ = find_share(session, params, difficulty_to_target(1e-6))
    assert submit(session, 10, params, nonce)["result"] is True
    assert submit(session, 11, params, nonce)["error"][0] == 22  # duplicate
    # A nonce that misses the share target.
    miss = next(n for n in range(1000) if verify_nonce(_work(session, params), n).value > difficulty_to_target(1e-6))
    assert submit(session, 12, params, miss)["error"][0] == 23
    assert submit(session, 13, [*params[:1], *params[1:]], nonce, user="bob")["error"][0] == 24
    assert submit(session, 14, ["nosuchjob", *params[1:]], nonce)["error"][0] == 21
    assert submit(session, 15, params, nonce, extranonce2="0001")["error"][0] == 20
    assert submit(session, 16, params, nonce, ntime="00000001")["error"][0] == 20  # before the job's ntime
    assert submit(session, 17, params, nonce, version_bits="00000001")["error"][0] == 20  # outside the mask
    assert submit(session, 18, params, nonce, extranonce2="zzzzzzzz")["error"][0] == 20
    assert reply_to(request(session, 19, "mining.submit", ["alice"]), 19)["error"][0] == 20
    # A new block makes the old job stale.
    pool.new_job(clean=True, broadcast=False)
    assert submit(session, 20, params, nonce, extranonce2="00000002")["error"][0] == 21
    assert pool.stats.accepted == 1
    assert pool.stats.rejected == {22: 1, 23: 1, 24: 1, 21: 2, 20: 5}


def _work(session: PoolSession, params: list[Any]) -> Work:
    job = job_from_notify(params)
    return Work(job.header76(job.merkle_root(session.extranonce1, bytes.fromhex("00000001"))), DIFF1_TARGET)


def test_submit_before_subscribe_or_authorize(pool):
    session = PoolSession(pool, bytes(4), "s", Clock())
    params = ["alice", "1", "00000000", "00000000", "00000000"]
    assert reply_to(request(session, 1, "mining.submit", params), 1)["error"][0] == 25
    assert reply_to(request(session, 2, "mining.authorize", ["alice", "x"]), 2)["error"][0] == 25
    request(session, 3, "mining.subscribe", [])
    assert reply_to(request(session, 4, "mining.submit", params), 4)["error"][0] == 24


def test_accounts_are_checked(pool):
    pool.accounts = {"alice": "secret"}
    session = PoolSession(pool, bytes(4), "s", Clock())
    request(session, 1, "mining.subscribe", [])
    assert reply_to(request(session, 2, "mining.authorize", ["alice", "wrong"]), 2)["error"][0] == 24
    assert reply_to(request(session, 3, "mining.authorize", ["alice", "secret"]), 3)["result"] is True


def test_unknown_methods_and_garbage_do_not_break_the_session(pool):
    session, _ = ready(pool)
    assert reply_to(request(session, 9, "mining.bogus", []), 9)["error"][0] == 20
    # Each malformed line gets an "other" error with no id; the session goes on.
    replies = [json.loads(x) for x in session.receive_data(b"not json\n[1]\n" + b"[" * 100_000 + b"\n").splitlines()]
    assert [(r["id"], r["error"][0]) for r in replies] == [(None, 20)] * 3
    assert reply_to(request(session, 10, "mining.extranonce.subscribe", []), 10)["result"] is True


def test_a_block_below_share_difficulty_is_accepted_as_a_block():
    pool = EmbeddedPool(difficulty=1e9, nbits=REGTEST_NBITS, vardiff=None, seed=b"regtest")
    pool.new_job(clean=True, broadcast=False)
    session, params = ready(pool)
    nonce, value = find_share(session, params, nbits_to_target(REGTEST_NBITS))
    assert value > difficulty_to_target(1e9)
    assert submit(session, 10, params, nonce)["result"] is True
    assert pool.stats.blocks == 1


def test_vardiff_steps_up_when_shares_come_too_fast_and_down_when_none_come(pool):
    clock = Clock()
    session, params = ready(pool, clock)
    start = session.difficulty
    target = difficulty_to_target(start)
    # Nine shares, one a second, against a target of one a second: nothing changes.
    for en2 in range(1, 10):
        clock.now += 1.0
        nonce, _ = find_share(session, params, target, extranonce2=en2.to_bytes(4, "big"))
        out = request(session, 100 + en2, "mining.submit",
                      ["alice", params[0], f"{en2:08x}", params[7], f"{nonce:08x}"])
        assert reply_to(out, 100 + en2)["result"] is True
        assert not notifies(out)
    clock.now += 1.0
    assert not session.retarget()  # the window's rate was on target
    # A flood: twice a window's worth of shares in no time retargets early, by at most 4x.
    raised: list[float] = []
    for en2 in range(10, 40):
        nonce, _ = find_share(session, params, target, extranonce2=en2.to_bytes(4, "big"))
        out = request(session, 100 + en2, "mining.submit",
                      ["alice", params[0], f"{en2:08x}", params[7], f"{nonce:08x}"])
        assert reply_to(out, 100 + en2)["result"] is True
        raised += [m["params"][0] for m in out if m.get("method") == "mining.set_difficulty"]
        if raised:
            assert notifies(out) and notifies(out)[0][8] is False  # new job, old work stays valid
            break
    assert raised == [pytest.approx(start * 4)]
    # A share of the older job still counts at the difficulty it was sent with.
    nonce, _ = find_share(session, params, target, extranonce2=(100).to_bytes(4, "big"))
    assert submit(session, 502, params, nonce, extranonce2="00000064")["result"] is True
    # Silence for a whole window: step down.
    clock.now += 30.0
    assert session.retarget()
    out = session.notify(pool.refresh_job())
    lowered = [json.loads(x)["params"][0] for x in out.splitlines() if b"set_difficulty" in x]
    assert lowered == [pytest.approx(start)]


def test_resumed_session_keeps_its_extranonce1(pool):
    pool._resumable["old-session"] = bytes.fromhex("deadbeef")
    session = PoolSession(pool, bytes(4), "new", Clock())
    result = reply_to(request(session, 1, "mining.subscribe", ["miner", "old-session"]), 1)["result"]
    assert result[1] == "deadbeef"


def test_job_maker_builds_real_shaped_coinbases():
    maker = JobMaker(seed=b"x")
    job = maker.next_job(clean=True, now=1_700_000_000)
    coinbase = job.coinbase(bytes(4), bytes(4))
    assert coinbase[:4] == (1).to_bytes(4, "little")
    script_len = coinbase[41]
    assert coinbase[42 + script_len : 46 + script_len] == b"\xff\xff\xff\xff"  # sequence after scriptSig
    assert coinbase[42] == 3 and int.from_bytes(coinbase[43:46], "little") == maker.height  # BIP 34
    assert job.block_target == nbits_to_target(job.nbits)
    assert len(job.merkle_branch) >= 2
    later = maker.next_job(clean=False)
    assert later.prev_hash == job.prev_hash and later.job_id != job.job_id


# --- strict fields: int() and bytes.fromhex() take text no miner sends -------------------

#: Each is refused as malformed (code 20) where an 8-digit hex field is expected.
BAD_HEX_U32: list[Any] = [
    "-0000001", "+0000001", " 0000001", "0000001 ", "0x000001", "0X000001", "0000_001", "00 00 01",
    "000000001", "0000001", "", "zzzzzzzz", "\u0660" * 8, "０００００００１", 1, 1.0, None, True, [], {},
]


@pytest.mark.parametrize("nonce", BAD_HEX_U32, ids=repr)
def test_a_malformed_nonce_gets_code_20_and_the_session_goes_on(pool, nonce):
    session, params = ready(pool)
    reply = reply_to(request(session, 10, "mining.submit", ["alice", params[0], "00000001", params[7], nonce]), 10)
    assert reply["error"][0] == 20 and reply["result"] is None
    good, _ = find_share(session, params, difficulty_to_target(1e-6))
    assert submit(session, 11, params, good)["result"] is True
    assert pool.stats.rejected == {20: 1} and pool.stats.accepted == 1


@pytest.mark.parametrize("field", ["extranonce2", "ntime", "version_bits"])
@pytest.mark.parametrize("value", BAD_HEX_U32, ids=repr)
def test_malformed_extranonce2_ntime_and_version_bits_get_code_20(pool, field, value):
    session, params = ready(pool)
    fields: list[Any] = ["alice", params[0], "00000001", params[7], "00000000", "00000000"]
    fields[{"extranonce2": 2, "ntime": 3, "version_bits": 5}[field]] = value
    assert reply_to(request(session, 10, "mining.submit", fields), 10)["error"][0] == 20
    assert pool.stats.rejected == {20: 1}


def test_version_rolling_mask_must_be_hex_and_extensions_a_list_of_names(pool):
    session = PoolSession(pool, bytes(4), "s", Clock())
    for request_id, mask in enumerate(["-1", "0x1fffe000", "1fffe000a", " 1fffe00", "", 5, True, None], 10):
        out = request(session, request_id, "mining.configure", [["version-rolling"], {"version-rolling.mask": mask}])
        assert reply_to(out, request_id)["error"][0] == 20, mask
    assert session.version_mask == 0
    assert reply_to(request(session, 30, "mining.configure", ["version-rolling"]), 30)["error"][0] == 20
    assert reply_to(request(session, 31, "mining.configure", [[["nested"]], {}]), 31)["error"][0] == 20
    assert reply_to(request(session, 32, "mining.configure", [["version-rolling"], []]), 32)["error"][0] == 20
    granted = reply_to(request(session, 33, "mining.configure", [["version-rolling", "minimum-difficulty"],
                                                                 {"version-rolling.mask": "FFFFFFFF"}]), 33)
    assert granted["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000",
                                 "minimum-difficulty": False}


def test_authorize_needs_a_worker_name_as_a_short_string(pool):
    session = PoolSession(pool, bytes(4), "s", Clock())
    request(session, 1, "mining.subscribe", [])
    for request_id, user in enumerate([None, 5, True, ["alice"], "", "a" * 257, "\ud800", "a\x1b[2J"], 10):
        reply = reply_to(request(session, request_id, "mining.authorize", [user, "x"]), request_id)
        assert reply["error"][0] == 20 and reply["result"] is False, user
    assert reply_to(request(session, 20, "mining.authorize", []), 20)["error"][0] == 20
    assert not session.authorized


def test_one_connection_cannot_authorize_workers_without_end(pool):
    session = PoolSession(pool, bytes(4), "s", Clock())
    request(session, 1, "mining.subscribe", [])
    answers = [reply_to(request(session, 10 + i, "mining.authorize", [f"w{i}", "x"]), 10 + i) for i in range(70)]
    assert [a["result"] for a in answers] == [True] * 64 + [False] * 6
    assert answers[-1]["error"][0] == 20 and len(session.authorized) == 64


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**400, -1, 0, "1", True, None, [1]], ids=repr)
def test_a_bad_suggested_difficulty_gets_code_20_and_changes_nothing(pool, value):
    session, params = ready(pool)
    before = session.difficulty
    line = json.dumps({"id": 5, "method": "mining.suggest_difficulty", "params": [value]}).encode() + b"\n"
    assert json.loads(session.receive_data(line))["error"][0] == 20
    assert session.difficulty == before
    good, _ = find_share(session, params, difficulty_to_target(1e-6))
    assert submit(session, 11, params, good)["result"] is True


def test_a_suggested_difficulty_is_clamped_to_the_vardiff_bounds(pool):
    session, _ = ready(pool)
    assert reply_to(request(session, 5, "mining.suggest_difficulty", [1e-300]), 5)["result"] is True
    assert session.difficulty == pool.vardiff.min_difficulty
    assert reply_to(request(session, 6, "mining.suggest_difficulty", [1e299]), 6)["result"] is True
    assert session.difficulty == pool.vardiff.max_difficulty


@pytest.mark.parametrize("line", [
    b'{"id": [1, {"a": 2}], "method": "mining.bogus", "params": []}',
    b'{"id": 1, "method": 42, "params": []}',
    b'{"id": 1, "method": "mining.submit", "params": {"worker": "alice"}}',
    b'{"id": 1, "method": "mining.subscribe", "params": "x"}',
    b'{"id": 1, "method": "' + b"m" * 10_000 + b'", "params": []}',
    b'{"id": ' + b"9" * 4000 + b', "method": "mining.bogus"}',
    b'{"id": ' + b"9" * 5000 + b', "method": "mining.bogus"}',
    b'{"id": 1, "method": "mining.authorize", "params": ["\\ud800", "x"]}',
    b'{"id": 1, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "\\u0000"}]}',
    b"\xff\xfe{}",
    b"[" * 33 + b"]" * 33,
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
], ids=lambda line: repr(line[:30]))
def test_odd_messages_get_an_answer_or_nothing_never_an_exception(pool, line):
    session, params = ready(pool)
    out = session.receive_data(line + b"\n")
    assert all(json.loads(x)["error"][0] == 20 for x in out.splitlines())
    assert len(out) < 6000  # a peer's long method name is not echoed back whole
    good, _ = find_share(session, params, difficulty_to_target(1e-6))
    assert submit(session, 11, params, good)["result"] is True


def test_a_line_over_the_cap_is_fatal_to_the_session(pool):
    session, _ = ready(pool)
    with pytest.raises(ConnectionError, match="line over"):
        session.receive_data(b"x" * (300 * 1024))
