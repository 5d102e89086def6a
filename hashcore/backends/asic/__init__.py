"""The ``asic`` backend: BM1366 / BM1397 chains over serial, and a chip-chain emulator.

Modules, from the bytes up: ``framing`` (frames and CRCs), ``chips`` (chip models and
register encodings), ``jobs`` (Work to jobs, the job table), ``known_answer`` (the
captured job checked at open), ``driver`` (the serial driver), ``emulator`` (emulated
chips on a pseudo-terminal), ``backend`` (the Backend, registered as ``asic``).
"""

from hashcore.backends.asic.backend import EMULATOR_PORT, AsicBackend, AsicStats, ChainError, open_asic
from hashcore.backends.asic.driver import AsicDriver, DriverConfig, DriverStats
from hashcore.backends.asic.emulator import BoardPower, ChainEmulator, EmulatorConfig, Faults, parse_faults

__all__ = [
    "EMULATOR_PORT",
    "AsicBackend",
    "AsicDriver",
    "AsicStats",
    "BoardPower",
    "ChainEmulator",
    "ChainError",
    "DriverConfig",
    "DriverStats",
    "EmulatorConfig",
    "Faults",
    "open_asic",
    "parse_faults",
]
