"""The board's core-voltage regulator: PMBus word transactions through a serial-to-SMBus
bridge on a second port (see :mod:`~hashcore.backends.asic.chips` for the encodings).

Voltages are ULINEAR16 with the exponent the regulator's VOUT_MODE gives, read once at
open; output power is LINEAR11. Every failure is a DeviceError naming the port.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import serial

from hashcore.backends.asic.chips import BASE_BAUD
from hashcore.backends.asic.link import SerialOpener
from hashcore.backends.asic.pmbus import (
    BRIDGE_REPLY_LENGTH,
    PMBUS_READ_POUT,
    PMBUS_READ_VOUT,
    PMBUS_VOUT_COMMAND,
    PMBUS_VOUT_MODE,
    STATUS_ACK,
    RegulatorRequest,
    decode_linear11,
    decode_regulator_reply,
    decode_ulinear16,
    encode_regulator_request,
    encode_ulinear16,
    vout_exponent,
)
from hashcore.errors import DeviceError

log = logging.getLogger("hashcore.backends.asic.driver")


class CoreRegulator:
    """One PMBus regulator behind a bridge on ``port`` at SMBus ``address``."""

    def __init__(self, port: str, address: int, timeout_s: float, open_serial: SerialOpener) -> None:
        self.port = port
        self.address = address
        self._timeout_s = timeout_s
        self._open_serial = open_serial
        self._serial: Any = None
        self._lock = threading.Lock()
        #: VOUT_MODE's exponent; until it is read, the common -9 (about 2 mV steps).
        self.vout_exponent = -9

    def open(self) -> float:
        """Open the bridge, read VOUT_MODE; returns the output voltage (mV)."""
        try:
            self._serial = self._open_serial(self.port, baudrate=BASE_BAUD, timeout=self._timeout_s,
                                             write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open the core-voltage regulator port {self.port}: {exc}") from exc
        try:
            self.vout_exponent = vout_exponent(self._read(PMBUS_VOUT_MODE) & 0xFF)
        except ValueError as exc:
            raise DeviceError(f"regulator on {self.port}: {exc}") from exc
        voltage_mv = self.read_voltage()
        log.info("%s: core voltage %.0f mV", self.port, voltage_mv)
        return voltage_mv

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()

    @property
    def step_mv(self) -> float:
        """One step of the VOUT register, mV."""
        return 2.0**self.vout_exponent * 1000.0

    def set_voltage(self, mv: float) -> float:
        """Write VOUT_COMMAND for ``mv`` (rounded up: the rail must not come out below what
        the chips need) and read the voltage back, mV."""
        try:
            word = encode_ulinear16(mv / 1000.0, self.vout_exponent, round_up=True)
        except ValueError as exc:
            raise DeviceError(f"core voltage {mv} mV: {exc}") from exc
        self._transaction(RegulatorRequest(True, self.address, PMBUS_VOUT_COMMAND, word))
        return self.read_voltage()

    def read_voltage(self) -> float:
        """The output voltage (READ_VOUT), mV."""
        return decode_ulinear16(self._read(PMBUS_READ_VOUT), self.vout_exponent) * 1000.0

    def read_watts(self) -> float:
        """The output power (READ_POUT), W."""
        return decode_linear11(self._read(PMBUS_READ_POUT))

    def _read(self, command: int) -> int:
        return self._transaction(RegulatorRequest(False, self.address, command))

    def _transaction(self, request: RegulatorRequest) -> int:
        port = self.port
        with self._lock:
            try:
                self._serial.reset_input_buffer()
                self._serial.write(encode_regulator_request(request))
                frame = bytes(self._serial.read(BRIDGE_REPLY_LENGTH))
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(f"core-voltage regulator on {port} failed: {exc}") from exc
        if len(frame) < BRIDGE_REPLY_LENGTH:
            raise DeviceError(f"core-voltage regulator on {port} did not answer command {request.command:#04x}")
        try:
            status, word = decode_regulator_reply(frame, request.address)
        except ValueError as exc:
            raise DeviceError(f"core-voltage regulator on {port}: {exc}") from exc
        if status != STATUS_ACK:
            raise DeviceError(f"core-voltage regulator on {port} refused command {request.command:#04x} "
                              f"(status {status})")
        return word
