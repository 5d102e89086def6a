"""Chip models and register encodings: the known answers of ASIC.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashcore.backends.asic.chips import (
    BM1366,
    BM1397,
    chip_model,
    decode_misc_control_baud,
    decode_pll_bm1366,
    decode_pll_bm1397,
    decode_ticket_mask,
    decode_version_mask,
    encode_misc_control_baud,
    encode_pll_bm1366,
    encode_pll_bm1397,
    encode_ticket_mask,
    encode_version_mask,
    ticket_for_difficulty,
    ticket_target,
)
from hashcore.errors import ConfigError
from hashcore.work import DIFF1_TARGET


@pytest.mark.parametrize(("mhz", "value"), [(200.0, 0x40A00241), (485.0, 0x50C20240)])
def test_bm1366_pll_known_answers(mhz: float, value: int) -> None:
    assert decode_pll_bm1366(value) == mhz
    setting = encode_pll_bm1366(mhz)
    assert (setting.value, setting.mhz) == (value, mhz)


def test_bm1397_pll_known_answer() -> None:
    assert decode_pll_bm1397(0x40A00225) == 200.0
    assert encode_pll_bm1397(200.0).value == 0x40A00225


@given(st.floats(50.0, 800.0))
def test_bm1366_pll_lands_within_a_few_mhz(mhz: float) -> None:
    setting = encode_pll_bm1366(mhz)
    assert abs(setting.mhz - mhz) < 6.0
    fbdiv, refdiv = (setting.value >> 16) & 0xFF, (setting.value >> 8) & 0xFF
    assert 144 <= fbdiv <= 235 and refdiv in (1, 2)
    assert (setting.value >> 24) == (0x50 if 25 * fbdiv / refdiv >= 2400 else 0x40)


@given(st.floats(50.0, 650.0))
def test_bm1397_pll_never_runs_slower_than_asked(mhz: float) -> None:
    setting = encode_pll_bm1397(mhz)
    assert mhz - 1e-6 <= setting.mhz < mhz + 25


@pytest.mark.parametrize(
    ("difficulty", "ticket", "value"),
    [(256, 256, 0x000000FF), (512, 512, 0x000080FF), (700, 512, 0x000080FF), (1, 1, 0), (0.001, 1, 0)],
)
def test_ticket_mask_known_answers(difficulty: float, ticket: int, value: int) -> None:
    assert ticket_for_difficulty(difficulty) == ticket
    assert encode_ticket_mask(ticket) == value
    assert decode_ticket_mask(value) == ticket


@given(st.integers(0, 32))
def test_ticket_mask_round_trips(bits: int) -> None:
    assert decode_ticket_mask(encode_ticket_mask(1 << bits)) == 1 << bits


def test_ticket_caps_at_the_32_bit_register() -> None:
    assert ticket_for_difficulty(2.0**40) == 1 << 32
    with pytest.raises(ValueError):
        encode_ticket_mask(3)


def test_ticket_target_is_what_a_real_chip_lets_through() -> None:
    # Difficulty-1 shares always pass ticket 1; the ticket's bound is 2**224 / ticket.
    assert ticket_target(1) == (1 << 224) - 1 >= DIFF1_TARGET
    assert ticket_target(256) == (1 << 216) - 1
    assert ticket_target(1, 2.0**-32) == (1 << 256) - 1
    assert ticket_target(1 << 12, 2.0**-32) == (1 << 244) - 1


def test_version_mask_known_answer() -> None:
    assert encode_version_mask(0x1FFFE000) == 0x9000FFFF
    assert decode_version_mask(0x9000FFFF) == 0x1FFFE000
    assert encode_version_mask(0) == 0x90000000
    assert encode_version_mask(0xFFFFFFFF) == 0x9000FFFF  # only bits 13-28 can roll


def test_misc_control_baud_matches_the_firmware_default() -> None:
    assert encode_misc_control_baud(115_200) == 0x00007A31
    assert decode_misc_control_baud(0x00007A31) == 115_741


def test_reply_ids_split_into_slot_and_lane() -> None:
    assert (BM1366.job_slot(0x2B), BM1366.lane(0x2B)) == (0x28, 3)
    assert (BM1397.job_slot(0x2B), BM1397.lane(0x2B)) == (0x28, 3)
    assert BM1366.hashrate_per_mhz() * 485 == pytest.approx(433.6e9, rel=1e-3)


def test_chip_models_by_name() -> None:
    assert chip_model("BM1366") is BM1366
    with pytest.raises(ConfigError, match="bm1366, bm1397"):
        chip_model("bm1370")
