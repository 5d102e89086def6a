"""What every subcommand of the command line shares: the parser class, option groups
(backends, energy), turning parsed flags into the application's options, the strict JSON
printer, the report printer and errors turned into exit statuses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from hashcore.backends.asic import flags as asic_flags
from hashcore.cli.argtypes import positive_int, watts_per_core
from hashcore.config import MAX_THREADS
from hashcore.errors import HashcoreError
from hashcore.metering import MeterSettings

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one clear line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def threads(text: str) -> int:
    """Worker threads: at least 1, at most MAX_THREADS (each one opens a scanner)."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text!r} is over {MAX_THREADS} (4 per core on this machine)")
    return value


def names(text: str) -> list[str]:
    """A comma-separated list of names (a repeated flag adds to it)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("backend options")
    group.add_argument("--c-path", choices=["auto", "avx512", "avx2", "shani", "scalar"], default=None,
                       help="C backend code path (default: the fastest measured here)")
    group.add_argument("--numba-path", choices=["auto", "shani", "lanes"], default=None,
                       help="Numba code path (default: the fastest measured here, lanes at their fastest lane count)")
    group.add_argument("--opencl-device", metavar="PLATFORM:DEVICE", default=None,
                       help="OpenCL device(s): auto (every GPU, else the CPU through PoCL), all, or "
                            "PLATFORM:DEVICE indices, comma-separated (hashcore devices lists them)")
    group.add_argument("--opencl-path", choices=["auto", "x86sha", "portable"], default=None,
                       help="OpenCL kernels (default: on PoCL with SHA-NI the faster measured, else portable)")
    group.add_argument("--asic-port", default=None, help="ASIC serial port, or 'emulator'")
    group.add_argument("--asic-chip", choices=["bm1366", "bm1397"], default=None, help="ASIC chip model")
    group.add_argument("--asic-emulator-faults", type=asic_flags.emulator_faults, default=None, metavar="FAULTS",
                       help="with --asic-port emulator: damage its nonce replies, e.g. garbage=0.5,drop=0.2 "
                            "(garbage, drop, crc: probabilities 0..1; late: seconds 0..1; "
                            "registers=1: register replies too)")


def add_energy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("energy")
    group.add_argument("--powercap-root", metavar="DIR", default=None,
                       help="RAPL powercap tree (default: $HASHCORE_POWERCAP_ROOT, else /sys/class/powercap)")
    group.add_argument("--tdp-watts-per-core", type=watts_per_core, default=None, metavar="W",
                       help="watts per busy core for the estimate when no counter can be read")


def meter_settings(args: argparse.Namespace) -> MeterSettings:
    """The energy flags' meter settings."""
    return MeterSettings(args.powercap_root or None, args.tdp_watts_per_core or None)


def backend_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per backend, the options its flags set."""
    options: dict[str, dict[str, Any]] = {}
    if args.c_path:
        options.setdefault("c", {})["path"] = args.c_path
    if args.numba_path:
        options.setdefault("numba", {})["path"] = args.numba_path
    if args.opencl_device:
        options.setdefault("opencl", {})["device"] = args.opencl_device
    if args.opencl_path:
        options.setdefault("opencl", {})["path"] = args.opencl_path
    if args.asic_port:
        options.setdefault("asic", {})["port"] = args.asic_port
    if args.asic_chip:
        options.setdefault("asic", {})["chip"] = args.asic_chip
    if args.asic_emulator_faults:
        options.setdefault("asic", {})["emulator_faults"] = args.asic_emulator_faults
    return options


def options_from(args: argparse.Namespace, kind: type[T], **given: Any) -> T:
    """An application options dataclass from the flags of the same names (and ``given``)."""
    fields = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    values = {name: value for name, value in vars(args).items() if name in fields}
    return kind(**{**values, **given})


def strict(value: Any) -> Any:
    """``value`` with every number that is not finite (inf, nan) as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    return value


def print_json(data: Any) -> None:
    """The one way the CLI prints JSON: one line of strict JSON (non-finite numbers as null)."""
    print(json.dumps(strict(data), allow_nan=False))


def show(report: Any, as_json: bool, console: Console) -> int:
    """A report with ``to_json()`` and ``summary_lines()``: one JSON line, or its lines."""
    if as_json:
        print_json(report.to_json())
        return 0
    for line in report.summary_lines():
        console.print(line, highlight=False)
    return 0


def exit_status(command: Callable[[], int]) -> int:
    """Run a subcommand: a HashcoreError is one line on stderr and status 1, Ctrl-C 130."""
    try:
        return command()
    except HashcoreError as exc:
        print(f"hashcore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
