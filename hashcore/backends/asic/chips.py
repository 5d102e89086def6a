"""What each BM13xx chip expects: its model figures and its register encodings.

Pure code. Register values are 32-bit numbers whose big-endian bytes are the four value
bytes of a register write (ASIC.md). The encoders reproduce the examples in ASIC.md:
PLL ``40 A0 02 41`` = 200 MHz and ``50 C2 02 40`` = 485 MHz (BM1366), ``40 A0 02 25`` =
200 MHz (BM1397); ticket masks ``00 00 00 FF`` (256) and ``00 00 80 FF`` (512); version
mask ``90 00 FF FF`` for 0x1FFFE000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from hashcore.backends.asic.framing import BM1366_REPLY_LENGTH, BM1397_REPLY_LENGTH
from hashcore.errors import ConfigError

# --- registers -------------------------------------------------------------------------

REG_CHIP_ID = 0x00
REG_PLL0 = 0x08
REG_HASH_COUNTING = 0x10
REG_TICKET_MASK = 0x14
REG_MISC_CONTROL = 0x18
REG_ORDERED_CLOCK_ENABLE = 0x20
REG_FAST_UART = 0x28
REG_CORE_CONTROL = 0x3C
REG_ANALOG_MUX = 0x54
REG_IO_DRIVER = 0x58
REG_PLL3 = 0x68
REG_PLL0_DIVIDER = 0x70
REG_CLOCK_ORDER0 = 0x80
REG_CLOCK_ORDER1 = 0x84
REG_VERSION_MASK = 0xA4
REG_INIT_CONTROL = 0xA8

#: The version bits a BM1366 can roll: 16 bits starting at bit 13 (BIP 320's range).
CHIP_VERSION_BITS = 0x1FFFE000
VERSION_SHIFT = 13

#: The chips' reference clock (MHz) that PLLs and the UART divider start from.
REFERENCE_MHZ = 25.0
BASE_BAUD = 115_200
#: BM1366 fast UART: register 0x28 = ``11 30 02 00``, then the host runs at 1,000,000 baud.
BM1366_FAST_UART_VALUE = 0x11300200
BM1366_FAST_BAUD = 1_000_000
#: Misc control (0x18) for the BM1397 with the UART divider bits cleared.
BM1397_MISC_CONTROL_BASE = 0x00006031

# --- ticket mask -----------------------------------------------------------------------

MAX_TICKET = 1 << 32


def _reverse_byte(b: int) -> int:
    return int(f"{b:08b}"[::-1], 2)


def ticket_for_difficulty(difficulty: float) -> int:
    """The chip-side difficulty P for a wanted difficulty: the largest power of two not above it.

    P is at least 1 (the chip then reports every hash with difficulty 1 or more) and at
    most 2**32 (the mask register is 32 bits wide).
    """
    if not difficulty > 0:
        raise ValueError(f"difficulty must be positive, got {difficulty!r}")
    if difficulty < 1:
        return 1
    return min(MAX_TICKET, 1 << (math.floor(math.log2(difficulty))))


def encode_ticket_mask(ticket: int) -> int:
    """Register 0x14 for difficulty ``ticket`` (a power of two): ``ticket - 1``, each byte bit-reversed."""
    if ticket < 1 or ticket > MAX_TICKET or ticket & (ticket - 1):
        raise ValueError(f"a ticket difficulty is a power of two in 1..2**32, got {ticket}")
    mask = ticket - 1
    return int.from_bytes(bytes(_reverse_byte(b) for b in mask.to_bytes(4, "big")), "big")


def decode_ticket_mask(value: int) -> int:
    """The difficulty P a ticket-mask register value stands for (holes count as set bits)."""
    mask = int.from_bytes(bytes(_reverse_byte(b) for b in value.to_bytes(4, "big")), "big")
    return 1 << mask.bit_length()


# --- version mask ----------------------------------------------------------------------


def encode_version_mask(mask: int) -> int:
    """Register 0xA4: ``90 00`` then the rollable bits of ``mask`` shifted right by 13."""
    return 0x90000000 | ((mask & CHIP_VERSION_BITS) >> VERSION_SHIFT)


def decode_version_mask(value: int) -> int:
    return (value & 0xFFFF) << VERSION_SHIFT


# --- PLL -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PllSetting:
    """A PLL register value and the frequency it really gives (MHz)."""

    value: int
    mhz: float


def encode_pll_bm1366(mhz: float) -> PllSetting:
    """Register 0x08 for the BM1366: ``[vdo, fbdiv, refdiv, (post1-1)<<4 | (post2-1)]``.

    f = 25 MHz * fbdiv / (refdiv * post1 * post2), fbdiv in 144..235, post2 < post1 <= 7,
    refdiv 2 or 1. The closest frequency wins, then the slowest VCO (25 MHz * fbdiv / refdiv).
    vdo is 0x50 when the VCO (25 MHz * fbdiv / refdiv) reaches 2400 MHz, else 0x40.
    """
    if not mhz > 0:
        raise ValueError(f"frequency must be positive, got {mhz!r}")
    best: tuple[float, float, int, int, int, int] | None = None
    for refdiv in (2, 1):
        for post1 in range(7, 0, -1):
            for post2 in range(1, post1):
                fbdiv = round(mhz * refdiv * post1 * post2 / REFERENCE_MHZ)
                if not 144 <= fbdiv <= 235:
                    continue
                error = abs(REFERENCE_MHZ * fbdiv / (refdiv * post1 * post2) - mhz)
                key = (error, REFERENCE_MHZ * fbdiv / refdiv, fbdiv, refdiv, post1, post2)
                if best is None or key[:2] < best[:2]:
                    best = key
    if best is None:
        raise ConfigError(f"no BM1366 PLL setting reaches {mhz} MHz")
    _, _, fbdiv, refdiv, post1, post2 = best
    vdo = 0x50 if REFERENCE_MHZ * fbdiv / refdiv >= 2400 else 0x40
    value = (vdo << 24) | (fbdiv << 16) | (refdiv << 8) | ((post1 - 1) << 4) | (post2 - 1)
    return PllSetting(value, decode_pll_bm1366(value))


def decode_pll_bm1366(value: int) -> float:
    fbdiv, refdiv, posts = (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
    post1, post2 = (posts >> 4) + 1, (posts & 0x0F) + 1
    if refdiv == 0:
        return 0.0
    return REFERENCE_MHZ * fbdiv / (refdiv * post1 * post2)


def encode_pll_bm1397(mhz: float) -> PllSetting:
    """Register 0x08 for the BM1397: ``[0x40 + (fa >> 8), fa & 0xFF, fb, (fc1 & 7) << 4 | (fc2 & 7)]``.

    f = 25 MHz * fa / (fb * fc1 * fc2). The open firmware's choice: fc2 = 5, fb = 1 at
    500 MHz and above (else 2), fc1 = 3 up to 150 MHz, 2 up to 250 MHz (else 1), and fa
    rounded up so the chip never runs below the asked frequency. Clamped to 50..650 MHz.
    """
    f = min(max(mhz, 50.0), 650.0)
    fb, fc1, fc2 = (1 if f >= 500 else 2), (3 if f <= 150 else 2 if f <= 250 else 1), 5
    fa = math.ceil(round(f * fb * fc1 * fc2 / REFERENCE_MHZ, 9))
    value = ((0x40 + (fa >> 8)) << 24) | ((fa & 0xFF) << 16) | (fb << 8) | ((fc1 & 7) << 4) | (fc2 & 7)
    return PllSetting(value, decode_pll_bm1397(value))


def decode_pll_bm1397(value: int) -> float:
    fa = (((value >> 24) & 0x3F) << 8) | ((value >> 16) & 0xFF)
    fb, fc1, fc2 = (value >> 8) & 0xFF, (value >> 4) & 0x07, value & 0x07
    if fb == 0 or fc1 == 0 or fc2 == 0:
        return 0.0
    return REFERENCE_MHZ * fa / (fb * fc1 * fc2)


# --- UART divider ----------------------------------------------------------------------


def uart_divider_for(baud: int) -> int:
    """The misc-control divider giving ``baud`` = 25 MHz / ((div + 1) * 8), nearest."""
    div = round(REFERENCE_MHZ * 1e6 / (8 * baud)) - 1
    if not 0 <= div <= 0x1F:
        raise ConfigError(f"baud {baud} is out of the chip UART's reach")
    return div


def encode_misc_control_baud(baud: int) -> int:
    """Register 0x18 (BM1397) for ``baud``: the divider sits in bits 8-12.

    The open firmware's default value ``00 00 7A 31`` (divider 26, about 115,740 baud)
    puts it there; its comment says "bits 9-13", which counts from 1.
    """
    return BM1397_MISC_CONTROL_BASE | (uart_divider_for(baud) << 8)


def decode_misc_control_baud(value: int) -> int:
    return round(REFERENCE_MHZ * 1e6 / ((((value >> 8) & 0x1F) + 1) * 8))


# --- chip models -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChipModel:
    """The figures and habits of one chip model.

    Attributes:
        name: "bm1366" or "bm1397".
        chip_id: the id in the top half of register 0 (0x1366, 0x1397).
        id_value: the whole register-0 value a chip answers with.
        reply_length: bytes per reply frame, preamble included.
        small_cores: published small-core count; expected rate = MHz * small_cores H/s per chip * 1e6.
        job_id_step: job ids advance by this much; the bits below it name the small core
            (BM1366) or the midstate (BM1397) in a reply.
        on_chip_rolling: the chip rolls version bits itself (BM1366) instead of hashing
            host-rolled midstates (BM1397).
        default_mhz: frequency set at open unless asked otherwise.
        start_mhz: frequency after reset, where the ramp starts.
        encode_pll / decode_pll: register 0x08 encodings.
    """

    name: str
    chip_id: int
    id_value: int
    reply_length: int
    small_cores: int
    job_id_step: int
    on_chip_rolling: bool
    default_mhz: float
    start_mhz: float
    encode_pll: Callable[[float], PllSetting]
    decode_pll: Callable[[int], float]

    def job_slot(self, job_id: int) -> int:
        """The job-table slot a reply's id byte points at."""
        return job_id & (0x100 - self.job_id_step)

    def lane(self, job_id: int) -> int:
        """The small core (BM1366) or midstate index (BM1397) in a reply's id byte."""
        return job_id & (self.job_id_step - 1)

    def hashrate_per_mhz(self) -> float:
        """Published hashes per second per MHz of one chip."""
        return self.small_cores * 1e6


BM1366 = ChipModel(
    name="bm1366",
    chip_id=0x1366,
    id_value=0x13660000,
    reply_length=BM1366_REPLY_LENGTH,
    small_cores=894,
    job_id_step=8,
    on_chip_rolling=True,
    default_mhz=485.0,
    start_mhz=56.25,
    encode_pll=encode_pll_bm1366,
    decode_pll=decode_pll_bm1366,
)

BM1397 = ChipModel(
    name="bm1397",
    chip_id=0x1397,
    id_value=0x13971800,
    reply_length=BM1397_REPLY_LENGTH,
    small_cores=672,
    job_id_step=4,
    on_chip_rolling=False,
    default_mhz=425.0,
    start_mhz=50.0,
    encode_pll=encode_pll_bm1397,
    decode_pll=decode_pll_bm1397,
)

CHIPS: dict[str, ChipModel] = {model.name: model for model in (BM1366, BM1397)}


def chip_model(name: str) -> ChipModel:
    """The model called ``name`` (case-insensitive); ConfigError names the known ones."""
    model = CHIPS.get(name.lower())
    if model is None:
        raise ConfigError(f"unknown ASIC chip {name!r} (known: {', '.join(sorted(CHIPS))})")
    return model


# --- what a ticket lets through --------------------------------------------------------


def ticket_target(ticket: int, base_difficulty: float = 1.0) -> int:
    """The largest hash value a chip with ticket difficulty ``ticket`` reports.

    A real chip reports a hash whose top 32 + log2(ticket) bits are zero: below
    2**224 / ticket. ``base_difficulty`` scales that for an emulated chain (1 on hardware).
    """
    bound = Fraction(1 << 224) / (Fraction(ticket) * Fraction(base_difficulty))
    return min((1 << 256) - 1, math.ceil(bound) - 1)
