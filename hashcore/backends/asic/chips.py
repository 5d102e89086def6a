"""What each BM13xx chip expects: its model figures and its register encodings.

Pure code. Register values are 32-bit numbers whose big-endian bytes are the four value
bytes of a register write (ASIC.md). The encoders reproduce the examples in ASIC.md:
PLL ``40 A0 02 41`` = 200 MHz and ``50 C2 02 40`` = 485 MHz (BM1366), ``40 A0 02 25`` =
200 MHz (BM1397); ticket masks ``00 00 00 FF`` (256) and ``00 00 80 FF`` (512); version
mask ``90 00 FF FF`` for 0x1FFFE000.

Operating points: a chip's V/f table (the lowest core voltage at which it hashes
cleanly at each clock) and its power model, ``static + k * f * V**2`` relative to the
stock point. The board's core-voltage regulator that sets the voltage has its encodings
in :mod:`~hashcore.backends.asic.pmbus`.
"""

from __future__ import annotations

import itertools
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


# --- operating points (V/f) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VfTable:
    """The lowest core voltage (mV) at which a chip hashes cleanly, clock by clock (MHz).

    Between rows the voltage is interpolated linearly and rounded up to the regulator's
    5 mV step (rounding down would undervolt); outside them it is held flat.
    """

    rows: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.rows) < 2:
            raise ConfigError("a V/f table needs at least two rows")
        for (f0, v0), (f1, v1) in itertools.pairwise(self.rows):
            if not (f1 > f0 and v1 >= v0):
                raise ConfigError("a V/f table rises in frequency and never falls in voltage")

    @property
    def min_mhz(self) -> float:
        return self.rows[0][0]

    @property
    def max_mhz(self) -> float:
        return self.rows[-1][0]

    def voltage_for(self, mhz: float) -> float:
        """The core voltage (mV) the chip needs at ``mhz``."""
        rows = self.rows
        if mhz <= rows[0][0]:
            return rows[0][1]
        for (f0, v0), (f1, v1) in itertools.pairwise(rows):
            if mhz <= f1:
                exact = v0 + (v1 - v0) * (mhz - f0) / (f1 - f0)
                return float(math.ceil(round(exact, 6) / VOLTAGE_STEP_MV) * VOLTAGE_STEP_MV)
        return rows[-1][1]


#: The regulator's output step (mV): table voltages are rounded up to it.
VOLTAGE_STEP_MV = 5

#: BM1366: stock 485 MHz at 1200 mV (a Bitaxe board's core voltage). The rows below
#: stock follow the alpha-power law f ~ (V - Vt)**1.3 / V with Vt = 0.55 V, anchored at
#: the stock point and rounded up to 5 mV; it gives 425 MHz at 1100 mV, the setting
#: Bitaxe firmware offers. A model of the chip, not a measured table.
BM1366_VF = VfTable((
    (200.0, 790.0), (225.0, 820.0), (250.0, 850.0), (275.0, 885.0), (300.0, 915.0), (325.0, 950.0),
    (350.0, 985.0), (375.0, 1025.0), (400.0, 1060.0), (425.0, 1100.0), (450.0, 1140.0), (475.0, 1185.0),
    (485.0, 1200.0), (500.0, 1230.0), (525.0, 1275.0), (550.0, 1325.0), (575.0, 1375.0),
))


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
        default_mhz: frequency set at open unless asked otherwise (the stock clock).
        start_mhz: frequency after reset, where the ramp starts.
        encode_pll / decode_pll: register 0x08 encodings.
        stock_mv: the core voltage at the stock clock.
        vf: the V/f table; None where none is known (the voltage then stays at stock).
        static_fraction: the share of the stock point's power that does not scale with
            the clock (leakage, I/O, the board's own draw).
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
    stock_mv: float = 1200.0
    vf: VfTable | None = None
    static_fraction: float = 0.15

    def voltage_for(self, mhz: float) -> float:
        """The core voltage (mV) for ``mhz``: the V/f table's, else the stock voltage."""
        return self.vf.voltage_for(mhz) if self.vf is not None else self.stock_mv

    def power_ratio(self, mhz: float, mv: float) -> float:
        """The chip's power at ``mhz`` and ``mv`` over its power at the stock point:
        ``s + (1 - s) * (f * V**2) / (f0 * V0**2)``, s the static fraction."""
        s = self.static_fraction
        dynamic = (mhz * mv * mv) / (self.default_mhz * self.stock_mv * self.stock_mv)
        return s + (1.0 - s) * dynamic

    def stable_at(self, mhz: float, mv: float) -> bool:
        """Whether ``mv`` is enough for the chip to hash cleanly at ``mhz``."""
        return mv + 1e-6 >= self.voltage_for(mhz) or self.vf is None

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
    stock_mv=1200.0,
    vf=BM1366_VF,
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


# --- operating-point curve -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChipPoint:
    """One chip at one operating point, at the chip's published scale.

    Attributes:
        mhz / mv: clock and core voltage.
        hashrate_hs: small cores x clock (ASIC.md's expected rate).
        watts: the stock point's power (``j_per_th`` x its rate) times the power ratio.
    """

    mhz: float
    mv: float
    hashrate_hs: float
    watts: float

    @property
    def j_per_th(self) -> float:
        return self.watts / self.hashrate_hs * 1e12


def chip_curve(model: ChipModel, j_per_th: float, frequencies: list[float] | None = None) -> list[ChipPoint]:
    """The chip's operating points along its V/f table (default: its rows up to stock),
    anchored at ``j_per_th`` joules per terahash at the stock point."""
    if not j_per_th > 0:
        raise ConfigError(f"J/TH must be positive, not {j_per_th}")
    if frequencies is None:
        rows = model.vf.rows if model.vf is not None else ((model.default_mhz, model.stock_mv),)
        frequencies = [f for f, _ in rows if f <= model.default_mhz]
    stock_watts = j_per_th * model.hashrate_per_mhz() * model.default_mhz / 1e12
    points = []
    for mhz in sorted(frequencies):
        mv = model.voltage_for(mhz)
        points.append(ChipPoint(mhz, mv, model.hashrate_per_mhz() * mhz, stock_watts * model.power_ratio(mhz, mv)))
    return points
