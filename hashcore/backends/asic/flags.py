"""Value types for the asic backend's command-line flags (argparse adds the flag's name)."""

from __future__ import annotations

import argparse

from hashcore.backends.asic.faults import Faults, parse_faults
from hashcore.errors import ConfigError


def emulator_faults(text: str) -> Faults:
    """``--asic-emulator-faults garbage=0.5,drop=0.2``: see :func:`parse_faults`."""
    try:
        return parse_faults(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
