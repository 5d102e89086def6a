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


# An objdump listing shaped like GCC's: a nonce loop (1000-1040) holding a counted loop
# that computes two message words a trip (1010-1024, ecx 0x20 -> 0x3e by 2: 15 trips) and
# a cold candidate loop that calls out (1030-1038).
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
    1030:	mov    %eax,%edi
    1034:	call   1100 <hc_candidate@plt>
    1038:	jne    1030 <hc_scan_demo+0x30>
    103c:	add    $0x20,%r9
    1040:	jb     1000 <hc_scan_demo>

"""


def test_the_listing_counts_an_inner_loop_as_often_as_it_runs(replay):
    listing = replay.hot_loop_listing(OBJDUMP, "hc_scan_demo")
    assert len(listing.instructions) == 16
    # The counted loop is inner; the candidate loop calls out and is left as it is.
    assert listing.inner == [replay.InnerLoop(3, 8, 15)]
    executed = listing.executed()
    assert len(executed) == 16 + 14 * 6
    assert sum(1 for m, _ in executed if m == "vprord") == 15
    assert sum(1 for m, _ in executed if m == "vpcmpleud") == 1


def test_an_inner_loop_without_a_counter_is_refused(replay):
    pointer_loop = OBJDUMP.replace("cmp    $0x3e,%ecx", "cmp    %r12,%r13")
    with pytest.raises(ValueError, match="no counter compare"):
        replay.hot_loop_listing(pointer_loop, "hc_scan_demo")
    uneven = OBJDUMP.replace("cmp    $0x3e,%ecx", "cmp    $0x3f,%ecx")
    with pytest.raises(ValueError, match="even steps"):
        replay.hot_loop_listing(uneven, "hc_scan_demo")


def _operands(line: str) -> list[str]:
    return [part.strip() for part in re.split(r",(?![^(]*\))", line.split(None, 1)[1])]


def test_the_replay_cuts_every_dependency_and_keeps_the_loops(replay):
    listing = replay.hot_loop_listing(OBJDUMP, "hc_scan_demo")
    rewritten = replay.rewrite(listing)
    instructions = [line for line in rewritten.body if line.startswith("\t")]
    # General-register work, jumps and the call are left out; the inner loop stays a loop.
    assert rewritten.dropped == 10 and rewritten.kept == 6
    assert instructions[2:4] == ["\tmov $15,%r8d", "\tvpaddd 64(%rsi),%zmm1,%zmm5"]
    assert "\tdec %r8d" in instructions and "\tjnz 5b" in instructions
    written, read = set(), set()
    for line in instructions:
        if line.split()[0] in ("mov", "dec", "jnz"):
            continue
        parts = _operands(line)
        destination_is_register = parts[-1].startswith("%")
        for index, part in enumerate(parts):
            if index == len(parts) - 1 and destination_is_register:
                written.add(part)
            else:
                read.update(re.findall(r"%[xyzk]m?m?\d+", part))
        if "(%" in parts[-1]:
            assert "(%rdx)" in parts[-1]  # stores go to their own buffer
        for part in parts[:-1]:
            assert "(%" not in part or "(%rsi)" in part  # loads read the other
    assert written and not written & read
    # The rip-relative constant keeps a 32-bit displacement.
    assert re.search(r"vpbroadcastd (\d+)\(%rsi\)", instructions[0])
    assert int(re.search(r"(\d+)\(%rsi\)", instructions[0])[1]) >= 8192


@needs_tools
@pytest.mark.parametrize("path", [p for p in ("shani", "avx2", "avx512") if p in cffi_c.supported_paths()])
def test_each_vector_path_of_the_built_module_is_read_and_replayed(ceiling, replay, path: str):
    module = Path(cffi_c._extension().__file__ or "")
    listing = ceiling.loop_listing(module, path)
    counted = ceiling.hot_loop(module, path)
    # Every nonce of the path runs its rounds: SHA-NI's 2 rounds a sha256rnds2 over about
    # 61 + 61 rounds; the lane paths' round and schedule work in the vector count.
    if path == "shani":
        assert 55 <= counted.sha_rnds2 <= 64
    else:
        assert counted.vector > 100 and counted.shift_rotate > 40
    assert counted.instructions * ceiling.NONCES_PER_ITERATION[path] == len(listing.executed())
    rewritten = replay.rewrite(listing)
    assert rewritten.kept > 0.9 * (rewritten.kept + rewritten.dropped)
    cycles = replay.cycles_per_pass(rewritten, clock_hz=3e9, repeats=1)
    assert math.isfinite(cycles) and cycles > 0


def test_the_ceiling_is_the_tighter_of_issue_and_latency(ceiling):
    shani = ceiling.LoopCount("shani", 316, 212, 0, 62, 45, 58, 948)
    issue = ceiling.ISSUE["zen4"]
    assert ceiling.ceiling_cycles(shani, issue, replayed=91.0) == (91.0, "issue, replayed")
    assert ceiling.ceiling_cycles(shani, issue, replayed=70.0) == (62 * 4 / 3, "rnds2 latency (3 in flight)")
    lanes = ceiling.LoopCount("avx512", 227, 180, 74, 0, 0, 18, 7264)
    # Without a replay the model's busiest resource stands in: 180 zmm operations, 2 a cycle.
    assert ceiling.ceiling_cycles(lanes, issue) == (90.0, "vector pipes (zmm)")
