"""The ``asic`` backend: BM1366 / BM1397 chains over serial, and a chip-chain emulator.

Modules, from the bytes up: ``framing`` (frames and CRCs), ``chips`` (chip models and
register encodings), ``jobs`` (Work to jobs, the job table), ``known_answer`` (the
captured job checked at open); the driver: ``link`` (the serial port and its reader
thread), ``bringup`` (chip count, addresses, each model's init), ``clock`` (the clock
ramp), ``regulator`` (the PMBus core-voltage regulator), ``census`` (which chips still
answer), ``config`` and ``driver`` (the orchestration); the emulator: ``emulated_chain``
(the chips without I/O), ``emulated_regulator``, ``faults`` (what it injects) and
``emulator`` (both served on pseudo-terminals); ``backend`` (the Backend, registered as
``asic``).
"""

from hashcore.backends.asic.backend import EMULATOR_PORT, AsicBackend, AsicStats, ChainError, open_asic
from hashcore.backends.asic.driver import AsicDriver, DriverConfig, DriverStats
from hashcore.backends.asic.emulator import BoardPower, ChainEmulator, EmulatorConfig
from hashcore.backends.asic.faults import Faults, parse_faults

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
