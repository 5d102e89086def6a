"""cffi build script (out-of-line API mode) for ``hashcore._sha256d``.

Run by setuptools through ``cffi_modules`` (see setup.py): ``pip install .`` compiles
every code path into one extension; the path is chosen at run time from CPUID. The
cdef is the plain header ``csrc/hashcore_sha256d.h`` with its preprocessor lines
dropped, so the C declarations are written once.
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "hashcore_sha256d.h"
SOURCES = (
    "sha256d_dispatch.c",
    "sha256d_common.c",
    "sha256d_scalar.c",
    "sha256d_shani.c",
    "sha256d_shani_vl.c",
    "sha256d_avx2.c",
    "sha256d_avx512.c",
)
# -O3 and per-function target attributes; never -march=native, so the wheel runs on
# any CPU of the architecture and picks its code path at run time.
#: Included by the sources (sha256d_shani_vl.c builds sha256d_shani.c a second time).
DEPENDS = ("hashcore_sha256d.h", "sha256d_internal.h", "sha256d_lanes.h", "sha256d_shani.c")
EXTRA_COMPILE_ARGS = ["-O3", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-function"]


def _cdef(header: Path) -> str:
    lines = header.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _relative(path: Path) -> str:
    # setuptools wants source paths relative to the project root (the working directory).
    return os.path.relpath(path, Path.cwd())


ffibuilder = FFI()
ffibuilder.cdef(_cdef(HEADER))
ffibuilder.set_source(
    "hashcore._sha256d",
    '#include "hashcore_sha256d.h"',
    sources=[_relative(HERE / name) for name in SOURCES],
    include_dirs=[_relative(HERE)],
    depends=[_relative(HERE / name) for name in DEPENDS],
    extra_compile_args=EXTRA_COMPILE_ARGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
