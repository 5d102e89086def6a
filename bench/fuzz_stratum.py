"""Fuzz both Stratum cores with generated lines: the client (ClientConnection) and the pool (PoolSession).

Usage: python bench/fuzz_stratum.py --count 1000000 [--seed N]

Each core gets ``--count`` inputs, made from a seeded generator (hypothesis shrinks well
but would take hours for a million): mutations of real Stratum messages (notify,
set_difficulty, subscribe/authorize/submit replies; subscribe, authorize, configure and
submit requests with live job ids), random JSON of random depth, random bytes, huge
numbers, deep nesting, bad UTF-8, each split at random points. Both cores are driven
without sockets, in every handshake state. An exception escaping either core is a bug:
the input and traceback are printed and the exit status is 1. Every line the pool sends
back must parse as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hashcore.stratum.blocktemplate import REGTEST_NBITS
from hashcore.stratum.fields import notify_params
from hashcore.stratum.pool import EmbeddedPool
from hashcore.stratum.poolsession import PoolSession, VardiffPolicy
from hashcore.stratum.protocol import ClientConnection, State

#: Values that have broken parsers before: signs, spaces, prefixes, odd types, extremes.
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**32, 2**64, -(2**63), 10**30, 1e308, -1e308, 1e-320, 0.5, -0.0,
    float("nan"), float("inf"), float("-inf"), "", " ", "0", "-1", "+1", "0x1", "-0000001", "+0000001",
    " 0000001", "0000001 ", "0x000001", "0000_001", "00 00 00 01", "000000001", "0000001", "ffffffff",
    "FFFFFFFF", "zzzzzzzz", "\u0660" * 8, "\uff10" * 8, "\ud800", "\x00", "\x1b[2J", "a" * 300,
    "version-rolling", "mining.notify", [], {}, [[]], [None], {"": None}, ["00000000"], {"code": 20},
]
HEX_TWISTS: list[Callable[[str], str]] = [
    lambda s: "-" + s[1:], lambda s: "+" + s[1:], lambda s: " " + s[1:], lambda s: "0x" + s[2:],
    lambda s: s[:-1], lambda s: s + "0", lambda s: s.upper(), lambda s: s[:2] + "_" + s[3:],
    lambda s: s[:2] + " " + s[2:], lambda s: "\u0660" + s[1:], lambda s: s * 40, lambda s: "",
]
METHODS_TO_MINER = ["mining.notify", "mining.set_difficulty", "mining.set_extranonce", "mining.set_version_mask",
                    "client.reconnect", "client.show_message", "client.get_version", "mining.ping", "mining.bogus"]
METHODS_TO_POOL = ["mining.subscribe", "mining.authorize", "mining.configure", "mining.submit",
                   "mining.suggest_difficulty", "mining.extranonce.subscribe", "mining.get_transactions"]


class Generator:
    """Seeded inputs: whole lines (bytes, newline included or not) for either side."""

    def __init__(self, rng: random.Random, pool: EmbeddedPool) -> None:
        self.rng = rng
        self.pool = pool

    # --- random values ---------------------------------------------------------------

    def scalar(self) -> Any:
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            return rng.choice(ODD_VALUES)
        if kind == 1:
            return rng.randrange(-(2**70), 2**70)
        if kind == 2:
            return rng.uniform(-1e6, 1e6)
        if kind == 3:
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
                           for _ in range(rng.randrange(12)))
        if kind == 4:
            return rng.randbytes(rng.choice([1, 4, 8, 32])).hex()
        return rng.choice([True, False, None])

    def value(self, depth: int) -> Any:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.4:
            return self.scalar()
        if rng.random() < 0.5:
            return [self.value(depth - 1) for _ in range(rng.randrange(4))]
        return {str(self.scalar())[:8]: self.value(depth - 1) for _ in range(rng.randrange(4))}

    def mutate(self, value: Any, depth: int = 0) -> Any:
        """A copy of a message with one part changed."""
        rng = self.rng
        if isinstance(value, str) and len(value) >= 3 and rng.random() < 0.5:
            return rng.choice(HEX_TWISTS)(value)
        if isinstance(value, list) and value and depth < 6:
            copy = list(value)
            action = rng.randrange(5)
            index = rng.randrange(len(copy))
            if action == 0:
                del copy[index]
            elif action == 1:
                copy.append(self.value(2))
            elif action == 2:
                copy[index] = [copy[index]]
            else:
                copy[index] = self.mutate(copy[index], depth + 1)
            return copy
        if isinstance(value, dict) and value and depth < 6:
            fields = dict(value)
            key = rng.choice(list(fields))
            action = rng.randrange(4)
            if action == 0:
                del fields[key]
            elif action == 1:
                fields[str(self.scalar())[:10]] = self.value(2)
            else:
                fields[key] = self.mutate(fields[key], depth + 1)
            return fields
        return rng.choice([self.scalar(), self.value(3)])

    # --- real message shapes -----------------------------------------------------------

    def to_miner(self, next_id: int) -> dict[str, Any]:
        """A real-shaped message from a pool (``next_id``: an id the client has pending)."""
        rng = self.rng
        job = self.pool.current_job
        assert job is not None
        reply_id = rng.choice([next_id, next_id - 1, 1, 2, 3, None, 999_999])
        choice = rng.randrange(11)
        if choice == 0:
            return {"id": None, "method": "mining.notify", "params": notify_params(job)}
        if choice == 1:
            return {"id": None, "method": "mining.set_difficulty", "params": [rng.choice([1, 0.001, 1e-9, 65536])]}
        if choice == 2:
            subscriptions = [["mining.set_difficulty", "ab"], ["mining.notify", "ab"]]
            return {"id": reply_id, "result": [subscriptions, rng.randbytes(4).hex(), 4], "error": None}
        if choice == 3:
            return {"id": reply_id, "result": rng.choice([True, False, None]), "error": None}
        if choice == 4:
            return {"id": reply_id, "result": None, "error": [rng.choice([20, 21, 22, 23, 24, 25]), "x", None]}
        if choice == 5:
            return {"id": reply_id, "result": {"version-rolling": True, "version-rolling.mask": "1fffe000"},
                    "error": None}
        if choice == 6:
            return {"id": None, "method": "mining.set_extranonce", "params": ["deadbeef", 4]}
        if choice == 7:
            return {"id": None, "method": "mining.set_version_mask", "params": ["1fffe000"]}
        if choice == 8:
            return {"id": None, "method": "client.reconnect", "params": ["127.0.0.1", 3333, 5]}
        method = rng.choice(METHODS_TO_MINER)
        return {"id": rng.choice([None, 7, "x"]), "method": method, "params": self.value(2)}

    def to_pool(self, session: PoolSession) -> dict[str, Any]:
        """A real-shaped request from a miner, with a job id the session was sent."""
        rng = self.rng
        request_id = rng.choice([1, 2, 42, None, "id"])
        choice = rng.randrange(7)
        if choice == 0:
            return {"id": request_id, "method": "mining.subscribe", "params": ["fuzz/1.0", session.session_id]}
        if choice == 1:
            return {"id": request_id, "method": "mining.authorize", "params": [rng.choice(["alice", "bob"]), "x"]}
        if choice == 2:
            return {"id": request_id, "method": "mining.configure",
                    "params": [["version-rolling"], {"version-rolling.mask": "1fffe000",
                                                     "version-rolling.min-bit-count": 2}]}
        if choice == 3:
            return {"id": request_id, "method": "mining.suggest_difficulty", "params": [rng.choice([1e-9, 1, 512])]}
        if choice == 4:
            return {"id": request_id, "method": rng.choice(METHODS_TO_POOL), "params": self.value(2)}
        job = self.pool.current_job
        assert job is not None
        params = ["alice", job.job_id, rng.randbytes(4).hex(), f"{job.ntime + rng.randrange(3):08x}",
                  rng.randbytes(4).hex()]
        if rng.random() < 0.5:
            params.append(f"{rng.randrange(1 << 16) << 13:08x}")
        return {"id": request_id, "method": "mining.submit", "params": params}

    # --- lines ---------------------------------------------------------------------------

    def line(self, message: Callable[[], dict[str, Any]]) -> bytes:
        """One generated input: mostly (mutated) real messages, the rest noise."""
        rng = self.rng
        kind = rng.randrange(20)
        if kind < 8:
            text = json.dumps(message()).encode()
        elif kind < 14:
            text = json.dumps(self.mutate(message())).encode()
        elif kind == 14:
            text = json.dumps(self.value(rng.randrange(1, 40))).encode()
        elif kind == 15:
            text = rng.randbytes(rng.randrange(1, 200))
        elif kind == 16:
            depth = rng.choice([31, 32, 33, 100, 1000, 100_000])
            text = rng.choice([b"[", b"{\"a\":", b"[{\"a\":"]) * depth + rng.choice([b"", b"1", b"]" * depth])
        elif kind == 17:
            digits = rng.choice([20, 400, 4300, 4301, 10_000])
            text = b'{"id": ' + b"9" * digits + b', "method": "mining.set_difficulty", "params": [1e' + \
                str(rng.choice([308, 309, -400, 99999])).encode() + b"]}"
        elif kind == 18:
            raw = json.dumps(message()).encode()
            cut = rng.randrange(len(raw))
            text = raw[:cut] + rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\\ud800", b"\x00", b"\n"]) + \
                raw[cut:]
        else:
            flipped = bytearray(json.dumps(self.mutate(message())).encode())
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            text = bytes(flipped)
        return text + (b"\n" if rng.random() < 0.95 else b"")

    def chunks(self, data: bytes) -> list[bytes]:
        """``data`` split at up to three random points, as TCP may deliver it."""
        cuts = sorted(self.rng.randrange(len(data) + 1) for _ in range(self.rng.randrange(4)))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@dataclass
class Failure:
    core: str
    data: bytes
    trace: str


@dataclass
class FuzzResult:
    count: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)


class ClientTarget:
    """ClientConnection in a random handshake state, fed generated pool lines."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.connection = ClientConnection()
        self.next_id = 1
        self.last = b""  # the input being fed, shown when it raises
        self.fresh()

    def fresh(self) -> None:
        conn = ClientConnection()
        stage = self.gen.rng.randrange(5)  # 0 idle, 1 subscribing, 2 subscribed, 3 authorized, 4 with a job
        if stage >= 1:
            conn.configure()
            conn.subscribe()
        if stage >= 2:
            conn.receive_data(b'{"id":2,"result":[[["mining.notify","ab"]],"0a0b0c0d",4],"error":null}\n')
            conn.authorize("alice")
        if stage >= 3:
            conn.receive_data(b'{"id":1,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},'
                              b'"error":null}\n{"id":3,"result":true,"error":null}\n')
        if stage >= 4:
            job = self.gen.pool.current_job
            assert job is not None
            conn.receive_data(json.dumps({"id": None, "method": "mining.notify",
                                          "params": notify_params(job)}).encode() + b"\n")
        while conn.next_event() is not None:
            pass
        conn.data_to_send()
        self.connection, self.next_id = conn, 4

    def feed(self) -> bytes:
        gen = self.gen
        data = self.last = gen.line(lambda: gen.to_miner(self.next_id))
        conn = self.connection
        for chunk in gen.chunks(data):
            conn.receive_data(chunk)
        while conn.next_event() is not None:
            pass
        conn.data_to_send()
        if conn.state is State.AUTHORIZED and gen.rng.random() < 0.05:
            self.next_id += 1
            conn.suggest_difficulty(1.0)
        if conn.state is State.ERROR or gen.rng.random() < 0.005:
            self.fresh()
        return data


class PoolTarget:
    """PoolSession in a random handshake state, fed generated miner lines, line by line or as bytes."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.now = 1000.0
        self.last = b""  # the input being fed, shown when it raises
        self.session = self.fresh()

    def clock(self) -> float:
        return self.now

    def fresh(self) -> PoolSession:
        gen = self.gen
        session = PoolSession(gen.pool, gen.rng.randbytes(4), "fuzz", self.clock)
        stage = gen.rng.randrange(3)  # 0 new, 1 subscribed, 2 configured and authorized
        if stage >= 1:
            session.handle_line(b'{"id":2,"method":"mining.subscribe","params":["fuzz"]}')
        if stage >= 2:
            session.handle_line(b'{"id":1,"method":"mining.configure","params":[["version-rolling"],'
                                b'{"version-rolling.mask":"1fffe000"}]}')
            session.handle_line(b'{"id":3,"method":"mining.authorize","params":["alice","x"]}')
        return session

    def feed(self) -> bytes:
        gen = self.gen
        session = self.session
        data = self.last = gen.line(lambda: gen.to_pool(session))
        out = bytearray()
        if gen.rng.random() < 0.5:
            out += session.handle_line(data.rstrip(b"\n"))
        else:
            try:
                for chunk in gen.chunks(data):
                    out += session.receive_data(chunk)
            except ConnectionError:  # a line over the cap: the documented way a session ends
                self.session = self.fresh()
        for reply in bytes(out).splitlines():
            json.loads(reply)  # whatever the pool sends must be JSON
        self.now += gen.rng.choice([0.0, 0.1, 5.0, 30.0])
        roll = gen.rng.random()
        if roll < 0.01:
            job = gen.pool.new_job(clean=gen.rng.random() < 0.5, broadcast=False)
            if session.ready:
                json.loads(session.notify(job).splitlines()[-1])
        elif roll < 0.02:
            session.retarget_now()
        elif roll < 0.025:
            self.session = self.fresh()
        return data


def run(count: int, seed: int, progress: bool = False) -> FuzzResult:
    """Feed ``count`` inputs to each core; collect every exception that escaped one."""
    logging.disable(logging.CRITICAL)  # the pool logs each reject at INFO: noise here
    try:
        rng = random.Random(seed)
        pool = EmbeddedPool(difficulty=1e-9, nbits=REGTEST_NBITS, job_interval=0, seed=b"fuzz",
                            vardiff=VardiffPolicy(min_difficulty=1e-12))
        pool.new_job(clean=True, broadcast=False)
        gen = Generator(rng, pool)
        targets: dict[str, ClientTarget | PoolTarget] = {"client": ClientTarget(gen), "pool": PoolTarget(gen)}
        result = FuzzResult()
        started = time.perf_counter()
        for i in range(count):
            for name, target in targets.items():
                try:
                    target.feed()
                except Exception:  # exactly what the fuzzer looks for
                    result.failures.append(Failure(name, target.last, traceback.format_exc()))
                    targets[name] = ClientTarget(gen) if name == "client" else PoolTarget(gen)
                result.count += 1
            if progress and (i + 1) % 100_000 == 0:
                elapsed = time.perf_counter() - started
                print(f"  {i + 1:,} per core, {result.count / elapsed:,.0f} inputs/s", file=sys.stderr)
        result.seconds = time.perf_counter() - started
        return result
    finally:
        logging.disable(logging.NOTSET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="inputs per core (default 20,000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(args.count, args.seed, progress=True)
    for failure in result.failures[:5]:
        print(f"\n{failure.core} core raised on input {failure.data[:2000]!r}:\n{failure.trace}", file=sys.stderr)
    rate = result.count / result.seconds if result.seconds else 0.0
    print(f"{result.count:,} inputs ({args.count:,} per core, seed {args.seed}) in {result.seconds:.1f} s: "
          f"{rate:,.0f} inputs/s, {len(result.failures)} uncaught exceptions")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
