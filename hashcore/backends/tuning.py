"""Tuning constants of the Numba and OpenCL backends, in one place.

Each value says what it trades; the figures behind them are in the numba/opencl
benchmark (``bench/bench_numba_opencl.py``) and its notes. Nothing here is imported by
kernels as a literal: the Numba kernels receive the lane count through an argument's
type (so the on-disk cache is keyed by it) and the OpenCL kernels through ``-D``.
"""

from __future__ import annotations

# --- Numba ------------------------------------------------------------------------------

#: Nonces side by side that the portable Numba path is measured at (``lanes`` option
#: unset): one AVX2 vector; two AVX2 or one AVX-512 vector; two AVX-512 vectors. More
#: vectors in flight hide the latency of each round's chain where registers allow:
#: on Zen 3 (AVX2) 16 lanes ran 12.0 MH/s against 10.9 for 8, and on Zen 5 (full-width
#: AVX-512) 32 lanes ran 51 against 33 for 16 and 16.5 for 8, one thread. The fastest
#: here is kept with the path choice.
NUMBA_LANE_CANDIDATES: tuple[int, ...] = (8, 16, 32)

# --- OpenCL -----------------------------------------------------------------------------

#: Target seconds for one kernel launch. Four launches make one of the engine's
#: quarter-second scans, so two are always queued (the device never waits for the
#: host) while a clean job still stops stale work within the engine's quarter second.
OPENCL_LAUNCH_SECONDS = 0.25 / 4

#: Result slots per launch. More candidates than this in one launch (only with targets
#: so easy that most nonces qualify) makes the host rescan that launch in smaller parts.
OPENCL_RESULT_SLOTS = 4096

#: What the auto-tune times on each kind of device, one dimension at a time (width,
#: then nonces per work item, then work-group size), from the ``start`` settings.
#: Width is nonces side by side: vector lanes (portable) or nonces in flight through the
#: SHA extensions (x86sha). Work-group sizes are always explicit: PoCL's own choice for
#: a large launch can overflow its thread stacks.
OPENCL_TUNE_GRID: dict[str, dict[str, tuple[int, ...]]] = {
    # PoCL on x86 with the SHA extensions. Three in flight fill sha256rnds2 in C, but
    # PoCL's LLVM 15 schedules four to six better (Zen 3, one core: 3 -> 17.5,
    # 4 -> 21.9, 6 -> 22.2, 8 -> 21.1 MH/s). Nonces per item: multiples of 12.
    "x86sha": {"widths": (3, 4, 6), "nonces_per_item": (48, 192, 768), "local_sizes": (1, 4, 16),
               "start": (4, 192, 4)},
    # Other CPUs (and x86 ones where the lanes win): 8 lanes fill AVX2, 16 give two
    # independent chains there or fill AVX-512, and 32 give two AVX-512 chains (Zen 5,
    # 2 cores: 32 -> 101, 16 -> 75, 8 -> 35 MH/s).
    "cpu": {"widths": (4, 8, 16, 32), "nonces_per_item": (64, 256), "local_sizes": (4, 16), "start": (16, 256, 16)},
    # GPUs: one nonce per lane already runs in lockstep; enough items to hide latency.
    "gpu": {"widths": (1, 2), "nonces_per_item": (16, 64, 256), "local_sizes": (64, 128, 256),
            "start": (1, 64, 128)},
}  # fmt: skip

#: Seconds of device time each auto-tune candidate gets (best of two launches, after a
#: warm-up): enough to average over PoCL's thread start-up, short enough that a tune
#: takes a few seconds.
OPENCL_TUNE_SECONDS = 0.1
