"""Operating points: the chip's V/f table and power model, the core-voltage regulator
(PMBus through the bridge), and the driver setting clock and voltage over real ptys."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hashcore.backends.asic import known_answer
from hashcore.backends.asic.chips import (
    BM1366,
    BM1397,
    REG_TICKET_MASK,
    VfTable,
    chip_curve,
    encode_ticket_mask,
    ticket_target,
)
from hashcore.backends.asic.emulated_chain import EmulatedChain
from hashcore.backends.asic.emulated_regulator import EmulatedRegulator
from hashcore.backends.asic.framing import write_register
from hashcore.backends.asic.jobs import bm1366_job
from hashcore.backends.asic.pmbus import (
    PMBUS_READ_VOUT,
    PMBUS_VOUT_COMMAND,
    REGULATOR_ADDRESS,
    STATUS_ACK,
    STATUS_BAD_PEC,
    STATUS_NACK,
    RegulatorRequest,
    decode_linear11,
    decode_regulator_reply,
    decode_regulator_request,
    encode_linear11,
    encode_regulator_request,
    encode_ulinear16,
    smbus_pec,
    vout_exponent,
)
from hashcore.backends.reference import ReferenceBackend
from hashcore.errors import ConfigError, DeviceError
from hashcore.work import verify_nonce

from .conftest import BASE, DriverFactory, EmulatorFactory


def _wait_for(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the emulated board did not get there"
        time.sleep(0.01)


# --- the chip's V/f model --------------------------------------------------------------


def test_the_vf_table_gives_the_stock_point_and_rounds_up_between_rows() -> None:
    assert BM1366.voltage_for(485.0) == 1200.0
    assert BM1366.voltage_for(425.0) == 1100.0  # the Bitaxe firmware's 425 MHz / 1100 mV setting
    assert BM1366.voltage_for(430.0) == 1110.0  # 1108 mV interpolated, rounded up to the 5 mV step
    assert BM1366.voltage_for(100.0) == 790.0  # held flat below the table
    volts = [BM1366.voltage_for(f) for f in range(200, 576, 5)]
    assert volts == sorted(volts)


def test_a_vf_table_must_rise() -> None:
    with pytest.raises(ConfigError):
        VfTable(((400.0, 1000.0), (300.0, 1100.0)))


def test_power_is_static_plus_f_v_squared_relative_to_stock() -> None:
    assert BM1366.power_ratio(485.0, 1200.0) == pytest.approx(1.0)
    # 15% static, 85% dynamic: at half the clock and 1000 mV, 0.15 + 0.85 * 0.5 * (1000/1200)^2.
    assert BM1366.power_ratio(242.5, 1000.0) == pytest.approx(0.15 + 0.85 * 0.5 * (1000 / 1200) ** 2)
    assert BM1366.stable_at(300.0, 915.0) and not BM1366.stable_at(300.0, 900.0)
    assert BM1397.stable_at(425.0, 800.0)  # no table known: never undervolted by the model


def test_the_chip_curve_is_anchored_at_the_published_efficiency() -> None:
    curve = {round(p.mhz): p for p in chip_curve(BM1366, 21.5)}
    stock = curve[485]
    assert stock.hashrate_hs == pytest.approx(894 * 485e6)  # ASIC.md: about 434 GH/s
    assert stock.j_per_th == pytest.approx(21.5)
    assert (curve[250].mv, round(curve[250].j_per_th, 2)) == (850.0, 15.43)
    best = min(curve.values(), key=lambda p: p.j_per_th)
    assert best.mhz == 250.0  # below it the static part outweighs the lower voltage
    assert max(curve) == 485  # stops at stock


# --- PMBus and the bridge --------------------------------------------------------------


def test_smbus_pec_and_linear_formats() -> None:
    assert smbus_pec(b"123456789") == 0xF4  # CRC-8 (poly 0x07) check value
    assert vout_exponent(0x17) == -9
    with pytest.raises(ValueError):
        vout_exponent(0x40)  # VID mode, not ULINEAR16
    assert encode_ulinear16(1.2, -9) == 614
    for watts in (0.0, 0.5, 9.32, 12.34, 3010.0):
        assert decode_linear11(encode_linear11(watts)) == pytest.approx(watts, rel=2e-3, abs=1e-3)


def test_bridge_frames_round_trip_and_a_bad_pec_is_caught() -> None:
    request = RegulatorRequest(True, REGULATOR_ADDRESS, PMBUS_VOUT_COMMAND, 614)
    frame = encode_regulator_request(request)
    assert frame.hex(" ") == "5a 57 24 21 66 02 " + f"{smbus_pec(bytes((0x48, 0x21, 0x66, 0x02))):02x}"
    assert decode_regulator_request(frame) == request
    with pytest.raises(ValueError, match="PEC"):
        decode_regulator_request(frame[:-1] + bytes((frame[-1] ^ 1,)))


def test_the_regulator_sets_the_rail_and_refuses_what_it_cannot_do() -> None:
    rails: list[float] = []
    regulator = EmulatedRegulator(1200.0, (700.0, 1400.0), rails.append, lambda: 9.0)

    def ask(request: RegulatorRequest) -> tuple[int, int]:
        return decode_regulator_reply(regulator.handle(encode_regulator_request(request)), REGULATOR_ADDRESS)

    assert ask(RegulatorRequest(True, REGULATOR_ADDRESS, PMBUS_VOUT_COMMAND, encode_ulinear16(0.915, -9))) == (
        STATUS_ACK, 468)
    assert rails == [pytest.approx(914.0625)]  # 468 / 512 V: the register's own step
    assert ask(RegulatorRequest(False, REGULATOR_ADDRESS, PMBUS_READ_VOUT))[1] == 468
    assert ask(RegulatorRequest(True, REGULATOR_ADDRESS, PMBUS_VOUT_COMMAND, encode_ulinear16(2.0, -9)))[0] == (
        STATUS_NACK)
    nobody = encode_regulator_request(RegulatorRequest(False, 0x30, PMBUS_READ_VOUT))
    assert decode_regulator_reply(regulator.handle(nobody), 0x30)[0] == STATUS_NACK
    bad = bytearray(encode_regulator_request(RegulatorRequest(False, REGULATOR_ADDRESS, PMBUS_READ_VOUT)))
    bad[-1] ^= 0xFF
    assert decode_regulator_reply(regulator.handle(bytes(bad)), REGULATOR_ADDRESS)[0] == STATUS_BAD_PEC
    assert len(rails) == 1


def test_an_undervolted_chip_reports_nonces_that_do_not_hash() -> None:
    chain = EmulatedChain(BM1366, 1, BASE, ReferenceBackend())
    chain.handle(write_register(REG_TICKET_MASK, encode_ticket_mask(1 << 8)))
    chain.handle(bm1366_job(known_answer.work(), 8, starting_nonce=known_answer.START_NONCE))
    chip = chain.chips[0]
    chip.frequency_mhz = 485.0
    good, _ = chain.mine(chip, 8 * 0x200)
    assert good and chain.unstable_events == 0
    chain.set_voltage(1100.0)  # 485 MHz needs 1200 mV
    assert chain.unstable_events == 1
    chip.cursor = chip.round = 0  # the same hashes again, undervolted
    bad, _ = chain.mine(chip, 8 * 0x200)
    assert [r.nonce for r in bad] == [r.nonce ^ 1 for r in good]
    work, target = known_answer.work(), ticket_target(1 << 8, BASE)
    values = [verify_nonce(work.with_version(work.version | (r.version_field << 13)), r.nonce).value for r in bad]
    assert any(v > target for v in values)


# --- the driver over real ptys ---------------------------------------------------------


def test_the_driver_reads_the_voltage_at_open_and_follows_the_vf_table(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator(chips=2)
    driver = make_driver(emulator, regulator_port=emulator.regulator_port)
    # 1200 mV at power-on reads back as 614 / 512 V, within half a step: left as it is.
    assert driver.voltage_mv == pytest.approx(1199.22, abs=0.01) and driver.stats.voltage_mv == driver.voltage_mv
    assert emulator.regulator is not None and emulator.chain is not None
    writes = len(emulator.regulator.writes)
    driver.set_frequency(300.0)
    chain = emulator.chain
    _wait_for(lambda: all(c.frequency_mhz == 300.0 for c in chain.chips))
    # Down: the clock fell first, then one VOUT_COMMAND moved the rail to the table's 915 mV.
    assert emulator.regulator.writes[writes:] == [pytest.approx(915.0, abs=2)]
    assert chain.voltage_mv == pytest.approx(915.0, abs=2) and driver.voltage_mv == pytest.approx(915.0, abs=2)
    driver.set_frequency(485.0)
    _wait_for(lambda: all(c.frequency_mhz == 485.0 for c in chain.chips))
    assert chain.voltage_mv == pytest.approx(1201.17, abs=0.01)  # 615 / 512 V: the step at or above 1200
    assert chain.unstable_events == 0  # the rail rose before the clock did, and fell after it


def test_the_board_draws_less_per_hash_at_a_lower_operating_point(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator(j_per_th=21.5)
    driver = make_driver(emulator, regulator_port=emulator.regulator_port)
    driver.send_work(known_answer.work())
    _wait_for(lambda: emulator.board_power().watts > 0)
    stock = emulator.board_power().watts
    assert stock == pytest.approx(21.5 * 100_000 / 1e12)
    assert driver.read_board_watts() == pytest.approx(stock, rel=0.01, abs=1e-5)
    mhz, mv = driver.set_operating_point(250.0, 850.0)
    assert (mhz, mv) == (250.0, pytest.approx(850.0, abs=2))
    assert emulator.chain is not None
    _wait_for(lambda: emulator.chain is not None and emulator.chain.voltage_mv < 900)
    _wait_for(lambda: emulator.board_power().watts < stock * 0.5)
    ratio = BM1366.power_ratio(250.0, emulator.chain.voltage_mv)
    assert emulator.board_power().watts == pytest.approx(stock * ratio, rel=1e-6)
    j_per_th = emulator.board_power().watts / (100_000 * 250 / 485) * 1e12
    assert j_per_th == pytest.approx(15.4, abs=0.1)


def test_an_explicit_voltage_below_the_table_is_written_and_the_chip_goes_unstable(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator, regulator_port=emulator.regulator_port)
    driver.set_operating_point(400.0, 950.0)  # the table asks 1060 mV at 400 MHz
    assert emulator.chain is not None
    _wait_for(lambda: emulator.chain is not None and emulator.chain.unstable_events > 0)


def test_a_regulator_that_refuses_a_voltage_is_a_device_error(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator(vout_range_mv=(1000.0, 1300.0))
    driver = make_driver(emulator, regulator_port=emulator.regulator_port)
    with pytest.raises(DeviceError, match="refused"):
        driver.set_voltage(900.0)


def test_without_a_regulator_the_clock_moves_and_the_voltage_cannot(
    make_emulator: EmulatorFactory, make_driver: DriverFactory
) -> None:
    emulator = make_emulator()
    driver = make_driver(emulator)
    assert driver.voltage_mv is None and driver.read_board_watts() is None
    assert driver.set_frequency(400.0) == 400.0
    with pytest.raises(DeviceError, match="regulator"):
        driver.set_operating_point(400.0, 1060.0)
    assert emulator.chain is not None and emulator.chain.voltage_mv == 1200.0
