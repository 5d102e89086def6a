"""The board's emulated core-voltage regulator: a PMBus device (TPS546-like) behind a
serial-to-SMBus bridge, without I/O (request frames in, reply frames out)."""

from __future__ import annotations

from collections.abc import Callable

from hashcore.backends.asic.pmbus import (
    PMBUS_OPERATION,
    PMBUS_READ_IOUT,
    PMBUS_READ_POUT,
    PMBUS_READ_VOUT,
    PMBUS_VOUT_COMMAND,
    PMBUS_VOUT_MODE,
    REGULATOR_ADDRESS,
    STATUS_ACK,
    STATUS_BAD_PEC,
    STATUS_NACK,
    VOUT_MODE_ULINEAR16_MINUS9,
    decode_regulator_request,
    decode_ulinear16,
    encode_linear11,
    encode_regulator_reply,
    encode_ulinear16,
    vout_exponent,
)


class EmulatedRegulator:
    """The board's core-voltage regulator: PMBus word transactions in, replies out.

    It answers at :data:`REGULATOR_ADDRESS` to OPERATION, VOUT_MODE (ULINEAR16, exponent
    -9), VOUT_COMMAND (NACKed outside ``range_mv``), READ_VOUT, READ_IOUT and READ_POUT
    (LINEAR11, from ``watts``); anything else is NACKed, a bad PEC too. A new VOUT goes
    to ``on_vout`` (the chain's rail).
    """

    def __init__(self, vout_mv: float, range_mv: tuple[float, float], on_vout: Callable[[float], None],
                 watts: Callable[[], float]) -> None:
        self._exponent = vout_exponent(VOUT_MODE_ULINEAR16_MINUS9)
        # The output is analog: exact at power-on, a register step after a VOUT_COMMAND;
        # READ_VOUT rounds it to the nearest step.
        self.vout_mv = vout_mv
        self.range_mv = range_mv
        self.operation = 0x80  # on
        self.writes: list[float] = []
        self._on_vout = on_vout
        self._watts = watts

    def handle(self, frame: bytes) -> bytes:
        try:
            request = decode_regulator_request(frame)
        except ValueError:
            return encode_regulator_reply(frame[2] if len(frame) > 2 else 0, STATUS_BAD_PEC)
        address = request.address
        if address != REGULATOR_ADDRESS:
            return encode_regulator_reply(address, STATUS_NACK)
        command = request.command
        if request.write:
            if command == PMBUS_VOUT_COMMAND:
                mv = decode_ulinear16(request.word, self._exponent) * 1000.0
                low, high = self.range_mv
                if not low <= mv <= high:
                    return encode_regulator_reply(address, STATUS_NACK)
                self.vout_mv = mv
                self.writes.append(mv)
                self._on_vout(mv)
            elif command == PMBUS_OPERATION:
                self.operation = request.word & 0xFF
            else:
                return encode_regulator_reply(address, STATUS_NACK)
            return encode_regulator_reply(address, STATUS_ACK, request.word)
        if command == PMBUS_VOUT_MODE:
            word = VOUT_MODE_ULINEAR16_MINUS9
        elif command in (PMBUS_VOUT_COMMAND, PMBUS_READ_VOUT):
            word = encode_ulinear16(self.vout_mv / 1000.0, self._exponent)
        elif command == PMBUS_READ_POUT:
            word = encode_linear11(self._watts())
        elif command == PMBUS_READ_IOUT:
            word = encode_linear11(self._watts() / (self.vout_mv / 1000.0))
        elif command == PMBUS_OPERATION:
            word = self.operation
        else:
            return encode_regulator_reply(address, STATUS_NACK)
        return encode_regulator_reply(address, STATUS_ACK, word)
