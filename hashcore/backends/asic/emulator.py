"""A chain of emulated BM1366 / BM1397 chips behind a pseudo-terminal.

Two layers, as everywhere in hashcore: :class:`~hashcore.backends.asic.emulated_chain.
EmulatedChain` is the chips' behaviour without I/O (frames in, reply values out, nonces
found for a given number of hashes; what a chip does is described there);
:class:`ChainEmulator` serves it on the master side of a pty from one thread, paces the
hashing to a configured rate, encodes replies byte for byte and injects faults
(:mod:`~hashcore.backends.asic.faults`). The driver opens the pty's slave path like any
serial port. The board's core-voltage regulator (:class:`~hashcore.backends.asic.
emulated_regulator.EmulatedRegulator`) answers on a second pty
(:attr:`ChainEmulator.regulator_port`); the chips run at the voltage it sets.

Power: a chip draws ``static + k * f * V**2`` (:meth:`ChipModel.power_ratio`), anchored so
that at the stock clock and voltage the board reports ``j_per_th`` joules per terahash it
really computed; each hash is booked at the joules per hash of the operating point it was
computed at, plus ``idle_watts`` over time. The watts are small because the hashes are few.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import time
from dataclasses import dataclass

from hashcore.backends.asic.chips import chip_model
from hashcore.backends.asic.emulated_chain import EmulatedChain
from hashcore.backends.asic.emulated_regulator import EmulatedRegulator
from hashcore.backends.asic.faults import Faults, inject
from hashcore.backends.asic.framing import HostFrameDecoder, Reply, encode_reply
from hashcore.backends.asic.pmbus import BRIDGE_HOST, BRIDGE_REQUEST_LENGTH
from hashcore.backends.base import Backend, open_backend
from hashcore.backends.reference import ReferenceBackend
from hashcore.errors import BackendUnavailable, ConfigError

log = logging.getLogger("hashcore.backends.asic.emulator")

__all__ = ["BoardPower", "ChainEmulator", "EmulatorConfig"]

#: The most hashing debt carried from one tick to the next when the CPU falls behind.
_MAX_BACKLOG_S = 0.5
_IDLE_TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """An emulated chain.

    Attributes:
        chip: "bm1366" or "bm1397".
        chips: chips on the chain.
        hashrate: hashes per second of the whole chain with every chip at its model's
            default clock; a chip's share scales with the clock its PLL is set to.
        base_difficulty: the difficulty a zero ticket mask stands for (1.0: real chips;
            see the module docstring).
        j_per_th: joules per terahash the board reports.
        idle_watts: power drawn with no job.
        scanner: "auto" hashes BM1366 jobs with the C backend when it opens, else with
            hashlib; "reference" always uses hashlib. BM1397 jobs start from midstates,
            which hashlib cannot, so they use the pure-Python compression (slow).
        tick_s: the serving loop's period.
        seed: seeds the fault injection.
        vout_mv: the regulator's output at power-on (None: the chip's stock voltage).
        vout_range_mv: what the regulator accepts; a VOUT_COMMAND outside it is NACKed.
        link: a path made a symbolic link to the chain's pty, as udev names a board under
            /dev/serial/by-id: it stays the same when the board is unplugged and plugged
            back (:meth:`ChainEmulator.vanish`, :meth:`ChainEmulator.replug`), while the
            pty behind it changes. The regulator's link is ``link + ".regulator"``.
    """

    chip: str = "bm1366"
    chips: int = 1
    hashrate: float = 200_000.0
    base_difficulty: float = 1.0
    j_per_th: float = 21.5
    idle_watts: float = 0.0
    scanner: str = "auto"
    tick_s: float = 0.005
    seed: int = 0
    vout_mv: float | None = None
    vout_range_mv: tuple[float, float] = (700.0, 1400.0)
    link: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.chips <= 256:
            raise ConfigError(f"an emulated chain has 1..256 chips, not {self.chips}")
        if not self.hashrate > 0 or not self.base_difficulty > 0:
            raise ConfigError("emulator hashrate and base difficulty must be positive")


@dataclass(frozen=True, slots=True)
class BoardPower:
    """The board's power report.

    Attributes:
        joules: energy used since the emulator started (cumulative).
        watts: the current draw.
    """

    joules: float
    watts: float


# --- serving it on a pty ---------------------------------------------------------------


def _relink(link: str, target: str) -> str:
    """Point ``link`` at ``target`` in one step (a reader never finds it missing); returns ``link``."""
    temporary = f"{link}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)
    return link


def _open_scanner(kind: str) -> Backend:
    if kind == "auto":
        try:
            return open_backend("c")
        except (BackendUnavailable, ConfigError, ImportError) as exc:
            log.info("emulator hashes with hashlib: the C backend is not available (%s)", exc)
    elif kind != "reference":
        raise ConfigError(f"emulator scanner must be 'auto' or 'reference', not {kind!r}")
    return ReferenceBackend()


class ChainEmulator:
    """An :class:`EmulatedChain` served on a pseudo-terminal by one thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`; :attr:`port` is the
    path to open, :attr:`regulator_port` the core-voltage regulator's (the links of
    ``config.link`` where given). :attr:`faults` may be replaced at any time.
    :meth:`vanish` unplugs the board and :meth:`replug` plugs it back, power-cycled.
    """

    def __init__(self, config: EmulatorConfig | None = None, faults: Faults | None = None):
        self.config = config or EmulatorConfig()
        self.model = chip_model(self.config.chip)
        self.faults = faults or Faults()
        self._rng = random.Random(self.config.seed)
        self._scanner: Backend | None = None
        self.chain: EmulatedChain | None = None
        self.regulator: EmulatedRegulator | None = None
        self._master = -1
        self._slave = -1
        self._reg_master = -1
        self._reg_slave = -1
        self._reg_in = bytearray()
        self._reg_out = bytearray()
        self.port = ""
        self.regulator_port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.lock = threading.Lock()
        self._decoder = HostFrameDecoder()
        self._out = bytearray()
        self._due: list[tuple[float, bytes]] = []
        self._budget: list[float] = []
        self._hashes = 0
        self._joules = 0.0
        self._watts = 0.0
        self._shortfall = 0.0

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> ChainEmulator:
        cfg = self.config
        self._stop.clear()
        self._decoder = HostFrameDecoder()
        self._out.clear()
        self._due.clear()
        self._reg_in.clear()
        self._reg_out.clear()
        self._scanner = _open_scanner(cfg.scanner)
        self.chain = EmulatedChain(self.model, cfg.chips, cfg.base_difficulty, self._scanner)
        chain = self.chain
        vout = cfg.vout_mv if cfg.vout_mv is not None else self.model.stock_mv
        chain.set_voltage(vout)
        self.regulator = EmulatedRegulator(vout, cfg.vout_range_mv, chain.set_voltage, lambda: self._watts)
        self._budget = [0.0] * cfg.chips
        import tty  # POSIX only, like the pseudo-terminal itself

        self._master, self._slave = os.openpty()
        self._reg_master, self._reg_slave = os.openpty()
        # Raw at once: the default line discipline would echo our replies back to us.
        for slave, master in ((self._slave, self._master), (self._reg_slave, self._reg_master)):
            tty.setraw(slave)
            os.set_blocking(master, False)
        self.port = os.ttyname(self._slave)
        self.regulator_port = os.ttyname(self._reg_slave)
        if cfg.link is not None:
            self.port = _relink(cfg.link, self.port)
            self.regulator_port = _relink(cfg.link + ".regulator", self.regulator_port)
        self._thread = threading.Thread(target=self._serve, name=f"asic-emulator {self.port}", daemon=True)
        self._thread.start()
        log.info("emulated %d x %s chain on %s", cfg.chips, self.model.name, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty (the host then sees the device vanish)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._reg_master, self._reg_slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._reg_master = self._reg_slave = -1
        if self.config.link is not None:
            for link in (self.config.link, self.config.link + ".regulator"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
        if self._scanner is not None:
            self._scanner.close()
            self._scanner = None

    def vanish(self) -> None:
        """Unplug the board: the same as :meth:`stop`, named for what a test means by it.
        The pty closes (an open port fails) and ``config.link`` disappears."""
        self.stop()

    def replug(self) -> ChainEmulator:
        """Plug the board back after :meth:`vanish`: new ptys (behind the same
        ``config.link``), chips power-cycled (no address, no registers, no job)."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        """Whether the board is plugged in: started and not stopped since."""
        return self._thread is not None and not self._stop.is_set()

    def __enter__(self) -> ChainEmulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what telemetry and tests read -------------------------------------------------

    def board_power(self) -> BoardPower:
        with self.lock:
            return BoardPower(self._joules, self._watts)

    @property
    def hashes_done(self) -> int:
        """Hashes the chain really computed."""
        with self.lock:
            return self._hashes

    @property
    def shortfall_hashes(self) -> float:
        """Hashes the CPU could not keep up with (dropped from the backlog)."""
        with self.lock:
            return self._shortfall

    @property
    def hashrate_per_chip_mhz(self) -> float:
        """The driver's figure for this chain: hashes per second per chip per MHz."""
        return self.config.hashrate / self.config.chips / self.model.default_mhz

    # --- the serving thread ------------------------------------------------------------

    def _serve(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            # Without a job only frames wake the loop; select sees those at once.
            timeout = self.config.tick_s if self.chain is not None and self.chain.has_job else _IDLE_TICK_S
            if self._due:
                timeout = min(timeout, max(0.0, min(due for due, _ in self._due) - now))
            writers = [fd for fd, out in ((self._master, self._out), (self._reg_master, self._reg_out)) if out]
            try:
                readable, _, _ = select.select([self._master, self._reg_master], writers, [], timeout)
            except (OSError, ValueError):
                return
            with self.lock:
                if self._master in readable and not self._receive():
                    return
                if self._reg_master in readable:
                    self._regulate()
                now = time.monotonic()
                self._hash(now - last)
                last = now
                self._release(now)
            if self._out and not self._send():
                return
            if self._reg_out:
                self._send_regulator()

    def _regulate(self) -> None:
        """Answer each whole bridge request; resynchronise on the preamble after garbage."""
        try:
            self._reg_in += os.read(self._reg_master, 4096)
        except (BlockingIOError, OSError):
            return
        assert self.regulator is not None
        buf = self._reg_in
        while True:
            start = buf.find(bytes((BRIDGE_HOST,)))
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < BRIDGE_REQUEST_LENGTH:
                return
            self._reg_out += self.regulator.handle(bytes(buf[:BRIDGE_REQUEST_LENGTH]))
            del buf[:BRIDGE_REQUEST_LENGTH]

    def _send_regulator(self) -> None:
        try:
            written = os.write(self._reg_master, self._reg_out)
        except (BlockingIOError, OSError):
            return
        del self._reg_out[:written]

    def _receive(self) -> bool:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        assert self.chain is not None
        self.chain.dead = self.faults.dead_chips
        for frame in self._decoder.feed(data):
            for reply in self.chain.handle(frame):
                if self.faults.register_faults:
                    self._out += self._encode_faulty(reply)
                else:
                    self._out += encode_reply(reply, self.model.reply_length)
        return True

    def _send(self) -> bool:
        try:
            written = os.write(self._master, self._out)
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self._out[:written]
        return True

    def _hash(self, dt: float) -> None:
        chain = self.chain
        assert chain is not None
        chain.dead = self.faults.dead_chips
        watts = self.config.idle_watts
        done_total = 0
        joules = self.config.idle_watts * dt
        for chip in chain.chips:
            rate = self.config.hashrate * chain.rate_share(chip)
            if rate <= 0:
                self._budget[chip.position] = 0.0
                continue
            chip_watts = self._stock_chip_watts * chain.power_ratio(chip)
            watts += chip_watts
            budget = self._budget[chip.position] + rate * dt
            cap = rate * _MAX_BACKLOG_S
            if budget > cap:
                self._shortfall += budget - cap
                budget = cap
            replies, done = chain.mine(chip, int(budget))
            self._budget[chip.position] = budget - done
            done_total += done
            joules += chip_watts / rate * done
            due = time.monotonic() + self.faults.late_s
            self._due += [(due, self._encode_faulty(reply)) for reply in replies]
        self._hashes += done_total
        self._joules += joules
        self._watts = watts

    @property
    def _stock_chip_watts(self) -> float:
        """One chip's power at the stock clock and voltage: ``j_per_th`` at its configured rate."""
        return self.config.j_per_th * self.config.hashrate / self.config.chips / 1e12

    def _release(self, now: float) -> None:
        ready = [frame for due, frame in self._due if due <= now]
        if ready:
            self._due = [(due, frame) for due, frame in self._due if due > now]
            self._out += b"".join(ready)

    def _encode_faulty(self, reply: Reply) -> bytes:
        return inject(encode_reply(reply, self.model.reply_length), self.faults, self._rng)
