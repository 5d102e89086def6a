"""How the ASIC driver brings a chain up and keeps it watched (:class:`DriverConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from hashcore.backends.asic.pmbus import REGULATOR_ADDRESS
from hashcore.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """How to bring a chain up. Defaults suit real hardware.

    Attributes:
        frequency_mhz: the clock to ramp to (None: the chip's default).
        baud: the link speed after init. None: the chip's fast mode (BM1366: 1,000,000
            through register 0x28; BM1397: stays at 115,200). 115200 keeps the start
            speed; the BM1397 takes any 25 MHz / ((div + 1) * 8) through register 0x18.
        ramp_step_mhz, ramp_delay_s: the frequency ramp's step and the pause after each.
        detect_silence_s: chip counting ends after this long without a new chip-id reply.
        detect_attempts: chip-id reads at init. A noisy link loses replies, so the chain
            is counted at least twice (the larger count wins) and a silent chain is asked
            again after ``detect_silence_s``, doubling, before it counts as absent.
        census_interval_s, census_window_s: how often a running chain is asked for chip
            ids, and how long the answers are counted (finds chips that stopped answering).
        census_retry_s, census_misses: after a census that missed a chip, the next comes
            ``census_retry_s`` later, doubling up to ``census_interval_s``; a chip counts
            as dead only after ``census_misses`` misses in a row (so over at least
            ``census_retry_s * (2 ** (census_misses - 1) - 1)`` seconds), and alive again
            at its next answer.
        known_answer, known_answer_timeout_s: run the known-answer check at open.
        known_answer_retry_s: the captured job is sent again when its nonce has not come
            back after this long (a reply lost on the link), doubling, until the timeout.
        reset_line: "dtr" or "rts" when the adapter wires the chain's reset there; None
            when there is no reset line (emulator, boards whose reset the host cannot reach).
        reset_hold_s: how long reset is held, and the wait after release.
        hashrate_per_chip_mhz: hashes per second per chip per MHz (None: the published
            small-core count); the nominal rate that ``hashrate`` reports.
        base_difficulty: the difficulty a zero ticket mask stands for: 1 on real chips;
            an emulated chain may report at a lower one (see the emulator).
        read_timeout_s: the reader thread's serial read timeout.
        regulator_port: the core-voltage regulator's bridge (None: the voltage is not
            reachable and stays where the board keeps it).
        regulator_address: its SMBus address.
        regulator_timeout_s: how long one regulator transaction may take.
        follow_vf: move the voltage along the chip's V/f table with every clock change.
    """

    frequency_mhz: float | None = None
    baud: int | None = None
    ramp_step_mhz: float = 6.25
    ramp_delay_s: float = 0.1
    detect_silence_s: float = 1.0
    detect_attempts: int = 4
    census_interval_s: float = 30.0
    census_window_s: float = 1.0
    census_retry_s: float = 2.0
    census_misses: int = 3
    known_answer: bool = True
    known_answer_timeout_s: float = 5.0
    known_answer_retry_s: float = 1.0
    reset_line: str | None = None
    reset_hold_s: float = 0.1
    hashrate_per_chip_mhz: float | None = None
    base_difficulty: float = 1.0
    read_timeout_s: float = 0.05
    regulator_port: str | None = None
    regulator_address: int = REGULATOR_ADDRESS
    regulator_timeout_s: float = 0.5
    follow_vf: bool = True

    def __post_init__(self) -> None:
        if self.detect_attempts < 1 or self.census_misses < 1:
            raise ConfigError("detect_attempts and census_misses must be at least 1")
