"""The serial link to one chain: the port, a reader thread decoding replies, frame
writes, register reads, the baud switch and the reset line.

The reader hands each nonce reply to the driver's ``on_nonce`` and offers each register
reply to its ``claim_register`` (census answers are the driver's), under the driver's
state lock; every register reply not claimed waits for a register read. The first
failure (the port vanished, a write failed) is kept: every later call raises it, and
``on_failure`` wakes whoever waits for nonces.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from hashcore.backends.asic.chips import BASE_BAUD
from hashcore.backends.asic.framing import DecoderStats, NonceReply, RegisterReply, ReplyDecoder, encode_command
from hashcore.backends.asic.framing import read_register as read_register_command
from hashcore.backends.asic.framing import write_register as write_register_command
from hashcore.errors import ConfigError, DeviceError

log = logging.getLogger("hashcore.backends.asic.driver")

SerialOpener = Callable[..., Any]

#: Raw bytes kept to tell which chip model answered when nothing decoded.
_RAW_TAIL = 512


class SerialLink:
    """One chain's serial port. See the module docstring.

    Args:
        port: what ``open_serial`` opens (a tty, a pty, ``loop://``, ``spy://``).
        reply_length: the chip model's reply frame length.
        open_serial: pyserial's ``serial_for_url`` or a stand-in.
        read_timeout_s: the reader thread's serial read timeout.
        lock: the driver's state lock, held while replies are handed over, so a job
            table cleared under it never sees a reply of its old jobs afterwards.
        on_nonce: takes each nonce reply.
        claim_register: True when it took a register reply, False to leave it to reads.
        on_failure: called after the link failed, to wake waiters.
    """

    def __init__(
        self,
        port: str,
        reply_length: int,
        *,
        open_serial: SerialOpener,
        read_timeout_s: float,
        lock: threading.Lock,
        on_nonce: Callable[[NonceReply], None],
        claim_register: Callable[[RegisterReply], bool],
        on_failure: Callable[[], None],
    ) -> None:
        self.port = port
        self._open_serial = open_serial
        self._read_timeout_s = read_timeout_s
        self._lock = lock
        self._on_nonce = on_nonce
        self._claim_register = claim_register
        self._on_failure = on_failure
        self._serial: Any = None
        self._decoder = ReplyDecoder(reply_length)
        self._write_lock = threading.Lock()
        self._registers: queue.Queue[RegisterReply] = queue.Queue()
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._failure: DeviceError | None = None
        self._closed = False
        self._raw_tail = b""

    # --- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the port at the chips' start speed; DeviceError when it cannot be opened,
        or when :meth:`close` ran while it opened (the port is then closed again)."""
        try:
            self._serial = self._open_serial(
                self.port, baudrate=BASE_BAUD, timeout=self._read_timeout_s, write_timeout=2.0
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open ASIC port {self.port}: {exc}") from exc
        if self._closed:
            # close() ran while the port was opening: it must not stay open behind it.
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            raise DeviceError(f"ASIC port {self.port} was closed while it opened")

    def start_reader(self) -> None:
        """Drop what the port holds and start the reader thread."""
        self._serial.reset_input_buffer()
        self._reader = threading.Thread(target=self._read_loop, name=f"asic-reader {self.port}", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Stop the reader thread and free the port. Safe to call twice."""
        self._closed = True
        self._stopping.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_closed(self, seconds: float) -> None:
        """Pause ``seconds``, or less when :meth:`close` runs meanwhile."""
        self._stopping.wait(seconds)

    @property
    def failure(self) -> DeviceError | None:
        return self._failure

    def fail(self, error: DeviceError) -> None:
        """Keep the first failure and wake whoever waits."""
        if self._failure is None:
            self._failure = error
            log.error("%s", error)
        self._on_failure()

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise DeviceError(f"ASIC port {self.port} is closed")

    # --- the reader thread -------------------------------------------------------------

    def _read_loop(self) -> None:
        ser = self._serial
        try:
            while not self._stopping.is_set():
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    self._on_bytes(data)
        except (serial.SerialException, OSError) as exc:
            if not self._stopping.is_set():
                self.fail(DeviceError(f"ASIC port {self.port} vanished or failed: {exc}"))

    def _on_bytes(self, data: bytes) -> None:
        with self._lock:
            self._raw_tail = (self._raw_tail + data)[-_RAW_TAIL:]
            for reply in self._decoder.feed(data):
                if isinstance(reply, NonceReply):
                    self._on_nonce(reply)
                elif not self._claim_register(reply):
                    self._registers.put(reply)

    def raw_tail(self) -> bytes:
        """The last bytes received, decoded or not."""
        with self._lock:
            return self._raw_tail

    @property
    def decoder_stats(self) -> DecoderStats:
        """The reply decoder's counters (read under the driver's state lock)."""
        return self._decoder.stats

    # --- writes and register reads -----------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        """Write one encoded frame."""
        self.raise_if_failed()
        with self._write_lock:
            try:
                self._serial.write(frame)
            except (serial.SerialException, OSError) as exc:
                error = DeviceError(f"writing to ASIC port {self.port} failed: {exc}")
                self.fail(error)
                raise error from exc

    def write_register(self, register: int, value: int, chip_addr: int | None = None) -> None:
        self.send_frame(encode_command(write_register_command(register, value, chip_addr)))

    def read_register(self, register: int, chip_addr: int | None = None, *, silence_s: float) -> list[RegisterReply]:
        """Read a register; collects replies until ``silence_s`` passes without one."""
        while not self._registers.empty():
            self._registers.get_nowait()
        self.send_frame(encode_command(read_register_command(register, chip_addr)))
        replies: list[RegisterReply] = []
        deadline = time.monotonic() + silence_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = self._registers.get(timeout=remaining)
            except queue.Empty:
                break
            if reply.register == register and (chip_addr is None or reply.chip_addr == chip_addr):
                replies.append(reply)
                deadline = time.monotonic() + silence_s
        self.raise_if_failed()
        return replies

    # --- line settings -----------------------------------------------------------------

    @property
    def baud(self) -> int:
        """The host's current baud rate (0 before the port is open)."""
        return int(self._serial.baudrate) if self._serial is not None else 0

    def switch_baud(self, baud: int) -> None:
        """Move the host side to ``baud`` once what was written has gone out."""
        try:
            self._serial.flush()
            self._serial.baudrate = baud
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot switch {self.port} to {baud} baud: {exc}") from exc

    def pulse_reset(self, line: str | None, hold_s: float) -> None:
        """Hold the chain in reset on ``line`` ("dtr" or "rts") for ``hold_s``, then wait
        as long again; nothing when the adapter has no reset line (None)."""
        if line is None:
            return
        if line not in ("dtr", "rts"):
            raise ConfigError(f"reset line must be 'dtr' or 'rts', got {line!r}")
        # Asserting DTR#/RTS# drives the pin low on a TTL adapter: that is the reset.
        setattr(self._serial, line, True)
        time.sleep(hold_s)
        setattr(self._serial, line, False)
        time.sleep(hold_s)
