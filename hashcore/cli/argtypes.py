"""Value types for command-line flags: each turns text into a checked value, or raises
argparse's error naming what was wrong (argparse adds the flag's name)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, check: Callable[[float], bool], wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and check(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be {wanted}")
    return value


def positive_float(text: str) -> float:
    return _number(text, lambda v: v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    return _number(text, lambda v: v >= 0, "zero or more")


def fraction(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= 1, "between 0 and 1")


#: The most watts one busy core may be said to draw: more is a typo, never a processor.
MAX_WATTS_PER_CORE = 1000.0


def watts_per_core(text: str) -> float:
    return _number(text, lambda v: 0 < v <= MAX_WATTS_PER_CORE, f"above 0 and at most {MAX_WATTS_PER_CORE:g} W")


def _whole(text: str, check: Callable[[int], bool], wanted: str, base: int = 10, kind: str = "a whole number") -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not check(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be {wanted}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, lambda v: v >= 1, "at least 1")


def port(text: str) -> int:
    return _whole(text, lambda v: 0 <= v <= 65535, "a port number (0-65535)", kind="a port number")


def hex32(text: str) -> int:
    return _whole(text, lambda v: 0 <= v <= 0xFFFFFFFF, "a 32-bit value", base=16, kind="hex")
