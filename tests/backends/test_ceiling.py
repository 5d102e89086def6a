"""The C paths' ceilings (bench/ceiling.py, bench/loop_replay.py): the hot loop read from
the disassembly as it executes, inner loops counted, and the dependency-free replay."""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import sys
from pathlib import Path

import pytest

from hashcore.backends import cffi_c

BENCH = Path(__file__).parents[2] / "bench"
needs_tools = pytest.mark.skipif(not (shutil.which("objdump") and shutil.which("gcc")), reason="needs objdump and gcc")


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # ceiling.py imports loop_replay as a sibling script
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def replay():
    return _load("loop_replay")


@pytest.fixture(scope="module")
def ceiling(replay):
    return _load("ceiling")


# An objdump listing shaped like GCC's: a nonce loop (1000-1042) holding a counted loop
# that works out two message words a trip (1010-1024, ecx 0x20 -> 0x3e by 2: 15 trips);
# the rare candidate path is outlined after it (1050-1069) and jumps back to the head
# after its call, a wider backward jump that is not the loop's end.
OBJDUMP = """
0000000000001000 <hc_scan_demo>:
    1000:	mov    $0x20,%ecx
    1004:	vpbroadcastd 0x2000(%rip),%zmm1        # 3000 <hc_k>
    1008:	vmovdqa32 %zmm1,0x40(%rsp)
    1010:	vpaddd 0x40(%rsp),%zmm1,%zmm2
    1014:	vprord $0x7,%zmm2,%zmm3
    1018:	add    $0x2,%ecx
    101c:	vpternlogd $0x96,%zmm1,%zmm2,%zmm3
    1020:	cmp    $0x3e,%ecx
    1024:	jne    1010 <hc_scan_demo+0x10>
    1028:	vpcmpleud %zmm3,%zmm1,%k1
    102c:	kmovw  %k1,%eax
    1030:	test   %eax,%eax
    1032:	jne    1050 <hc_scan_demo+0x50>
    1034:	vpinsrd $0x3,%edx,%xmm5,%xmm9
    103a:	add    $0x20,%r9
    103e:	cmp    %r8,%r9
    1042:	jb     1000 <hc_scan_demo>
    1048:	ret
    1050:	mov    %eax,%edi
    1054:	vmovdqa32 %zmm21,0x290(%rsp)
    105c:	call   1100 <hc_candidate@plt>
    1061:	vmovdqa32 0x290(%rsp),%zmm21
    1069:	je     1000 <hc_scan_demo>
    106f:	jmp    1048 <hc_scan_demo+0x48>

"""


def test_the_listing_ends_at_the_loops_own_jump_and_counts_its_inner_loop(replay):
    listing = replay.hot_loop_listing(OBJDUMP, "hc_scan_demo")
    assert len(listing.instructions) == 17 and listing.instructions[-1][0] == "jb"
    assert not any(m == "call" or "0x290" in o for m, o in listing.instructions)  # the candidate path is out
    assert listing.inner == [replay.InnerLoop(3, 8, 15)]
    executed = listing.executed()
    assert len(executed) == 17 + 14 * 6
    assert sum(1 for m, _ in executed if m == "vprord") == 15
    assert sum(1 for m, _ in executed if m == "vpcmpleud") == 1


def test_a_counter_starting_at_zero_is_read(replay):
    listing = replay.hot_loop_listing(OBJDUMP.replace("mov    $0x20,%ecx", "xor    %ecx,%ecx"), "hc_scan_demo")
    assert listing.inner[0].trips == 0x3E // 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("cmp    $0x3e,%ecx", "cmp    %r12,%ecx"), "no counter compare"),
        (("jne    1010", "jbe    1010"), "no counter compare"),
        (("cmp    $0x3e,%ecx", "cmp    $0x3f,%ecx"), "whole steps"),
        (("cmp    $0x3e,%ecx", "cmp    $0x10,%ecx"), "whole steps"),
        (("vpbroadcastd 0x2000(%rip),%zmm1", "mov    %eax,%ecx"), "from a constant"),
        (("vprord $0x7,%zmm2,%zmm3", "add    $0x1,%ecx"), "one constant"),
        (("vprord $0x7,%zmm2,%zmm3", "lea    0x1(%rcx),%ecx"), "one constant"),
    ],
)
def test_an_inner_loop_whose_trips_are_not_read_is_refused(replay, change: tuple[str, str], reason: str):
    with pytest.raises(ValueError, match=reason):
        replay.hot_loop_listing(OBJDUMP.replace(*change), "hc_scan_demo")


def _operands(line: str) -> list[str]:
    return [part.strip() for part in re.split(r",(?![^(]*\))", line.split(None, 1)[1])]


#: Instructions that also read their destination.
READS_DESTINATION = ("vpternlogd", "sha256rnds2", "sha256msg1", "sha256msg2")


def test_the_replay_cuts_dependencies_and_keeps_encodings_and_loops(replay):
    listing = replay.hot_loop_listing(OBJDUMP, "hc_scan_demo")
    rewritten = replay.rewrite(listing)
    instructions = [line for line in rewritten.body if line.startswith("\t")]
    # General-register work and jumps are left out; the inner loop stays a loop.
    assert rewritten.dropped == 9 and rewritten.kept == 8
    assert instructions[2:4] == ["\tmov $15,%r8d", "\tvpaddd 64(%rsi,%rax,1),%zmm1,%zmm3"]
    assert "\tdec %r8d" in instructions and "\tjnz 5b" in instructions
    # A stack operand keeps its SIB byte; the store goes to its own buffer.
    assert instructions[1] == "\tvmovdqa32 %zmm1,64(%rdx,%rax,1)"
    # General registers beside vector ones: read from r9, written to r10.
    assert "\tvpinsrd $0x3,%r9d,%xmm1,%xmm9" in instructions and "\tkmovw %k1,%r10d" in instructions
    # The rip-relative constant keeps a 32-bit displacement.
    assert re.fullmatch(r"\tvpbroadcastd (\d+)\(%rsi\),%zmm2", instructions[0])
    assert int(re.search(r"(\d+)\(%rsi\)", instructions[0])[1]) >= 0x4000


def test_no_instruction_reads_what_another_writes_but_its_own_destination(replay):
    # Enough writes for the rotation through each group to wrap several times.
    loop = [("vpternlogd", "$0x96,%zmm20,%zmm3,%zmm9"), ("vpaddd", "%zmm9,%zmm12,%zmm3"),
            ("vprord", "$0x7,%zmm3,%zmm28"), ("sha256rnds2", "%xmm0,%xmm4,%xmm5"),
            ("vmovdqa32", "%xmm21,%xmm6")] * 10  # fmt: skip
    rewritten = replay.rewrite(replay.Listing(loop, []))
    written: list[str] = []
    read: set[str] = set()
    for line in rewritten.body:
        parts = _operands(line)
        written.append(parts[-1])
        read.update(parts[:-1])
    assert not set(written) & read
    # An instruction that reads its destination (READS_DESTINATION) reads what was
    # written there one rotation earlier: six writes back in its group, never nearer.
    group_zero = [w for w in written if int(re.search(r"\d+", w)[0]) < 8]
    for i in range(6, len(group_zero)):
        assert group_zero[i] == group_zero[i - 6] and group_zero[i] not in group_zero[i - 5 : i]


def test_a_masked_operation_is_refused_rather_than_replayed_wrong(replay):
    with pytest.raises(ValueError, match="masked"):
        replay.rewrite(replay.Listing([("vpaddd", "%zmm1,%zmm2,%zmm9{%k1}")], []))


@needs_tools
@pytest.mark.parametrize("path", [p for p in ("shani", "avx2", "avx512") if p in cffi_c.supported_paths()])
def test_each_vector_path_of_the_built_module_is_read_and_replayed(ceiling, replay, path: str):
    module = Path(cffi_c._extension().__file__ or "")
    listing = ceiling.loop_listing(ceiling.disassemble(module), path)
    counted = ceiling.hot_loop(listing, path)
    # Every nonce of the path runs its rounds: SHA-NI's 2 rounds a sha256rnds2 over about
    # 61 + 61 rounds; the lane paths' round and schedule work in the vector count.
    if path == "shani":
        assert 55 <= counted.sha_rnds2 <= 64
    else:
        assert counted.vector > 100 and counted.shift_rotate > 40
    assert not any(m.startswith("call") for m, _ in listing.instructions)  # the candidate path is out
    rewritten = replay.rewrite(listing)
    assert rewritten.kept > 0.9 * (rewritten.kept + rewritten.dropped)
    cycles = replay.cycles_per_pass(rewritten, clock_hz=3e9, repeats=1)
    assert math.isfinite(cycles) and cycles > 0
    if path == "shani":
        # One chain of rounds for each nonce a pass hashes, all of one length.
        chains = replay.rnds2_chains(listing)
        ways = ceiling.NONCES_PER_ITERATION["shani"]
        assert sorted(set(chains.values())) == list(range(ways))
        assert len(chains) == ways * counted.sha_rnds2
        chained = replay.cycles_per_pass(replay.rewrite(listing, rounds_chained=True), clock_hz=3e9, repeats=1)
        assert math.isfinite(chained) and chained > 0


def test_the_ceiling_is_the_tighter_of_issue_and_latency(ceiling):
    shani = ceiling.LoopCount("shani", 316, 212, 0, 62, 45, 58, 948)
    issue = ceiling.ISSUE["zen4"]
    assert ceiling.ceiling_cycles(shani, issue, replayed=91.0) == (91.0, "issue, replayed")
    assert ceiling.ceiling_cycles(shani, issue, replayed=70.0) == (62 * 4 / 3, "rnds2 latency (3 in flight)")
    lanes = ceiling.LoopCount("avx512", 227, 180, 74, 0, 0, 18, 7264)
    # Without a replay the model's busiest resource stands in: 180 zmm operations, 2 a cycle.
    assert ceiling.ceiling_cycles(lanes, issue) == (90.0, "vector pipes (zmm)")
    # With the rounds' chain replayed, that measurement binds and the model only prints.
    assert ceiling.ceiling_cycles(shani, issue, replayed=88.0, chained=96.5) == (
        96.5, "issue with the rounds chained, replayed")  # fmt: skip


#: Two nonces' rounds as a compiler lays them out: state moved between registers, the
#: second hash's first rounds fed its message (xmm0) from the first hash's state.
TWO_STREAMS = [
    ("vmovq", "%rax,%xmm0"),  # the nonce's message words, and constants: no stream yet
    ("movdqa", "0x10(%rsp),%xmm1"),
    ("movdqa", "0x20(%rsp),%xmm2"),
    ("vmovdqa", "%xmm1,%xmm3"),
    ("sha256rnds2", "%xmm0,%xmm1,%xmm2"),  # 4: stream 0 starts
    ("sha256rnds2", "%xmm0,%xmm1,%xmm3"),  # 5: stream 1 starts
    ("vmovdqa", "%xmm2,%xmm4"),  # stream 0's state moves
    ("sha256rnds2", "%xmm0,%xmm4,%xmm1"),  # 7: stream 0
    ("sha256rnds2", "%xmm0,%xmm3,%xmm5"),  # 8: stream 1
    ("vpaddd", "%xmm1,%xmm6,%xmm0"),  # stream 0's state becomes its message
    ("sha256rnds2", "%xmm0,%xmm7,%xmm8"),  # 10: stream 0, second hash
    ("vpaddd", "%xmm5,%xmm6,%xmm0"),
    ("sha256rnds2", "%xmm0,%xmm7,%xmm9"),  # 12: stream 1, second hash
]


def test_the_rounds_chains_are_read_from_the_data_flow(replay):
    chains = replay.rnds2_chains(replay.Listing(TWO_STREAMS, []))
    assert chains == {4: 0, 5: 1, 7: 0, 8: 1, 10: 0, 12: 1}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ((9, ("vpaddd", "%xmm1,%xmm5,%xmm0")), "mixes values of two streams"),
        ((7, ("sha256rnds2", "%xmm0,%xmm4,%xmm3")), "mixes the states of two streams"),
        ((12, ("sha256rnds2", "%xmm0,%xmm8,%xmm9")), "one length"),
    ],
)
def test_a_data_flow_that_is_not_separate_streams_is_refused(replay, change, reason: str):
    loop = list(TWO_STREAMS)
    loop[change[0]] = change[1]
    with pytest.raises(ValueError, match=reason):
        replay.rnds2_chains(replay.Listing(loop, []))


def test_the_chained_replay_keeps_each_streams_rounds_in_order_and_nothing_else(replay):
    rewritten = replay.rewrite(replay.Listing(TWO_STREAMS, []), rounds_chained=True)
    rounds = [line for line in rewritten.body if "sha256rnds2" in line]
    assert rounds == ["\tsha256rnds2 %xmm0,%xmm13,%xmm13", "\tsha256rnds2 %xmm0,%xmm14,%xmm14"] * 3
    # One zero idiom a stream, before its first round: passes do not wait on each other.
    assert [line for line in rewritten.body if "pxor" in line] == ["\tpxor %xmm13,%xmm13", "\tpxor %xmm14,%xmm14"]
    assert rewritten.body.index("\tpxor %xmm13,%xmm13") + 1 == rewritten.body.index(rounds[0])
    # Nothing else touches the chains' registers.
    others = [line for line in rewritten.body if "sha256rnds2" not in line and "pxor" not in line]
    assert not any(re.search(r"%xmm1[345]\b", line) for line in others)
    assert rewritten.kept == len(TWO_STREAMS) and rewritten.dropped == 0


def test_the_control_sets_the_chain_registers_aside_and_chains_nothing(replay):
    rewritten = replay.rewrite(replay.Listing(TWO_STREAMS * 3, []), reserved=replay.CHAIN_REGISTERS)
    assert not any(re.search(r"%xmm1[345]\b", line) or "pxor" in line for line in rewritten.body)
    assert sum("sha256rnds2" in line for line in rewritten.body) == 18


def test_a_shuffle_or_zero_idiom_does_not_read_what_it_overwrites(replay):
    flow = replay._vector_flow
    assert flow("pshufd", ["$0x1b", "%xmm6", "%xmm5"]) == (5, [6])
    assert flow("pxor", ["%xmm5", "%xmm5"]) == (5, [])
    assert flow("paddd", ["%xmm6", "%xmm5"]) == (5, [6, 5])  # a legacy two-operand form does
    assert flow("sha256msg2", ["%xmm6", "%xmm5"]) == (5, [6, 5])
    loop = list(TWO_STREAMS)
    # Stream 1's old state register zeroed and reused for stream 0's work: no mixing.
    loop[9:9] = [("pxor", "%xmm3,%xmm3"), ("vpaddd", "%xmm3,%xmm1,%xmm11")]
    assert sorted(replay.rnds2_chains(replay.Listing(loop, [])).values()) == [0, 0, 0, 1, 1, 1]


def test_an_rnds2_reading_memory_is_refused_not_misread(replay):
    loop = list(TWO_STREAMS)
    loop[7] = ("sha256rnds2", "%xmm0,0x30(%rsp),%xmm1")
    with pytest.raises(ValueError, match="reads memory"):
        replay.rnds2_chains(replay.Listing(loop, []))


def test_what_the_set_aside_registers_cost_alone_is_taken_off_the_chained_bound(ceiling):
    assert ceiling.chain_bound(93.7, 87.6, 87.6) == 93.7  # the control costs nothing: as measured
    assert ceiling.chain_bound(96.0, 90.0, 87.5) == pytest.approx(93.5)  # 2.5 of it is not the chain's
    assert ceiling.chain_bound(93.7, 86.0, 87.6) == 93.7  # a faster control never raises it
    assert ceiling.chain_bound(None, None, 87.6) is None  # chains refused: the latency model stands in
