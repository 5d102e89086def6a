"""The OpenCL backend: SHA-256d nonce scanning on GPUs, or on the CPU through PoCL.

Kernels live in ``kernels/`` (hashcat's layout: ``hc_portability.h`` maps what differs
between implementations, ``hc_sha256.cl`` holds the SHA-256 primitives, and
``hc_sha256d_scan.cl`` the thin entry kernels). The host chooses the path and sizes
and passes them as ``-D`` options; the kernels test only what the compiler says of
itself (clang, and AVX-512 in its target), never a vendor.

Code paths, per device:

* ``portable``: ``width`` nonces per vector (1 on GPUs; 4 to 32 on CPUs, where the
  lanes fill SIMD registers, 32 only with clang), any OpenCL 1.2 device;
* ``x86sha``: ``width`` nonces in flight through the x86 SHA extensions, on PoCL's CPU
  device where the CPU has them (PoCL compiles with clang, whose builtins reach them).

``path="auto"`` on a device where both run: each is tuned, then the two are timed
against each other on all the device's cores (see ``pathchoice``) once per device,
driver and kernel source, and the faster wins (x86sha on AMD Zen 3; portable, 2x
faster, on AVX-512 Intel). Elsewhere auto is portable.

One backend object drives every selected device (``device="auto"``: every GPU, else
the first CPU device; ``"all"``; or ``"P:D"`` platform and device indices,
comma-separated). A scan splits its range between devices in proportion to their
tuned rates, runs them at once and merges the results in nonce order.

Each device, before real work: the kernels are built (a failure raises
BackendUnavailable with the build log), a known answer is checked (hash kernel against
hashlib; the genesis nonce found by the scan kernel; an every-nonce range at the top of
the nonce space), and work size, nonces per work item and vector width are tuned once
per device and driver and cached on disk (``~/.cache/hashcore/opencl-tune.json``).

Per scan: launches of about ``launch_seconds`` each, two queued at a time (while the
host reads one launch's results the device runs the next), found nonces counted by an
atomic counter into a small buffer, every one re-checked here with hashlib.

Modules, by job: ``source`` (finding and loading the kernels), ``devices`` (discovery
and selection), ``settings`` (per-device settings and the tune cache), ``runner`` (one
device's context, builds and launches), ``tune`` (known answer, auto-tune, path choice),
``backend`` (the multi-device backend, registered as ``opencl`` when this package is
imported).
"""

from hashcore.backends.opencl.backend import OpenCLBackend, backend_rate, open_opencl
from hashcore.backends.opencl.devices import DeviceRef, list_devices, select_devices, x86sha_possible
from hashcore.backends.opencl.runner import DeviceRunner
from hashcore.backends.opencl.settings import (
    CHOICES,
    PATHS,
    WIDTHS,
    Settings,
    cached_settings,
    default_settings,
    launch_nonces,
    tune_file,
)
from hashcore.backends.opencl.source import ENTRY, default_kernel_dir, load_source
from hashcore.backends.opencl.tune import autotune, known_answer, path_choice

__all__ = [
    "CHOICES",
    "ENTRY",
    "PATHS",
    "WIDTHS",
    "DeviceRef",
    "DeviceRunner",
    "OpenCLBackend",
    "Settings",
    "autotune",
    "backend_rate",
    "cached_settings",
    "default_kernel_dir",
    "default_settings",
    "known_answer",
    "launch_nonces",
    "list_devices",
    "load_source",
    "open_opencl",
    "path_choice",
    "select_devices",
    "tune_file",
    "x86sha_possible",
]
