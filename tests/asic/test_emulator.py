"""The emulated chips without I/O: registers, addressing, ticket and version masks, hashing."""

from __future__ import annotations

import os
import time

import pytest

from hashcore.backends.asic import known_answer
from hashcore.backends.asic.chips import (
    BM1366,
    BM1397,
    REG_CHIP_ID,
    REG_PLL0,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    ChipModel,
    encode_ticket_mask,
    encode_version_mask,
    ticket_target,
)
from hashcore.backends.asic.emulated_chain import EmulatedChain
from hashcore.backends.asic.emulator import EmulatorConfig
from hashcore.backends.asic.framing import (
    NonceReply,
    RegisterReply,
    chain_inactive,
    encode_command,
    encode_job,
    read_register,
    set_address,
    write_register,
)
from hashcore.backends.asic.jobs import bm1366_job, bm1397_job, midstate_versions
from hashcore.backends.reference import ReferenceBackend
from hashcore.errors import ConfigError
from hashcore.work import DEFAULT_VERSION_MASK, verify_nonce

from .conftest import BASE, EmulatorFactory


def _chain(model: ChipModel = BM1366, chips: int = 1) -> EmulatedChain:
    return EmulatedChain(model, chips, BASE, ReferenceBackend())


def test_every_chip_answers_a_chip_id_read_in_chain_order() -> None:
    chain = _chain(chips=3)
    replies = chain.handle(read_register(REG_CHIP_ID))
    assert replies == [RegisterReply(0x13660000, 0, 0)] * 3


def test_chips_take_addresses_after_chain_inactive() -> None:
    chain = _chain(chips=3)
    chain.handle(chain_inactive())
    for address in (0, 85, 170):
        chain.handle(set_address(address))
    assert [c.address for c in chain.chips] == [0, 85, 170]
    assert chain.handle(read_register(REG_CHIP_ID, chip_addr=85)) == [RegisterReply(0x13660000, 85, 0)]
    chain.handle(write_register(0x3C, 0x1234, chip_addr=170))
    assert [c.registers.get(0x3C) for c in chain.chips] == [None, None, 0x1234]
    chain.handle(write_register(0x3C, 0x5678))
    assert [c.registers.get(0x3C) for c in chain.chips] == [0x5678] * 3


def test_a_pll_write_sets_the_clock() -> None:
    chain = _chain()
    chain.handle(write_register(REG_PLL0, 0x50C20240))
    assert chain.chips[0].frequency_mhz == 485.0
    assert chain.handle(read_register(REG_PLL0)) == [RegisterReply(0x50C20240, 0, REG_PLL0)]


def _mine_known_job(chain: EmulatedChain, *, mask: int, ticket: int, hashes: int) -> list[NonceReply]:
    chain.handle(write_register(REG_VERSION_MASK, encode_version_mask(mask)))
    chain.handle(write_register(REG_TICKET_MASK, encode_ticket_mask(ticket)))
    chain.handle(bm1366_job(known_answer.work(), 8, starting_nonce=known_answer.START_NONCE))
    replies, done = chain.mine(chain.chips[0], hashes)
    assert done >= hashes - 8
    return replies


def test_a_bm1366_chip_finds_the_captured_nonces_with_rolled_versions() -> None:
    chain = _chain()
    replies = _mine_known_job(chain, mask=DEFAULT_VERSION_MASK, ticket=1 << 32, hashes=8 * 0x200)
    work = known_answer.work()
    found = {(r.nonce, work.version | (r.version_field << 13)) for r in replies}
    assert (0x0A1A7030, 0x20000000) in found
    for reply in replies:
        assert reply.job_id & 0xF8 == 8
        assert reply.version_field == reply.job_id & 0x07  # small core k rolls field k
        version = work.version | (reply.version_field << 13)
        assert verify_nonce(work.with_version(version), reply.nonce).value <= ticket_target(1 << 32, BASE)


def test_the_ticket_mask_decides_what_is_reported() -> None:
    chain = _chain()
    target = ticket_target(1 << 24, BASE)
    replies = _mine_known_job(chain, mask=DEFAULT_VERSION_MASK, ticket=1 << 24, hashes=8000)
    work = known_answer.work()
    assert replies  # about 8000 / 256 expected
    for reply in replies:
        version = work.version | (reply.version_field << 13)
        assert verify_nonce(work.with_version(version), reply.nonce).value <= target


def test_a_zero_version_mask_keeps_the_version() -> None:
    chain = _chain()
    replies = _mine_known_job(chain, mask=0, ticket=1 << 24, hashes=3000)
    assert replies
    assert all(r.version_field == 0 and r.job_id == 8 for r in replies)


def test_a_bm1397_chip_hashes_each_midstate() -> None:
    chain = _chain(BM1397)
    chain.handle(write_register(REG_TICKET_MASK, encode_ticket_mask(1 << 32)))
    work = known_answer.work()
    versions = midstate_versions(work.version, work.version_mask)
    chain.handle(bm1397_job(work, 4, versions, starting_nonce=known_answer.START_NONCE))
    replies, done = chain.mine(chain.chips[0], 4 * 0x101)
    assert done == 4 * 0x101
    assert any(r.nonce == 0x0A1A7030 and r.job_id == 4 and r.midstate_num == 0 for r in replies)
    for reply in replies:
        lane = reply.job_id & 0x03
        assert reply.midstate_num == lane
        assert verify_nonce(work.with_version(versions[lane]), reply.nonce).value <= ticket_target(1 << 32, BASE)


def test_chips_split_the_nonce_range() -> None:
    chain = _chain(chips=2)
    chain.handle(write_register(REG_TICKET_MASK, encode_ticket_mask(1)))  # every hash
    chain.handle(write_register(REG_VERSION_MASK, encode_version_mask(0)))
    chain.handle(bm1366_job(known_answer.work(), 0, starting_nonce=100))
    first, _ = chain.mine(chain.chips[0], 3)
    second, _ = chain.mine(chain.chips[1], 3)
    assert [r.nonce for r in first] == [100, 101, 102]
    assert [r.nonce for r in second] == [100 + (1 << 31), 101 + (1 << 31), 102 + (1 << 31)]
    assert [r.midstate_num for r in second] == [1, 1, 1]


def test_a_dead_chip_neither_answers_nor_hashes() -> None:
    chain = _chain(chips=2)
    chain.dead = frozenset({1})
    assert len(chain.handle(read_register(REG_CHIP_ID))) == 1
    chain.handle(bm1366_job(known_answer.work(), 0))
    assert chain.mine(chain.chips[1], 100) == ([], 0)
    assert chain.rate_share(chain.chips[1]) == 0.0


def test_a_job_for_the_other_chip_model_is_ignored() -> None:
    chain = _chain(BM1397)
    chain.handle(bm1366_job(known_answer.work(), 0))
    assert chain.foreign_frames == 1 and chain.jobs_received == 0


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError):
        EmulatorConfig(chips=0)
    with pytest.raises(ConfigError):
        EmulatorConfig(base_difficulty=0)


def test_board_power_follows_the_configured_efficiency(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(j_per_th=30.0)
    assert emulator.board_power().joules == 0.0
    # Drive it by hand over the pty: a job makes the chain hash.
    fd = os.open(emulator.port, os.O_RDWR | os.O_NOCTTY)
    try:
        # At the model's default clock the chain runs at its configured rate.
        os.write(fd, encode_command(write_register(REG_PLL0, 0x50C20240)))
        os.write(fd, encode_job(bm1366_job(known_answer.work(), 0)))
        deadline = time.monotonic() + 2.0
        while emulator.hashes_done < 10_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emulator.board_power().watts == pytest.approx(30.0 * 100_000 / 1e12)
    finally:
        os.close(fd)
    emulator.stop()
    hashes = emulator.hashes_done
    assert hashes >= 10_000
    assert emulator.board_power().joules == pytest.approx(30.0 * hashes / 1e12)
