"""The issue bound of a hot loop, measured: its own instructions with every dependency cut.

A per-resource count (``ceiling.ISSUE``) assumes that every operation finds a free pipe
the cycle it is ready, that register moves cost nothing and that the front end keeps up
with any amount of code. The core's real limits (which pipes each instruction may use,
double-pumped 512-bit operations, the op cache and L1i against a loop of tens of
kilobytes, loads and stores) are all in play when the loop's own instructions are run
with nothing to wait for. So this module rewrites the disassembled loop into one whose
instructions, encodings and memory traffic are the same but whose results feed nothing:

- every vector destination is renamed in turn through the registers of its bank that no
  instruction reads (bank: 0-15 or 16-31, so VEX and legacy-SSE encodings stay legal),
  and every vector source reads one of a few registers that nothing writes (xmm0 among
  them: ``sha256rnds2`` reads it implicitly);
- loads read one buffer and stores write another, at the loop's own displacements
  (rip-relative constants move past 8 KiB, so they keep a 32-bit displacement), so no
  load waits for a store;
- instructions on general registers only (loop counters, the rare candidate call and
  its spills) are left out: they run on the integer side, which the vector paths leave
  idle, and are counted in ``dropped``.

The cycles one pass takes, timed over many passes in this thread's CPU time and divided
by the nonces one pass of the real loop hashes, are a ceiling no schedule of those
instructions can beat on this core.
"""

from __future__ import annotations

import ctypes
import itertools
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_VREG = re.compile(r"%([xyz])mm(\d+)")
_KREG = re.compile(r"%k([0-7])")
_GPR = re.compile(r"%(r[a-z0-9]+|e[a-z]{2}|[a-d]x|[sd]il?|[bs]pl?)\b")
_MEMORY = re.compile(r"(-?0x[0-9a-f]+|-?\d+)?\((%r\w+)(,%r\w+,\d)?\)")
#: Registers read but never written, per bank; the rest of each bank takes the writes.
_SOURCES = {0: (0, 1, 2, 3), 16: (16, 17, 18, 19)}
_RIP_BASE = 8192
_LOAD_SPAN = 1 << 16


_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
_JUMP = re.compile(r"^j\w+$")
_COUNTER_CMP = re.compile(r"^\$(0x[0-9a-f]+|\d+),%(e\w+|r\w+)$")


@dataclass(frozen=True, slots=True)
class InnerLoop:
    """Instructions ``first``..``last`` of a listing run ``trips`` times a pass."""

    first: int
    last: int
    trips: int


@dataclass(frozen=True, slots=True)
class Listing:
    """A hot loop as objdump prints it: (mnemonic, operands), and its inner loops."""

    instructions: list[tuple[str, str]]
    inner: list[InnerLoop]

    def executed(self) -> list[tuple[str, str]]:
        """The instructions one pass executes: each inner loop's as often as it runs."""
        out: list[tuple[str, str]] = []
        index = 0
        for loop in self.inner:
            out += self.instructions[index : loop.first]
            out += self.instructions[loop.first : loop.last + 1] * loop.trips
            index = loop.last + 1
        return out + self.instructions[index:]


def _trips(lines: list[tuple[int, str, str]], head: int, tail: int, outer: int) -> int:
    """Trips of the counted loop head..tail as GCC lays it out: ``mov $a,%r`` before the
    head, ``add $s,%r`` in the body and ``cmp $b,%r; jne head`` at its end."""
    body = [(m, o) for a, m, o in lines if head <= a <= tail]
    compare = next((_COUNTER_CMP.match(o) for m, o in reversed(body) if m == "cmp"), None)
    if compare is None:
        raise ValueError(f"the inner loop at {head:#x} has no counter compare")
    end, register = int(compare[1], 0), compare[2]
    steps = [int(o.split(",")[0][1:], 0) for m, o in body if m == "add" and o.endswith(f",%{register}")]
    starts = [int(o.split(",")[0][1:], 0) for a, m, o in lines
              if outer <= a < head and m == "mov" and o.startswith("$") and o.endswith(f",%{register}")]  # fmt: skip
    if len(steps) != 1 or not starts or (end - starts[-1]) % steps[0]:
        raise ValueError(f"the inner loop at {head:#x} does not count {register} in even steps")
    return (end - starts[-1]) // steps[0]


def hot_loop_listing(disassembly: str, function: str) -> Listing:
    """The hot loop of ``function`` in objdump's output: the widest backward jump
    encloses the nonce loop. Backward jumps inside it to another header are inner loops
    (unless a call is inside: that is the rare candidate path), each counted trips times."""
    body = disassembly.split(f"<{function}>:\n", 1)[1].split("\n\n", 1)[0]
    lines = [(int(m[1], 16), m[2], m[3]) for m in map(_LINE.match, body.splitlines()) if m]
    spans = []
    for address, mnemonic, operands in lines:
        target = re.match(r"([0-9a-f]+)\s", operands + " ")
        if _JUMP.match(mnemonic) and target and int(target[1], 16) < address:
            spans.append((int(target[1], 16), address))
    start, end = max(spans, key=lambda s: s[1] - s[0])
    kept = [(a, m, o) for a, m, o in lines if start <= a <= end]
    index = {a: i for i, (a, _, _) in enumerate(kept)}
    inner = []
    for head, tail in sorted(spans):
        if start < head and tail <= end and not any(m.startswith("call") for a, m, _ in kept if head <= a <= tail):
            inner.append(InnerLoop(index[head], index[tail], _trips(kept, head, tail, start)))
    for before, after in itertools.pairwise(inner):
        if after.first <= before.last:
            raise ValueError(f"{function}: nested inner loops are not counted")
    return Listing([(m, o) for _, m, o in kept], inner)


@dataclass(frozen=True, slots=True)
class Replay:
    """The rewritten loop body and what was left out of it."""

    body: list[str]
    kept: int
    dropped: int


def _split_operands(operands: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in operands:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


def _rebase(operand: str, store: bool) -> str:
    """A memory operand moved to the load buffer (%rsi) or the store buffer (%rdx)."""
    match = _MEMORY.search(operand)
    if not match:
        return operand
    disp = int(match[1], 0) if match[1] else 0
    if match[2] == "%rip":
        # Constants: 64-byte slots past _RIP_BASE keep the 32-bit displacement of rip.
        disp = _RIP_BASE + (disp // 64 * 64) % (_LOAD_SPAN - _RIP_BASE)
    else:
        disp %= _RIP_BASE
    base = "%rdx" if store else "%rsi"
    return operand[: match.start()] + f"{disp}({base})" + operand[match.end() :]


class _Renamer:
    def __init__(self) -> None:
        self.next = {0: 0, 16: 0}
        self.next_mask = 0

    def destination(self, kind: str, number: int) -> str:
        bank = 16 if number >= 16 else 0
        pool = [r for r in range(bank, bank + 16) if r not in _SOURCES[bank]]
        register = pool[self.next[bank] % len(pool)]
        self.next[bank] += 1
        return f"%{kind}mm{register}"

    @staticmethod
    def source(kind: str, number: int) -> str:
        bank = 16 if number >= 16 else 0
        if number in _SOURCES[bank]:
            return f"%{kind}mm{number}"
        return f"%{kind}mm{_SOURCES[bank][number % len(_SOURCES[bank])]}"

    def mask(self) -> str:
        self.next_mask += 1
        return f"%k{1 + self.next_mask % 7}"


def rewrite(listing: Listing) -> Replay:
    """The listing's vector instructions with their dependencies cut; each inner loop
    stays a loop (counted in %r8, which nothing else touches), so the code is as big as
    the real loop's and runs as often."""
    renamer = _Renamer()
    body: list[str] = []
    dropped = 0
    opens = {loop.first: loop for loop in listing.inner}
    closes = {loop.last: loop for loop in listing.inner}
    for position, (mnemonic, raw) in enumerate(listing.instructions):
        if position in opens:
            body += [f"\tmov ${opens[position].trips},%r8d", f"{2 + position}:"]
        if position in closes:
            body += ["\tdec %r8d", f"\tjnz {2 + closes[position].first}b"]
        operands = re.sub(r"\s*(<.*>|#.*)$", "", raw).strip()
        parts = _split_operands(operands)
        registers = [p for p in parts if _VREG.fullmatch(p) or _KREG.fullmatch(p)]
        general = [p for p in parts if _GPR.search(_MEMORY.sub("", p))]
        if not registers or general or mnemonic.startswith(("j", "call", "nop", "k")):
            dropped += 1
            continue
        destination = len(parts) - 1
        store = not (_VREG.fullmatch(parts[-1]) or _KREG.fullmatch(parts[-1]))
        out = []
        for index, part in enumerate(parts):
            if _MEMORY.search(part):
                out.append(_rebase(part, store and index == destination))
            elif _KREG.fullmatch(part):
                out.append(renamer.mask() if index == destination else "%k1")
            elif vector := _VREG.fullmatch(part):
                kind, number = vector[1], int(vector[2])
                written = index == destination and not store
                out.append(renamer.destination(kind, number) if written else renamer.source(kind, number))
            else:
                out.append(part)
        body.append(f"\t{mnemonic} {','.join(out)}")
    return Replay(body=body, kept=len(body) - 2 * 2 * len(listing.inner), dropped=dropped)


_FUNCTION = """\t.text
\t.globl hc_replay
\t.type hc_replay, @function
hc_replay:
1:
{body}
\tdec %rdi
\tjnz 1b
\tvzeroupper
\tret
\t.section .note.GNU-stack,"",@progbits
"""


def cycles_per_pass(replay: Replay, clock_hz: float, repeats: int = 5) -> float:
    """Cycles one pass of the rewritten loop takes: the best of ``repeats`` timings of
    about 0.05 s each, in this thread's CPU time."""
    with tempfile.TemporaryDirectory() as tmp:
        source, library = Path(tmp) / "replay.s", Path(tmp) / "replay.so"
        source.write_text(_FUNCTION.format(body="\n".join(replay.body)))
        subprocess.run(["gcc", "-shared", "-o", str(library), str(source)], check=True, capture_output=True)
        run = ctypes.CDLL(str(library)).hc_replay
        run.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
        run.restype = None
        loads = (ctypes.c_uint8 * (_LOAD_SPAN + 4096))()
        stores = (ctypes.c_uint8 * (_LOAD_SPAN + 4096))()
        aligned = [ctypes.addressof(b) + (-ctypes.addressof(b)) % 64 for b in (loads, stores)]
        passes = 16
        while True:
            began = time.thread_time()
            run(passes, *aligned)
            if time.thread_time() - began > 0.01:
                break
            passes *= 2
        passes *= 5
        best = float("inf")
        for _ in range(repeats):
            began = time.thread_time()
            run(passes, *aligned)
            best = min(best, (time.thread_time() - began) * clock_hz / passes)
        return best
