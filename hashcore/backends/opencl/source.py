"""The OpenCL kernel sources: where they are installed, and loading them with our own
``#include`` lines expanded.

Kernels live in ``kernels/`` (hashcat's layout: ``hc_portability.h`` maps what differs
between implementations, ``hc_sha256.cl`` holds the SHA-256 primitives, and
``hc_sha256d_scan.cl`` the thin entry kernels).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hashcore.errors import BackendUnavailable

#: The entry file: the scan and hash kernels, including the rest.
ENTRY = "hc_sha256d_scan.cl"


def default_kernel_dir() -> Path:
    """Where the kernels are: ``kernels/`` beside the package in a source checkout or
    an editable install, else ``share/hashcore/kernels`` under the install prefix."""
    # This file is hashcore/backends/opencl/source.py: the checkout's root is three up.
    source_tree = Path(__file__).resolve().parents[3] / "kernels"
    for candidate in (source_tree, Path(sys.prefix) / "share/hashcore/kernels"):
        if (candidate / ENTRY).is_file():
            return candidate
    raise BackendUnavailable(
        f"OpenCL backend: the kernel sources ({ENTRY}) are missing from this installation; "
        "fix: reinstall hashcore (pip install -e . from a source checkout)"
    )


_INCLUDE = re.compile(r'\s*#\s*include\s+"([^"]+)"\s*$')


def load_source(directory: Path, name: str = ENTRY, _seen: tuple[str, ...] = ()) -> str:
    """The kernel source with our own ``#include "..."`` lines expanded in place.

    Expanded here rather than by the OpenCL compiler, so that the binary caches keyed by
    the source text (pyopencl's, PoCL's) see every change of an included file; ``#line``
    keeps build-log line numbers pointing into the right file.
    """
    if name in _seen:
        raise BackendUnavailable(f"OpenCL backend: {name} includes itself (through {' -> '.join(_seen)})")
    try:
        text = (directory / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendUnavailable(f"OpenCL backend: cannot read kernel source {directory / name}: {exc}") from exc
    lines = [f'#line 1 "{name}"']
    for number, line in enumerate(text.splitlines(), 1):
        match = _INCLUDE.match(line)
        if match:
            lines.append(load_source(directory, match.group(1), (*_seen, name)))
            lines.append(f'#line {number + 1} "{name}"')
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
