"""The issue bound of a hot loop, measured: its own instructions with their dependencies cut.

A per-resource count (``ceiling.ISSUE``) assumes that every operation finds a free pipe
the cycle it is ready, that register moves cost nothing and that the front end keeps up
with any amount of code. The core's real limits (which pipes each instruction may use,
double-pumped 512-bit operations, the op cache and L1i against a loop of tens of
kilobytes, loads and stores) are all in play when the loop's own instructions are run
with nothing to wait for. So this module rewrites the disassembled loop into one whose
instructions, encodings and memory traffic are those of the real loop but whose results
feed nothing:

- every vector destination is renamed in turn through the registers of its group of
  eight (0-7, 8-15, 16-23, 24-31: the encodings keep their length and stay legal) that
  no instruction reads, and every vector source reads a register of its group that
  nothing writes (xmm0 among them: ``sha256rnds2`` reads it implicitly); mask registers
  likewise (k1 is read, k2-k7 written);
- a general register beside vector operands (``vpinsrd``, ``vmovd``) becomes r9 when
  read and r10 when written, which nothing else touches;
- loads read one buffer and stores write another, at the loop's own displacements from a
  base of the same kind (a stack or indexed operand keeps its SIB byte, with rax, which
  holds 0, as the index; rip-relative constants move
  to 16-28 KiB, where they keep a 32-bit displacement), so no load waits for a store;
- instructions on general registers only (loop counters, address arithmetic) are left
  out: they run on the integer side, which the vector paths leave idle, and are counted
  in ``dropped``.

For SHA-NI a second replay keeps one chain the algorithm cannot do without: each
nonce's ``sha256rnds2`` in order, each reading the last one's result (``rounds_chained``).
The nonces (streams) are told apart by the loop's own data flow: a chain starts at an
rnds2 whose inputs hold no round's result, and goes on through every value computed
from its results (the second hash's message words carry the first hash's state). In the
replay each stream's rnds2 all read and write one register set aside for it (xmm13-15,
which group 8's renaming then leaves out), and a zero idiom before its first rnds2 of a
pass lets passes overlap as the real loop's may. What this leaves out of the real
chain (the moves, additions and shuffles between the two hashes) only makes it shorter,
so the replay stays a bound; it measures the rounds' latency and every instruction's
issue cost together, where the two bounds alone each assume the other costs nothing.

What is not cut: an instruction that also reads its destination (legacy-SSE two-operand
forms such as the SHA instructions, and ``vpternlogd``) reads the value written to that
register one rotation earlier, six or seven writes back in its group. Such short chains
do not carry from one pass to the next and cost a few percent at most; they make the
bound a little high (safe for a ceiling), never low.

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
_GPR = re.compile(r"%(r[0-9]{1,2}[dwb]?|[re]?[abcd]x|[abcd][lh]|[re]?(si|di|bp|sp)|(si|di|bp|sp)l)\b")
_MEMORY = re.compile(r"(-?0x[0-9a-f]+|-?\d+)?\((%r\w+)?(,%r\w+)?(,\d)?\)")
#: Per group of eight registers: those read but never written; the rest take the writes.
_SOURCES = {0: (0, 1), 8: (8,), 16: (16,), 24: (24,)}
#: Where the replay's base registers point inside their buffers, and where rip-relative
#: constants go (a 64-byte slot in [_RIP_BASE, _RIP_BASE + _RIP_SPAN)).
_BASE_OFFSET = 1 << 15
_RIP_BASE, _RIP_SPAN = 0x4000, 0x3000
_BUFFER = 3 << 15
#: Stores land this far from loads of the same displacement (no 4 KiB aliasing).
_STORE_SHIFT = 2048
#: Where the kept rounds' chains run, one register per stream (legacy SSE encodings
#: reach xmm0-15 only).
CHAIN_REGISTERS = (13, 14, 15)
#: Legacy SSE forms that write their destination without reading it.
_LEGACY_NOT_READING = ("movdqa", "movdqu", "movaps", "movups", "movapd", "movupd", "movd", "movq", "pshufd",
                       "pshuflw", "pshufhw", "cvtdq2ps", "cvttps2dq")  # fmt: skip
_ZERO_IDIOMS = ("pxor", "xorps", "xorpd", "pcmpgtd", "psubd", "vpxor", "vpxord", "vpxorq", "vxorps")

_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
_JUMP = re.compile(r"^j\w+$")
_NOT_WRITTEN = ("cmp", "test", "bt", "push")


def _family(register: str) -> str:
    """The architectural register a name is part of: ``ecx``, ``cl`` and ``rcx`` are one."""
    name = register.lstrip("%")
    if match := re.fullmatch(r"r(\d{1,2})[dwb]?", name):
        return f"r{match[1]}"
    if match := re.fullmatch(r"[re]?([abcd])x|([abcd])[lh]", name):
        return match[1] or match[2]
    return re.sub(r"^[re]|l$", "", name)


def _gpr_bits(register: str) -> int:
    name = register.lstrip("%")
    if re.fullmatch(r"r\d{1,2}", name) or re.fullmatch(r"r[a-z]{2}", name):
        return 64
    if name.endswith("d") or name.startswith("e"):
        return 32
    if name.endswith(("b", "l", "h")):
        return 8
    return 16


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


def _strip(operands: str) -> str:
    """Operands without objdump's comments (``# 3000 <hc_k>``) and symbol names."""
    return re.sub(r"\s*(<[^>]*>|#.*)$", "", operands).strip()


def _writes(mnemonic: str, operands: str, family: str) -> bool:
    parts = _split_operands(operands)
    if not parts or mnemonic.startswith(_NOT_WRITTEN) or not _GPR.fullmatch(parts[-1]):
        return False
    return _family(parts[-1]) == family


def _trips(lines: list[tuple[int, str, str]], head: int, tail: int, outer: int) -> int:
    """Trips of the counted loop head..tail as GCC lays it out: the counter set to a
    constant before the head (``mov $a,%r`` or ``xor %r,%r``), one ``add $s,%r`` in the
    body, and ``cmp $b,%r; jne head`` closing it. Anything else is refused: a count
    that is not read is not guessed."""
    body = [(m, o) for a, m, o in lines if head <= a <= tail]
    (jump, _), (compare, operands) = body[-1], body[-2] if len(body) > 1 else ("", "")
    counter = re.fullmatch(r"\$(0x[0-9a-f]+|\d+),(%\w+)", operands)
    if jump != "jne" or compare != "cmp" or counter is None:
        raise ValueError(f"the inner loop at {head:#x} has no counter compare closing it")
    end, family = int(counter[1], 0), _family(counter[2])
    writes = [(m, o) for m, o in body if _writes(m, o, family)]
    step = re.fullmatch(r"\$(0x[0-9a-f]+|\d+),(%\w+)", writes[0][1]) if len(writes) == 1 else None
    if step is None or writes[0][0] != "add":
        raise ValueError(f"the inner loop at {head:#x} does not step its counter by one constant")
    before = [(m, o) for a, m, o in lines if outer <= a < head and _writes(m, o, family)]
    start = None
    if before and before[-1][0] == "mov" and (value := re.fullmatch(r"\$(0x[0-9a-f]+|\d+),%\w+", before[-1][1])):
        start = int(value[1], 0)
    elif before and before[-1][0] == "xor" and len(set(_split_operands(before[-1][1]))) == 1:
        start = 0
    if start is None:
        raise ValueError(f"the inner loop at {head:#x} does not start its counter from a constant")
    trips, left = divmod(end - start, int(step[1], 0))
    if left or trips <= 0:
        raise ValueError(f"the inner loop at {head:#x} does not reach {end:#x} in whole steps")
    return trips


def hot_loop_listing(disassembly: str, function: str) -> Listing:
    """The hot loop of ``function`` in objdump's output: the widest backward jump with no
    call in between encloses the nonce loop (a jump back from the rare candidate path,
    which calls out, is not its end). Backward jumps inside it are inner loops, each
    counted as often as it runs."""
    body = disassembly.split(f"<{function}>:\n", 1)[1].split("\n\n", 1)[0]
    lines = [(int(m[1], 16), m[2], _strip(m[3])) for m in map(_LINE.match, body.splitlines()) if m]
    spans = []
    for address, mnemonic, operands in lines:
        target = re.match(r"([0-9a-f]+)\s", operands + " ")
        if _JUMP.match(mnemonic) and target and int(target[1], 16) < address:
            head = int(target[1], 16)
            if not any(m.startswith("call") for a, m, _ in lines if head <= a <= address):
                spans.append((head, address))
    if not spans:
        raise ValueError(f"{function}: no loop without a call")
    start, end = max(spans, key=lambda s: s[1] - s[0])
    kept = [(a, m, o) for a, m, o in lines if start <= a <= end]
    index = {a: i for i, (a, _, _) in enumerate(kept)}
    inner = [InnerLoop(index[head], index[tail], _trips(kept, head, tail, start))
             for head, tail in sorted(spans) if start < head and tail <= end]  # fmt: skip
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
    """A memory operand moved to the load buffer (%rsi) or the store buffer (%rdx), with
    an addressing form of the same length (a stack or indexed operand keeps a SIB byte)."""
    match = _MEMORY.search(operand)
    if not match:
        return operand
    disp = int(match[1], 0) if match[1] else 0
    base = "%rdx" if store else "%rsi"
    if match[2] == "%rip":
        disp = _RIP_BASE + (disp // 64 * 64) % _RIP_SPAN
        address = f"{disp}({base})"
    elif match[2] == "%rsp" or match[3]:
        address = f"{disp}({base},%rax,{(match[4] or ',1')[1:]})"  # rax: 0 throughout
    else:
        address = f"{disp}({base})"
    if not -_BASE_OFFSET <= disp < _BUFFER - _BASE_OFFSET - _STORE_SHIFT - 64:
        raise ValueError(f"a displacement of {disp:#x} does not fit the replay's buffers")
    return operand[: match.start()] + address + operand[match.end() :]


class _Renamer:
    def __init__(self, reserved: tuple[int, ...] = ()) -> None:
        self.next = dict.fromkeys(_SOURCES, 0)
        self.next_mask = 0
        self.reserved = reserved

    def destination(self, kind: str, number: int) -> str:
        group = number // 8 * 8
        pool = [r for r in range(group, group + 8) if r not in _SOURCES[group] and r not in self.reserved]
        register = pool[self.next[group] % len(pool)]
        self.next[group] += 1
        return f"%{kind}mm{register}"

    @staticmethod
    def source(kind: str, number: int) -> str:
        group = number // 8 * 8
        sources = _SOURCES[group]
        return f"%{kind}mm{number if number in sources else sources[-1]}"

    def mask(self) -> str:
        self.next_mask += 1
        return f"%k{2 + self.next_mask % 6}"


def _general(part: str, written: bool) -> str:
    bits = _gpr_bits(part)
    name = "r10" if written else "r9"
    return f"%{name}" + {64: "", 32: "d", 16: "w", 8: "b"}[bits]


def _vector_flow(mnemonic: str, parts: list[str]) -> tuple[int | None, list[int]]:
    """The vector register an instruction writes (None for a store, a compare or a
    general-register result) and those it reads, by number (xmm5, ymm5, zmm5 are one)."""
    numbers = [int(m[2]) if (m := _VREG.fullmatch(p)) else None for p in parts]
    written = numbers[-1] if parts and not mnemonic.startswith(_NOT_WRITTEN) else None
    reads = [n for n in numbers[:-1] if n is not None]
    # Legacy SSE two-operand forms (the SHA instructions among them) read their destination.
    if written is not None and not mnemonic.startswith("v") and mnemonic not in _LEGACY_NOT_READING:
        reads.append(written)
    # xor of a register with itself: a fresh zero, whatever the register held.
    if mnemonic in _ZERO_IDIOMS and len(set(numbers)) == 1 and None not in numbers:
        reads = []
    return written, reads


def rnds2_chains(listing: Listing) -> dict[int, int]:
    """The stream of each ``sha256rnds2`` of one pass (position -> stream), read from the
    loop's data flow: an rnds2 takes the stream of its state inputs, else that of its
    message input (xmm0: the second hash's first rounds), else starts one; every other
    vector result carries the stream of its inputs. Raises ValueError when the flow
    mixes two streams or the streams are not of one length."""
    if listing.inner:
        raise ValueError("the rounds' chains are read only from a loop without inner loops")
    owner: dict[int, int] = {}
    chains: dict[int, int] = {}
    streams = 0
    for position, (mnemonic, raw) in enumerate(listing.instructions):
        parts = _split_operands(_strip(raw))
        written, reads = _vector_flow(mnemonic, parts)
        if mnemonic == "sha256rnds2":
            registers = [_VREG.fullmatch(p) for p in parts]
            if len(parts) != 3 or not all(registers):
                raise ValueError(f"an rnds2 at {position} reads memory: {raw}")
            message, state, cdgh = (int(r[2]) for r in registers)  # type: ignore[index]
            held = {owner[r] for r in (state, cdgh) if r in owner}
            if len(held) > 1:
                raise ValueError(f"an rnds2 at {position} mixes the states of two streams")
            stream = held.pop() if held else owner.get(message)
            if stream is None:
                stream, streams = streams, streams + 1
            chains[position] = stream
            owner[cdgh] = stream
            continue
        if written is None:
            continue
        found = {owner[r] for r in reads if r in owner}
        if len(found) > 1:
            raise ValueError(f"{mnemonic} at {position} mixes values of two streams")
        if found:
            owner[written] = found.pop()
        else:
            owner.pop(written, None)
    lengths = {sum(1 for s in chains.values() if s == stream) for stream in range(streams)}
    if not chains or len(lengths) != 1:
        raise ValueError(f"the rounds do not form streams of one length ({sorted(lengths)})")
    return chains


def rewrite(listing: Listing, *, rounds_chained: bool = False, reserved: tuple[int, ...] = ()) -> Replay:
    """The listing's vector instructions with their dependencies cut; each inner loop
    stays a loop (counted in %r8, which nothing else touches), so the code is as big as
    the real loop's and runs as often. With ``rounds_chained`` each stream's rnds2 stay
    a chain (see the module's notes); ``reserved`` takes registers out of the renaming
    without chaining anything (the control for the registers the chains take)."""
    chains = rnds2_chains(listing) if rounds_chained else {}
    if len(set(chains.values())) > len(CHAIN_REGISTERS):
        raise ValueError(f"{len(set(chains.values()))} streams, registers for {len(CHAIN_REGISTERS)}")
    firsts = {min(p for p, s in chains.items() if s == stream) for stream in set(chains.values())}
    renamer = _Renamer(CHAIN_REGISTERS if rounds_chained else reserved)
    body: list[str] = []
    dropped = 0
    opens = {loop.first: loop for loop in listing.inner}
    closes = {loop.last: loop for loop in listing.inner}
    for position, (mnemonic, raw) in enumerate(listing.instructions):
        if position in opens:
            body += [f"\tmov ${opens[position].trips},%r8d", f"{2 + position}:"]
        if position in closes:
            body += ["\tdec %r8d", f"\tjnz {2 + closes[position].first}b"]
        operands = _strip(raw)
        if position in chains:
            register = f"%xmm{CHAIN_REGISTERS[chains[position]]}"
            if position in firsts:  # a new pass's stream owes nothing to the last pass's
                body.append(f"\tpxor {register},{register}")
            body.append(f"\tsha256rnds2 %xmm0,{register},{register}")
            continue
        if "{%k" in operands or "{z}" in operands:
            raise ValueError(f"masked operations are not replayed: {mnemonic} {operands}")
        parts = _split_operands(operands)
        vector = [p for p in parts if _VREG.fullmatch(p) or _KREG.fullmatch(p)]
        if not vector or mnemonic.startswith(("j", "call", "nop")):
            dropped += 1
            continue
        destination = len(parts) - 1
        store = bool(_MEMORY.search(parts[-1]))
        out = []
        for index, part in enumerate(parts):
            written = index == destination and not store
            if _MEMORY.search(part):
                out.append(_rebase(part, store and index == destination))
            elif _KREG.fullmatch(part):
                out.append(renamer.mask() if written else "%k1")
            elif match := _VREG.fullmatch(part):
                kind, number = match[1], int(match[2])
                out.append(renamer.destination(kind, number) if written else renamer.source(kind, number))
            elif _GPR.fullmatch(part):
                out.append(_general(part, written))
            else:
                out.append(part)
        body.append(f"\t{mnemonic} {','.join(out)}")
    return Replay(body=body, kept=len(body) - 2 * 2 * len(listing.inner) - len(firsts), dropped=dropped)


_FUNCTION = """\t.text
\t.globl hc_replay
\t.type hc_replay, @function
hc_replay:
	xor %eax,%eax
1:
{body}
\tdec %rdi
\tjnz 1b
\tvzeroupper
\tret
\t.section .note.GNU-stack,"",@progbits
"""


def cycles_per_pass(replay: Replay, clock_hz: float, repeats: int = 9) -> float:
    """Cycles one pass of the rewritten loop takes: the best of ``repeats`` timings of
    about 0.05 s each, in this thread's CPU time."""
    with tempfile.TemporaryDirectory() as tmp:
        source, library = Path(tmp) / "replay.s", Path(tmp) / "replay.so"
        source.write_text(_FUNCTION.format(body="\n".join(replay.body)))
        subprocess.run(["gcc", "-shared", "-o", str(library), str(source)], check=True, capture_output=True)
        run = ctypes.CDLL(str(library)).hc_replay
        run.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
        run.restype = None
        # One allocation: loads and stores then sit a fixed 2 KiB apart modulo 4 KiB.
        memory = (ctypes.c_uint8 * (2 * _BUFFER + 64))()
        aligned = ctypes.addressof(memory) + (-ctypes.addressof(memory)) % 64
        bases = (aligned + _BASE_OFFSET, aligned + _BUFFER + _BASE_OFFSET + _STORE_SHIFT)
        passes = 16
        while True:
            began = time.thread_time()
            run(passes, *bases)
            if time.thread_time() - began > 0.01:
                break
            passes *= 2
        passes *= 5
        best = float("inf")
        for _ in range(repeats):
            began = time.thread_time()
            run(passes, *bases)
            best = min(best, (time.thread_time() - began) * clock_hz / passes)
        return best
