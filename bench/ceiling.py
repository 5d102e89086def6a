"""Every CPU code path side by side, and how close each C path runs to its ceiling.

Two parts, one process:

1. Rates: every C path, Numba's shani and lanes, OpenCL's x86sha and portable on PoCL
   (every core), and the reference, measured in interleaved rounds of short calibrated
   slices (``pathchoice.measure``: a noisy neighbour hurts every path alike); MH/s per
   thread (OpenCL: per core of its device), and the ratio against C's best path.
2. Ceilings of the C paths: the instructions of each path's hot loop, read from the
   disassembly of the compiled module (objdump), divided by the nonces one iteration
   hashes; the clock, measured by a loop of dependent adds (one cycle each on every x86
   core); measured cycles per nonce = clock / the path's best slice. The ceiling is the
   issue bound, the loop's own instructions replayed on this core with every dependency
   cut (``loop_replay``: it pays for shared pipes, register moves, loads, stores and a
   front end fetching tens of kilobytes of loop, all of which a count per pipe misses).
   For SHA-NI the rounds' latency chain binds as well: its ceiling is the same replay with
   each nonce's rnds2 kept in a chain (``rounds_chained``), which pays for the chain and
   every instruction's issue together. A control replay with the chain's registers only
   set aside is printed beside it; what it loses against the plain replay is taken off. The issue model per machine kind
   (``ISSUE``) and the latency model are printed beside them.

    python bench/ceiling.py [--seconds 0.3] [--rounds 7] [--json]

Needs gcc (for the clock loop and the replay) and objdump; the rates run without them.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import loop_replay

from hashcore.backends import base, cffi_c, numba_cpu, pathchoice
from hashcore.errors import BackendUnavailable
from hashcore.work import Work

WORK = Work.from_header(bytes(range(76)), 1)  # target 1: nothing found, full scans
#: Nonces one iteration of each C path's hot loop hashes (avx512: two 16-lane groups).
NONCES_PER_ITERATION = {"scalar": 1, "shani": 3, "avx2": 8, "avx512": 32}
#: Cycles from one sha256rnds2 to the next that reads its result (timed on Zen 3 and Zen 4).
RNDS2_LATENCY = 4

# --- part 1: rates ------------------------------------------------------------------------------


def _runner(backend: base.Backend, least: int = 1) -> pathchoice.Runner:
    def run(_path: str, count: int) -> int:
        return backend.scan(WORK, 0, max(count, least), 1).hashes_done

    return run


def runners() -> tuple[dict[str, pathchoice.Runner], dict[str, int]]:
    """A runner per configuration this machine has, and the cores behind each."""
    run: dict[str, pathchoice.Runner] = {}
    cores: dict[str, int] = {}
    for path in cffi_c.supported_paths():
        run[f"c {path}"] = _runner(cffi_c.CBackend(path))
        cores[f"c {path}"] = 1
    try:
        for path in numba_cpu.supported_paths():
            numba = base.open_backend("numba", path=path)
            run[f"numba {base.backend_path(numba)}"] = _runner(numba)  # lanes named with their count
            cores[f"numba {base.backend_path(numba)}"] = 1
    except BackendUnavailable as exc:
        print(f"numba left out: {exc}", file=sys.stderr)
    try:
        from hashcore.backends import opencl

        cpu = [ref for ref, _ in opencl.list_devices() if ref.kind == "CPU"]
        for path in opencl.PATHS if cpu and opencl.x86sha_possible(cpu[0]) else ("portable",) if cpu else ():
            cl = base.open_backend("opencl", device=cpu[0].id, path=path)
            run[f"opencl {path}"] = _runner(cl, cl.settings[0].launch_nonces)  # type: ignore[attr-defined]
            cores[f"opencl {path}"] = cpu[0].compute_units
    except BackendUnavailable as exc:
        print(f"opencl left out: {exc}", file=sys.stderr)
    run["reference"] = _runner(base.open_backend("reference"))
    cores["reference"] = 1
    return run, cores


def measure_rates(seconds: float, rounds: int) -> dict[str, Any]:
    run, cores = runners()
    names = list(run)
    slices: dict[str, list[float]] = {n: [] for n in names}

    def timed(name: str, count: int) -> int:
        began = time.perf_counter()
        done = run[name](name, count)
        slices[name].append(done / (time.perf_counter() - began))
        return done

    rates, stick, _ = pathchoice.measure(names, timed, seconds * len(names) * rounds, rounds, threads=None)
    c_best = max(r for n, r in rates.items() if n.startswith("c "))
    rows = [
        {
            "config": n,
            "cores": cores[n],
            "mhs": rates[n] / 1e6,
            "mhs_per_core": rates[n] / cores[n] / 1e6,
            "best_slice_mhs_per_core": max(slices[n][-rounds:]) / cores[n] / 1e6,
            "vs_c_best_per_core": rates[n] / cores[n] / c_best,
            "vs_c_best_all_cores": rates[n] / (c_best * cores[n]) if cores[n] > 1 else None,
        }
        for n in names
    ]
    return {"hashlib_mcompressions_per_s": stick / 1e6, "c_best_mhs": c_best / 1e6, "rows": rows}


# --- part 2: ceilings ---------------------------------------------------------------------------

_CHAIN_C = r"""
#include <stdint.h>
uint64_t hc_chain(uint64_t n)
{
    uint64_t x = 0;
    for (uint64_t i = 0; i < n; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return x;
}
"""


def clock_hz(repeats: int = 7) -> float:
    """Cycles per second of one core: 8 dependent adds (8 cycles) per iteration; the best
    of ``repeats`` runs of about 0.1 s, timed in this thread's CPU time (wall time reads
    a busy neighbour's share as a slower clock)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "chain.c", Path(tmp) / "chain.so"
        src.write_text(_CHAIN_C)
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        chain = ctypes.CDLL(str(lib)).hc_chain
        chain.argtypes, chain.restype = [ctypes.c_uint64], ctypes.c_uint64
        n = 1 << 20
        while True:
            began = time.thread_time()
            chain(n)
            if time.thread_time() - began > 0.02:
                break
            n *= 2
        n *= 5
        best = 0.0
        for _ in range(repeats):
            began = time.thread_time()
            chain(n)
            best = max(best, 8 * n / (time.thread_time() - began))
        return best


#: Moves between registers or to and from memory: the renamer and the load/store units
#: take them, not the vector pipes (a broadcast from memory is a load as well).
_PLAIN_MOVE = re.compile(r"^(v?mov(aps|dqa|dqa64|dqa32|dqu|dqu64|dqu32|ups|d|q)|vpbroadcast[dq])\s+\S+$")
_MEMORY = re.compile(r"\(%r\w+")


@dataclass(frozen=True, slots=True)
class LoopCount:
    """The hot loop of one path, counted per nonce."""

    path: str
    instructions: float
    vector: float
    shift_rotate: float
    sha_rnds2: float
    sha_msg: float
    stack_accesses: float
    loop_instructions: int


def c_function(path: str) -> str:
    """The function the dispatcher runs for ``path`` on this CPU: the SHA-NI path has an
    AVX-512VL build (XMM16-31) that it takes where the CPU has AVX-512VL."""
    flags = pathchoice.cpu_identity()["flags"].split()
    if path == "shani" and "avx512vl" in flags and "avx512f" in flags:
        return "hc_scan_shani_vl"
    return f"hc_scan_{path}"


def disassemble(module: Path) -> str:
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(module)], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def loop_listing(disassembly: str, path: str) -> loop_replay.Listing:
    """The hot loop of the function the dispatcher runs for ``path``."""
    return loop_replay.hot_loop_listing(disassembly, c_function(path))


def _is_plain_move(mnemonic: str, operands: str) -> bool:
    """A move the vector pipes do not execute: register to register (eliminated at
    rename), a load or a store, or a broadcast from memory."""
    if not _PLAIN_MOVE.match(f"{mnemonic} {operands}"):
        return False
    return bool(_MEMORY.search(operands)) or operands.count("mm") == 2


def hot_loop(listing: loop_replay.Listing, path: str) -> LoopCount:
    """The instructions one pass of the hot loop executes, per nonce."""
    loop = listing.executed()
    per = NONCES_PER_ITERATION[path]

    def count(test: Any) -> float:
        return sum(1 for m, o in loop if test(m, o)) / per

    return LoopCount(
        path=path,
        instructions=len(loop) / per,
        vector=count(lambda m, o: ("%xmm" in o or "%ymm" in o or "%zmm" in o) and not _is_plain_move(m, o)),
        shift_rotate=count(lambda m, o: re.match(r"v?p(sr|sl|ro)[lr]?[dq]|v?ps[rl]ldq", m) is not None),
        sha_rnds2=count(lambda m, o: m == "sha256rnds2"),
        sha_msg=count(lambda m, o: m.startswith("sha256msg")),
        stack_accesses=count(lambda m, o: "(%rsp)" in o or "(%rbp)" in o),
        loop_instructions=len(loop),
    )


#: Issue model per machine kind: operations per cycle of each resource. Zen 3 and Intel:
#: assumptions from public instruction tables (uops.info, Agner Fog; PERF.md's timing
#: tests for SHA-NI on Zen 3). Zen 4: timed on one (family 25 model 17, 3.6 GHz) with
#: loops of independent instructions: sha256rnds2 1 per cycle (latency 4), sha256msg1
#: 1.5, sha256msg2 0.5 (on another pipe than rnds2: 4 rnds2 + 1 msg2 take 4 cycles),
#: zmm vprold/vpsrld 1, vpternlogd 1.75, vpaddd 2, a mix of the three 2 per cycle.
#: Zen 5: timed the same way on one (family 26 model 2, 4.15 GHz): zmm vpaddd and
#: vpternlogd 4, vprold/vpsrld 2, a mix of the three 4, sha256rnds2 and sha256msg2 0.5,
#: sha256msg1 1.8, independent general-register adds 4 per cycle.
ISSUE: dict[str, dict[str, float]] = {
    "zen5": {"zmm": 4, "ymm": 4, "zmm_shift": 2, "ymm_shift": 2, "rnds2": 0.5, "msg2": 1 / 2, "scalar": 4},
    "zen4": {"zmm": 2, "ymm": 4, "zmm_shift": 1, "ymm_shift": 2, "rnds2": 1, "msg2": 1 / 2, "scalar": 4},
    "zen3": {"zmm": 0, "ymm": 4, "zmm_shift": 0, "ymm_shift": 2, "rnds2": 1, "msg2": 1 / 2.2, "scalar": 4},
    "intel-avx512": {"zmm": 2, "ymm": 3, "zmm_shift": 1, "ymm_shift": 2, "rnds2": 0.5, "msg2": 1, "scalar": 4},
}


def machine_kind() -> str:
    cpu = pathchoice.cpu_identity()
    if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == "26":
        return "zen5"
    if cpu["vendor"] == "AuthenticAMD" and cpu["family"] == "25":
        return "zen4" if "avx512f" in cpu["flags"] else "zen3"
    return "intel-avx512" if "avx512f" in cpu["flags"] else "zen3"


def model_bounds(loop: LoopCount, issue: dict[str, float]) -> dict[str, float]:
    """Cycles per nonce each resource needs under the issue model."""
    if loop.path == "shani":
        return {
            "sha256rnds2": loop.sha_rnds2 / issue["rnds2"],
            "sha256msg1/2": loop.sha_msg / 2 / issue["msg2"],
            "vector pipes (xmm)": loop.vector / issue["ymm"],
        }
    if loop.path == "scalar":
        return {"scalar ALUs": loop.instructions / issue["scalar"]}
    width = "zmm" if loop.path == "avx512" else "ymm"
    return {
        f"vector pipes ({width})": loop.vector / issue[width],
        f"shift/rotate pipes ({width})": loop.shift_rotate / issue[f"{width}_shift"],
    }


def latency_model(loop: LoopCount) -> float:
    """SHA-NI's rounds alone: each nonce's rnds2 read the last one's state, RNDS2_LATENCY
    cycles apart, and NONCES_PER_ITERATION nonces are in flight to hide that."""
    return loop.sha_rnds2 * RNDS2_LATENCY / NONCES_PER_ITERATION["shani"]


def chain_bound(chained: float | None, control: float | None, replayed: float | None) -> float | None:
    """The chained replay less what setting the chains' registers aside costs by itself
    (the control over the plain replay): that cost is not the chain's, and taking it off
    keeps the bound from reading tighter than the chain makes it. None without both."""
    if chained is None or control is None:
        return None
    return chained - max(0.0, control - (replayed if replayed is not None else control))


def ceiling_cycles(
    loop: LoopCount, issue: dict[str, float], replayed: float | None = None, chained: float | None = None
) -> tuple[float, str]:
    """Cycles per nonce of the ceiling, and what sets it. The issue bound is ``replayed``
    (the loop's own instructions with every dependency cut, run on this core) where there
    is one, else the issue model's busiest resource; the model counts operations per pipe
    and misses what the replay pays or saves, so it only stands in. For SHA-NI the rounds'
    chain binds too: ``chained`` is the replay with each nonce's rnds2 kept in order,
    which pays for the chain and the issue together. Without it the latency model
    stands in, and only where it is above the issue bound: it is not strict (the
    reorder buffer can overlap the end of one pass with the start of the next)."""
    bounds = {"issue, replayed": replayed} if replayed is not None else model_bounds(loop, issue)
    if loop.path == "shani":
        if chained is not None:
            bounds["issue with the rounds chained, replayed"] = chained
        else:
            bounds[f"rnds2 latency ({NONCES_PER_ITERATION['shani']} in flight)"] = latency_model(loop)
    name = max(bounds, key=bounds.__getitem__)
    return bounds[name], name


def _timed(replay: loop_replay.Replay, hz: float) -> float:
    """Cycles a pass of ``replay`` takes: the fastest of three builds, since where the
    loader puts the code shifts a replay by a few percent."""
    return min(loop_replay.cycles_per_pass(replay, hz) for _ in range(3))


def ceilings(rates: dict[str, Any]) -> dict[str, Any]:
    hz = clock_hz()
    disassembly = disassemble(Path(cffi_c._extension().__file__ or ""))
    kind = machine_kind()
    best = {r["config"]: r["best_slice_mhs_per_core"] * 1e6 for r in rates["rows"]}
    median = {r["config"]: r["mhs"] * 1e6 for r in rates["rows"]}
    rows = []
    for path in cffi_c.supported_paths():
        try:
            listing = loop_listing(disassembly, path)
        except ValueError as exc:
            # GCC keeps some loops rolled (the scalar path's schedule, counted by pointers):
            # a count that cannot say how often they run is no count at all.
            rows.append({"path": path, "not_counted": str(exc)})
            continue
        loop = hot_loop(listing, path)
        model = model_bounds(loop, ISSUE[kind])
        # The scalar path works on general registers, which the replay leaves out.
        replay = loop_replay.rewrite(listing) if path != "scalar" else None
        per = NONCES_PER_ITERATION[path]
        replayed = _timed(replay, hz) / per if replay else None
        chained = control = chain_refused = None
        if path == "shani":
            try:
                chained = _timed(loop_replay.rewrite(listing, rounds_chained=True), hz) / per
                control = _timed(loop_replay.rewrite(listing, reserved=loop_replay.CHAIN_REGISTERS), hz) / per
            except ValueError as exc:  # streams not read: the latency model stands in
                chain_refused = str(exc)
        cycles, bound = ceiling_cycles(loop, ISSUE[kind], replayed, chain_bound(chained, control, replayed))
        measured = hz / best[f"c {path}"]
        rows.append(
            {
                **asdict(loop),
                "model_cycles_per_nonce": max(model.values()),
                "model_bound_by": max(model, key=model.__getitem__),
                "replayed_cycles_per_nonce": replayed,
                "replay_left_out_per_nonce": replay.dropped / NONCES_PER_ITERATION[path] if replay else None,
                "chained_cycles_per_nonce": chained,
                "chain_registers_control_cycles_per_nonce": control,
                "chain_refused": chain_refused,
                "latency_model_cycles_per_nonce": latency_model(loop) if path == "shani" else None,
                "bound_by": bound,
                "ceiling_cycles_per_nonce": cycles,
                "ceiling_mhs": hz / cycles / 1e6,
                "cycles_per_nonce_best": measured,
                "cycles_per_nonce_median": hz / median[f"c {path}"],
                "percent_of_ceiling_best": 100 * cycles / measured,
            }
        )
    return {"clock_ghz": hz / 1e9, "machine_kind": kind, "issue_model": ISSUE[kind], "paths": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="one slice per configuration (default 0.3)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians (default 7)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rates = measure_rates(args.seconds, args.rounds)
    result: dict[str, Any] = {"cpu": pathchoice.cpu_label(), "rates": rates, "ceilings": ceilings(rates)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"CPU: {result['cpu']}")
    print(f"hashlib SHA-256: {rates['hashlib_mcompressions_per_s']:.1f} M compressions/s, one core (median)")
    print(f"{'configuration':16} {'cores':>5} {'MH/s':>7} {'per core':>9} {'best':>7} {'vs C best/core':>15}")
    for r in rates["rows"]:
        print(f"{r['config']:16} {r['cores']:5} {r['mhs']:7.2f} {r['mhs_per_core']:9.2f} "
              f"{r['best_slice_mhs_per_core']:7.2f} {r['vs_c_best_per_core']:15.2f}")  # fmt: skip
    c = result["ceilings"]
    print(f"\nclock {c['clock_ghz']:.2f} GHz (dependent adds); issue model {c['machine_kind']}")
    print(f"{'path':7} {'insn/nonce':>10} {'vector':>7} {'shift/rot':>9} {'rnds2':>6} {'stack':>6} "
          f"{'model c/n':>9} {'replayed c/n':>12} {'ceiling c/n':>11} {'measured c/n':>12} "
          f"{'% ceiling':>9}  bound by")  # fmt: skip
    for p in c["paths"]:
        if "not_counted" in p:
            print(f"{p['path']:7} not counted: {p['not_counted']}")
            continue
        replayed = f"{p['replayed_cycles_per_nonce']:12.0f}" if p["replayed_cycles_per_nonce"] else f"{'-':>12}"
        print(f"{p['path']:7} {p['instructions']:10.0f} {p['vector']:7.0f} {p['shift_rotate']:9.0f} "
              f"{p['sha_rnds2']:6.0f} {p['stack_accesses']:6.0f} {p['model_cycles_per_nonce']:9.0f} {replayed} "
              f"{p['ceiling_cycles_per_nonce']:11.0f} {p['cycles_per_nonce_best']:12.0f} "
              f"{p['percent_of_ceiling_best']:9.0f}  {p['bound_by']}")  # fmt: skip
        if p.get("chained_cycles_per_nonce"):
            print(f"{'':7} rounds chained {p['chained_cycles_per_nonce']:.1f} c/n; control (chain registers set "
                  f"aside, nothing chained) {p['chain_registers_control_cycles_per_nonce']:.1f}; latency model "
                  f"{p['latency_model_cycles_per_nonce']:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
