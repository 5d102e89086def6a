"""The serial driver against the emulated chain over a real pseudo-terminal."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hashcore.backends.asic import known_answer
from hashcore.backends.asic.chips import (
    BM1366,
    REG_CORE_CONTROL,
    REG_HASH_COUNTING,
    REG_INIT_CONTROL,
    REG_PLL3,
    REG_TICKET_MASK,
    REG_VERSION_MASK,
    encode_ticket_mask,
    ticket_for_difficulty,
)
from hashcore.backends.asic.driver import AsicDriver, DriverConfig
from hashcore.backends.asic.emulated_chain import EmulatedChain
from hashcore.backends.asic.emulator import ChainEmulator
from hashcore.backends.asic.faults import Faults
from hashcore.backends.asic.jobs import FoundNonce
from hashcore.errors import DeviceError
from hashcore.work import DEFAULT_VERSION_MASK, Work, difficulty_to_target, verify_nonce

from .conftest import BASE, DriverFactory, EmulatorFactory, fast_config

#: A share difficulty at which a 100 kH/s emulated chain reports about 24 nonces a second.
EASY = 2.0**-20


def _work(difficulty: float = EASY, mask: int = DEFAULT_VERSION_MASK, ntime_offset: int = 0) -> Work:
    header = bytearray(known_answer.work().header76)
    header[68] = (header[68] + ntime_offset) & 0xFF
    return Work(bytes(header), difficulty_to_target(difficulty), version_mask=mask)


def _collect(driver: AsicDriver, seconds: float, at_least: int = 1 << 30) -> list[FoundNonce]:
    found: list[FoundNonce] = []
    deadline = time.monotonic() + seconds
    while len(found) < at_least and (remaining := deadline - time.monotonic()) > 0:
        item = driver.next_found(remaining)
        if item is not None:
            found.append(item)
    return found


def _wait_for(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait until the emulator has acted on what was written to it."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the emulated chain did not get there"
        time.sleep(0.01)


def _meets_ticket(driver: AsicDriver, found: FoundNonce) -> bool:
    return verify_nonce(found.work.with_version(found.version), found.nonce).value <= driver.report_target


# --- init ------------------------------------------------------------------------------


@pytest.mark.parametrize("chips", [1, 3])
def test_open_detects_the_chips_addresses_them_and_passes_the_known_answer(
    make_emulator: EmulatorFactory, make_driver: DriverFactory, chips: int
) -> None:
    emulator = make_emulator(chips=chips)
    driver = make_driver(emulator)
    interval = 256 // chips
    assert driver.addresses == [i * interval for i in range(chips)]
    assert chain_of(emulator).chips[-1].address == (chips - 1) * interval
    assert [c.address for c in chain_of(emulator).chips] == driver.addresses
    stats = driver.stats
    assert (stats.chips, stats.chips_answering, stats.known_answer_passed) == (chips, chips, True)
    for chip in chain_of(emulator).chips:
        assert chip.registers[REG_INIT_CONTROL] == 0x000701F0  # the per-chip write came last
        assert chip.registers[REG_CORE_CONTROL] == 0x800082AA
        assert chip.registers[REG_HASH_COUNTING] == 0x0000151C
        assert chip.registers[REG_VERSION_MASK] == 0x9000FFFF
        assert chip.frequency_mhz == 485.0
    assert driver.hashrate == pytest.approx(100_000.0)


def test_the_clock_ramps_in_small_steps(make_emulator: EmulatorFactory, make_driver: DriverFactory) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    # Steps of 6.25 MHz, give or take what the PLL can hit exactly.
    history = list(chain_of(emulator).chips[0].frequency_history)
    assert history[0] <= BM1366.start_mhz + 6.25 and history[-1] == 485.0
    assert all(0 < b - a <= 7.5 for a, b in itertools.pairwise(history))
    driver.set_frequency(400.0)
    _wait_for(lambda: chain_of(emulator).chips[0].frequency_mhz == 400.0)
    down = chain_of(emulator).chips[0].frequency_history[len(history) :]
    assert all(0 < a - b <= 7.5 for a, b in zip([485.0, *down], down, strict=False))
    assert driver.hashrate == pytest.approx(100_000.0 * 400 / 485)


def test_the_link_switches_to_fast_baud_on_both_sides(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    assert chain_of(emulator).link_baud == 1_000_000 == driver.stats.baud


def test_a_bm1397_chain_comes_up_and_mines_host_rolled_midstates(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator(chip="bm1397", chips=2, hashrate=3000.0)
    driver = make_driver(emulator)
    chip = chain_of(emulator).chips[1]
    assert driver.addresses == [0, 128] and chip.address == 128
    assert chip.registers[REG_PLL3] == 0xC0700111 and chip.registers[REG_CORE_CONTROL] == 0x80008074
    assert chip.frequency_mhz == 425.0 and driver.stats.baud == 115_200
    work = _work(2.0**-24)
    driver.send_work(work)
    found = _collect(driver, 3.0, at_least=4)
    assert found
    versions = {0x20000000, 0x20002000, 0x20004000, 0x20006000}
    for item in found:
        assert item.work is work and item.version in versions and _meets_ticket(driver, item)


# --- jobs and nonces -------------------------------------------------------------------


def test_nonces_map_back_to_their_work_and_rolled_version(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    work = _work()
    job_id = driver.send_work(work)
    found = _collect(driver, 3.0, at_least=6)
    assert len(found) >= 6
    for item in found:
        assert item.work is work and item.job_id == job_id
        assert (item.version ^ work.version) & ~DEFAULT_VERSION_MASK == 0
        assert item.version == work.version | (item.lane << 13)  # small core k rolls field k
        assert _meets_ticket(driver, item)


def test_a_clean_job_drops_everything_older(make_emulator: EmulatorFactory, make_driver: DriverFactory) -> None:
    emulator = make_emulator(faults=Faults(late_s=0.3))
    driver = make_driver(emulator, known_answer_timeout_s=4.0)
    old, new = _work(), _work(ntime_offset=1)
    driver.send_work(old)
    time.sleep(0.5)  # nonces for the old job are in flight
    driver.send_work(new, clean=True)
    found = _collect(driver, 1.0)
    assert found and all(item.work is new for item in found)
    assert driver.stats.stale > 0


def test_late_nonces_of_a_live_job_still_count(make_emulator: EmulatorFactory, make_driver: DriverFactory) -> None:
    emulator = make_emulator(faults=Faults(late_s=0.3))
    driver = make_driver(emulator, known_answer_timeout_s=4.0)
    first, second = _work(), _work(ntime_offset=1)
    driver.send_work(first)
    time.sleep(0.4)
    driver.send_work(second)  # not clean: the first job stays live
    found = _collect(driver, 1.0)
    assert any(item.work is first for item in found)
    assert any(item.work is second for item in found)


def test_the_ticket_mask_follows_the_difficulty(make_emulator: EmulatorFactory, make_driver: DriverFactory) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    for difficulty in (2.0**-20, 2.0**-16 * 1.5):
        driver.send_work(_work(difficulty))
        ticket = ticket_for_difficulty(difficulty / BASE)
        assert driver.ticket == ticket
        registers = chain_of(emulator).chips[0].registers
        _wait_for(lambda: registers[REG_TICKET_MASK] == encode_ticket_mask(ticket))  # noqa: B023
    assert driver.ticket == 1 << 16
    driver.send_work(_work(2.0**-22))
    found = _collect(driver, 2.0, at_least=5)
    assert found and all(_meets_ticket(driver, item) for item in found)


def test_without_a_version_mask_the_version_never_rolls(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    work = _work(mask=0)
    driver.send_work(work)
    _wait_for(lambda: chain_of(emulator).chips[0].registers[REG_VERSION_MASK] == 0x90000000)
    found = _collect(driver, 2.0, at_least=3)
    assert found and all(item.version == work.version for item in found)


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [Faults(corrupt_crc=0.5), Faults(garbage=0.5), Faults(drop_byte=0.3)],
    ids=["corrupt-crc", "garbage", "dropped-bytes"],
)
def test_damaged_replies_are_dropped_and_good_ones_kept(
    make_emulator: EmulatorFactory, make_driver: DriverFactory, faults: Faults
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    emulator.faults = faults
    driver.send_work(_work(2.0**-22))
    found = _collect(driver, 3.0, at_least=20)
    stats = driver.stats
    assert stats.dropped_bytes > 0
    good = [item for item in found if _meets_ticket(driver, item)]
    assert len(good) >= 3
    if faults.drop_byte == 0:
        assert len(good) == len(found)  # a CRC5 can be fooled only by a shifted frame
    else:
        # A shifted frame passes CRC5 one time in 32; the backend's hashlib check drops it.
        assert len(found) - len(good) <= max(2, len(found) // 4)


def test_a_chip_that_stops_answering_is_found_by_the_census(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator(chips=2)
    driver = make_driver(emulator, census_interval_s=0.0, census_window_s=0.2)
    assert driver.hashrate == pytest.approx(100_000.0)
    emulator.faults = Faults(dead_chips=frozenset({1}))
    deadline = time.monotonic() + 3.0
    while driver.poll_chips() != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.chips_answering == 1
    assert driver.hashrate == pytest.approx(50_000.0)
    emulator.faults = Faults(dead_chips=frozenset({0, 1}))
    with pytest.raises(DeviceError, match=r"no ASIC chip .* answers any more"):
        while time.monotonic() < deadline + 3.0:
            driver.poll_chips()
            time.sleep(0.05)


def test_a_vanished_device_gives_a_clear_error_and_a_clean_stop(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    driver.send_work(_work())
    emulator.vanish()
    with pytest.raises(DeviceError, match="vanished or failed"):
        _collect(driver, 3.0)
    with pytest.raises(DeviceError):
        driver.send_work(_work())
    driver.close()
    driver.close()
    assert driver.failure is not None


def test_a_chain_that_fails_the_known_answer_is_refused(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(faults=Faults(corrupt_crc=1.0))
    driver = AsicDriver(emulator.port, BM1366, fast_config(emulator, known_answer_timeout_s=0.5))
    with pytest.raises(DeviceError, match="known-answer check failed"):
        driver.open()
    assert driver.stats.known_answer_passed is False


def test_the_wrong_chip_model_is_named(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(chip="bm1397")
    driver = AsicDriver(emulator.port, BM1366, fast_config(emulator))
    with pytest.raises(DeviceError, match=r"answered as bm1397 .* pass --asic-chip bm1397"):
        driver.open()


def test_a_silent_port_times_out_with_a_clear_error() -> None:
    # loop:// echoes our own commands back: nothing there is a chip.
    driver = AsicDriver("loop://", BM1366, DriverConfig(detect_silence_s=0.1))
    with pytest.raises(DeviceError, match="no ASIC chip answered on loop://"):
        driver.open()
    with pytest.raises(DeviceError):
        driver.send_work(_work())


def test_a_missing_port_cannot_be_opened() -> None:
    driver = AsicDriver("/dev/does-not-exist-asic", BM1366)
    with pytest.raises(DeviceError, match="cannot open ASIC port"):
        driver.open()


def test_spy_urls_log_the_traffic(make_emulator: EmulatorFactory, make_driver: DriverFactory, tmp_path: Path) -> None:
    emulator = make_emulator()
    log_file = tmp_path / "spy.txt"
    driver = make_driver(emulator, port=f"spy://{emulator.port}?file={log_file}")
    assert driver.stats.known_answer_passed
    driver.close()
    text = log_file.read_text()
    assert "55 AA 52 05 00 00 0A" in text.upper()  # the chip-id read went out


def chain_of(emulator: ChainEmulator) -> EmulatedChain:
    assert emulator.chain is not None
    return emulator.chain
