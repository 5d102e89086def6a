"""Tuning constants of the Numba and OpenCL backends, in one place.

Each value says what it trades; the figures behind them are in the numba/opencl
benchmark (``bench/bench_numba_opencl.py``) and its notes. Nothing here is imported by
kernels as a literal: the Numba kernels receive the lane count through an argument's
type (so the on-disk cache is keyed by it) and the OpenCL kernels through ``-D``.
"""

from __future__ import annotations

# --- Numba ------------------------------------------------------------------------------

#: Nonces per SIMD vector in the portable Numba path. 8 fills one AVX2 register; 16
#: gives two independent chains per round (more ILP, more register pressure). On Zen 3
#: 8 measured faster: at 16 the state spills.
NUMBA_LANES = 8

#: Nonces a Numba scan checks between looks at the result count (keeps a scan whose
#: max_results is reached early from running on; cheap, so small).
NUMBA_RESULT_SLOTS_MIN = 16

# --- OpenCL -----------------------------------------------------------------------------

#: Target seconds for one kernel launch. Four launches make one of the engine's
#: quarter-second scans, so two are always queued (the device never waits for the
#: host) while a clean job still stops stale work within the engine's quarter second.
OPENCL_LAUNCH_SECONDS = 0.25 / 4

#: Result slots per launch. More candidates than this in one launch (only with targets
#: so easy that most nonces qualify) makes the host rescan that launch in smaller parts.
OPENCL_RESULT_SLOTS = 4096

#: Candidate settings the auto-tune times on each device: nonces per work item, SIMD
#: width of the kernel (uintN lanes per work item) and work-group size (0: the driver's
#: choice).
OPENCL_NONCES_PER_ITEM = (16, 64, 256)
OPENCL_VECTOR_WIDTHS = (1, 4, 8)
OPENCL_LOCAL_SIZES = (0, 64, 256)

#: Seconds of device time each auto-tune candidate gets (after one warm-up launch).
OPENCL_TUNE_SECONDS = 0.15

#: Settings used without an auto-tune (``tune=False``) and as the tune's starting point.
OPENCL_DEFAULT_NONCES_PER_ITEM = 64
OPENCL_DEFAULT_VECTOR_WIDTH = 1
OPENCL_DEFAULT_LOCAL_SIZE = 0
