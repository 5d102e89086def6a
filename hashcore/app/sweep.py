"""``hashcore bench --sweep``: a device's efficiency curve, one operating point at a time.

Each knob is used where it can be written, and where it cannot the sweep says why and
measures the one point the device runs at (throttling then falls back to duty):

- **CPU** backends: cpufreq's ``scaling_max_freq`` on every policy, from the lowest
  available frequency to the highest, restored afterwards. It needs a cpufreq driver
  and root; a VM usually has neither.
- **GPU** (``opencl``): NVML locked graphics clocks over the clocks the GPU supports,
  reset afterwards. It needs an NVIDIA GPU and the permission to lock clocks.
- **ASIC** (``asic``): the chip's PLL (register 0x08) and the board's core voltage
  (PMBus VOUT_COMMAND) along the chip's V/f table, through the driver. On the built-in
  emulator (``--asic-port emulator``) the board's regulator is reachable and the energy
  is the board's report; on a real port without a regulator only the clock moves.

Every point is measured like ``hashcore bench``: hashes over a fixed interval and the
energy of the same interval from the backend's meter, whose source each point names.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashcore.backends.asic.backend import EMULATOR_BASE_DIFFICULTY, AsicBackend, open_asic
from hashcore.backends.asic.chips import chip_model
from hashcore.backends.asic.driver import AsicDriver, DriverConfig
from hashcore.backends.asic.emulator import ChainEmulator, EmulatorConfig
from hashcore.backends.base import resolve_names
from hashcore.bench import bench, measure
from hashcore.errors import ConfigError, HashcoreError, TelemetryError
from hashcore.metering import EnergyLedger, MeterSettings
from hashcore.report.plots import curve_png
from hashcore.telemetry.nvml import Nvml

log = logging.getLogger("hashcore.sweep")

CPUFREQ_ROOT = "/sys/devices/system/cpu/cpufreq"


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One measured operating point (what ``bench --sweep --json`` lists).

    Attributes:
        backend: the backend measured.
        knob: what set the point (``cpufreq``, ``nvml-locked-clocks``, ``asic-pll+vout``,
            ``asic-pll``) or ``none`` where nothing could be set.
        freq_mhz: the clock the device ran at (measured where it can be read).
        voltage_mv: the core voltage, where known.
        hashrate_hs / watts / j_per_th: measured.
        energy_source: the meter's source (rapl, nvml, asic, estimate).
        seconds: how long it was measured.
    """

    backend: str
    knob: str
    freq_mhz: float | None
    voltage_mv: float | None
    hashrate_hs: float
    watts: float
    j_per_th: float | None
    energy_source: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "knob": self.knob, "freq_mhz": self.freq_mhz,
                "voltage_mv": self.voltage_mv, "hashrate_hs": self.hashrate_hs, "watts": self.watts,
                "j_per_th": self.j_per_th, "energy_source": self.energy_source, "seconds": self.seconds}


@dataclass(slots=True)
class SweepReport:
    """The points of one sweep and what could not be swept, and why."""

    backend: str
    points: list[SweepPoint]
    notes: list[str] = field(default_factory=list)
    plot: str | None = None

    def to_json(self) -> list[dict[str, Any]]:
        """The ``--json`` list: one object per operating point."""
        return [p.to_json() for p in self.points]

    def summary_lines(self) -> list[str]:
        lines = [f"{self.backend}: {len(self.points)} operating point(s)"]
        for p in self.points:
            freq = "-" if p.freq_mhz is None else f"{p.freq_mhz:,.1f} MHz"
            volts = "" if p.voltage_mv is None else f" at {p.voltage_mv:,.0f} mV"
            jth = "-" if p.j_per_th is None else f"{p.j_per_th:,.4g} J/TH"
            lines.append(f"  {freq}{volts}: {p.hashrate_hs:,.4g} H/s, {p.watts:,.4g} W, {jth} ({p.energy_source}, "
                         f"{p.knob})")
        lines += [f"note: {n}" for n in self.notes]
        if self.plot:
            lines.append(f"curve plotted to {self.plot}")
        return lines


#: What a point measurement returns: hashes per second, watts, the meter's source.
Measurement = tuple[float, float, str]
Measure = Callable[[float], Measurement]


def _j_per_th(hashrate: float, watts: float) -> float | None:
    return watts / hashrate * 1e12 if hashrate > 0 else None


# --- CPU through cpufreq ---------------------------------------------------------------


def cpufreq_policies(root: str = CPUFREQ_ROOT) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(os.path.join(root, "policy*")) if Path(p, "scaling_max_freq").exists())


def cpufreq_writable(policies: Sequence[Path]) -> str | None:
    """Why ``scaling_max_freq`` cannot be written (None: it can), tried by writing back
    its own value.

    A file whose mode has no write bit is refused before any write: sysfs marks an
    attribute the driver offers no store for read-only, and root's write to such a file
    in another file system (a copy, a test tree) would succeed and mean nothing."""
    if not policies:
        return "no cpufreq policy here (no cpufreq driver, as in most VMs): the CPU clock cannot be set"
    for policy in policies:
        path = policy / "scaling_max_freq"
        try:
            if not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                return f"{path} is read-only (mode {stat.filemode(path.stat().st_mode)}): the CPU clock cannot be set"
            path.write_text(path.read_text().strip())
        except OSError as exc:
            return f"{path} is not writable ({exc.strerror or exc}): the CPU clock cannot be set"
    return None


def _read_khz(path: Path) -> int:
    return int(path.read_text().split()[0])


def cpu_frequencies(policy: Path, steps: int = 8) -> list[int]:
    """The frequencies (kHz) to sweep: the policy's available ones, else ``steps`` from
    its minimum to its maximum."""
    available = policy / "scaling_available_frequencies"
    if available.exists():
        values = sorted({int(v) for v in available.read_text().split()})
        if values:
            return values
    low, high = _read_khz(policy / "cpuinfo_min_freq"), _read_khz(policy / "cpuinfo_max_freq")
    return sorted({round(low + (high - low) * i / (steps - 1)) for i in range(steps)})


@contextlib.contextmanager
def _restored_max_freq(policies: Sequence[Path]) -> Iterator[None]:
    saved = {p: (p / "scaling_max_freq").read_text().strip() for p in policies}
    try:
        yield
    finally:
        for policy, value in saved.items():
            with contextlib.suppress(OSError):
                (policy / "scaling_max_freq").write_text(value)


def current_cpu_mhz(policies: Sequence[Path] = ()) -> float | None:
    """The CPUs' mean clock: cpufreq's ``scaling_cur_freq``, else /proc/cpuinfo."""
    readings = []
    for policy in policies:
        with contextlib.suppress(OSError, ValueError, IndexError):
            readings.append(_read_khz(policy / "scaling_cur_freq") / 1000.0)
    if readings:
        return sum(readings) / len(readings)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    values = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    return sum(values) / len(values) if values else None


def sweep_cpu(backend: str, measure: Measure, seconds: float, root: str = CPUFREQ_ROOT) -> SweepReport:
    policies = cpufreq_policies(root)
    reason = cpufreq_writable(policies)
    report = SweepReport(backend, [])
    if reason is not None:
        report.notes.append(f"{reason}; measured the one point it runs at, and throttling uses duty cycling")
        rate, watts, source = measure(seconds)
        report.points.append(SweepPoint(backend, "none", current_cpu_mhz(policies), None, rate, watts,
                                        _j_per_th(rate, watts), source, seconds))
        return report
    with _restored_max_freq(policies):
        for khz in cpu_frequencies(policies[0]):
            for policy in policies:
                (policy / "scaling_max_freq").write_text(str(khz))
            rate, watts, source = measure(seconds)
            mhz = current_cpu_mhz(policies) or khz / 1000.0
            report.points.append(SweepPoint(backend, "cpufreq", mhz, None, rate, watts, _j_per_th(rate, watts),
                                            source, seconds))
    report.notes.append("core voltages are the CPU's own choice (cpufreq does not report them)")
    return report


# --- GPU through NVML ------------------------------------------------------------------


def sweep_gpu(backend: str, measure: Measure, seconds: float, *, device: int = 0, lib: Any = None,
              steps: int = 8) -> SweepReport:
    """Lock the GPU's graphics clock at ``steps`` of its supported clocks in turn."""
    report = SweepReport(backend, [])
    try:
        nvml = Nvml(lib)
        nvml.init()
    except TelemetryError as exc:
        report.notes.append(f"no NVIDIA GPU reachable through NVML ({exc}): the GPU clock cannot be set; "
                            "measured the one point it runs at, and throttling uses duty cycling")
        rate, watts, source = measure(seconds)
        report.points.append(SweepPoint(backend, "none", None, None, rate, watts, _j_per_th(rate, watts), source,
                                        seconds))
        return report
    try:
        handle = nvml.handle(device)
        clocks = _supported_graphics_clocks(nvml, handle)
        chosen = [clocks[round(i * (len(clocks) - 1) / max(steps - 1, 1))] for i in range(min(steps, len(clocks)))]
        locked = False
        try:
            for mhz in sorted(set(chosen)):
                try:
                    nvml.lib.nvmlDeviceSetGpuLockedClocks(handle, mhz, mhz)
                except nvml.lib.NVMLError as exc:
                    reason = nvml.error("lock clocks", exc)
                    report.notes.append(f"{reason}: the GPU clock cannot be set; measured the one point it runs at, "
                                        "and throttling uses duty cycling (or the power limit, where permitted)")
                    break
                locked = True
                rate, watts, source = measure(seconds)
                report.points.append(SweepPoint(backend, "nvml-locked-clocks", float(mhz), None, rate, watts,
                                                _j_per_th(rate, watts), source, seconds))
        finally:
            if locked:
                with contextlib.suppress(Exception):
                    nvml.lib.nvmlDeviceResetGpuLockedClocks(handle)
        if not report.points:
            rate, watts, source = measure(seconds)
            report.points.append(SweepPoint(backend, "none", None, None, rate, watts, _j_per_th(rate, watts),
                                            source, seconds))
    finally:
        with contextlib.suppress(TelemetryError):
            nvml.shutdown()
    return report


def _supported_graphics_clocks(nvml: Any, handle: Any) -> list[int]:
    lib = nvml.lib
    try:
        memory = max(int(m) for m in lib.nvmlDeviceGetSupportedMemoryClocks(handle))
        clocks = sorted({int(c) for c in lib.nvmlDeviceGetSupportedGraphicsClocks(handle, memory)})
    except lib.NVMLError as exc:
        raise nvml.error("supported clocks", exc) from exc
    if not clocks:
        raise TelemetryError("NVML lists no graphics clocks for this GPU")
    return clocks


# --- ASIC through the PLL and the core voltage -----------------------------------------


def sweep_asic(backend_factory: Callable[[], Any], frequencies: Sequence[float] | None, seconds: float,
               measure: Callable[[Any, float], Measurement]) -> SweepReport:
    """Step an open ASIC backend through ``frequencies`` (default: its chip's V/f rows up
    to stock), setting the clock and, where the regulator is reachable, the voltage."""
    backend = backend_factory()
    report = SweepReport("asic", [])
    try:
        driver = backend.driver
        chip = driver.chip
        if frequencies is None:
            rows = chip.vf.rows if chip.vf is not None else ((chip.default_mhz, chip.stock_mv),)
            frequencies = [f for f, _ in rows if f <= chip.default_mhz]
        has_regulator = driver.voltage_mv is not None
        if not has_regulator:
            report.notes.append("the board's core-voltage regulator is not reachable: only the clock moves "
                                "(voltage_mv unknown)")
        for mhz in sorted(frequencies):
            mv = chip.voltage_for(chip.encode_pll(mhz).mhz) if has_regulator else None
            reached, volts = driver.set_operating_point(mhz, mv)
            rate, watts, source = measure(backend, seconds)
            report.points.append(SweepPoint("asic", "asic-pll+vout" if has_regulator else "asic-pll", reached,
                                            volts, rate, watts, _j_per_th(rate, watts), source, seconds))
        driver.set_operating_point(chip.default_mhz, chip.voltage_for(chip.default_mhz) if has_regulator else None)
    finally:
        backend.close()
    return report


def emulated_asic(chip: str = "bm1366", hashrate: float = 200_000.0, j_per_th: float = 21.5) -> Any:
    """An ASIC backend on the built-in emulator with its regulator wired to the driver."""
    model = chip_model(chip)
    emulator = ChainEmulator(EmulatorConfig(chip=model.name, hashrate=hashrate, j_per_th=j_per_th,
                                            base_difficulty=EMULATOR_BASE_DIFFICULTY)).start()
    config = DriverConfig(ramp_delay_s=0.0, detect_silence_s=0.25, census_interval_s=3600.0, census_window_s=0.5,
                          hashrate_per_chip_mhz=emulator.hashrate_per_chip_mhz,
                          base_difficulty=EMULATOR_BASE_DIFFICULTY, regulator_port=emulator.regulator_port)
    driver = AsicDriver(emulator.port, model, config)
    try:
        driver.open()
    except HashcoreError:
        emulator.stop()
        raise
    return AsicBackend(driver, emulator=emulator)


def measure_backend(backend: Any, seconds: float) -> Measurement:
    """Hash with an open backend for ``seconds``; its rate, and the power its meter saw.

    On the emulator the board's own report is read (float joules, and the hashes the
    chain really computed): its watts are microwatts, below the meter's resolution.
    """
    emulator = backend.emulator if isinstance(backend, AsicBackend) else None
    if emulator is not None:
        joules, hashes = emulator.board_power().joules, emulator.hashes_done
        _, elapsed = measure([backend], seconds)
        done = emulator.hashes_done - hashes
        return done / elapsed, (emulator.board_power().joules - joules) / elapsed, "asic-board (emulated)"
    ledger = EnergyLedger({"asic": backend})
    try:
        ledger.start()
        hashes, elapsed = measure([backend], seconds)
        energy = ledger.report({"asic": hashes})[0]["asic"]
    finally:
        ledger.close()
    return hashes / elapsed, energy.joules / elapsed, energy.source


# --- the runner ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepOptions:
    """What ``hashcore bench --sweep`` measures.

    Attributes:
        backend: the backend (``auto``: the fastest).
        sweep_mhz: ASIC: the clocks to sweep, comma-separated (None: the chip's V/f table).
        sweep_seconds: measurement per point.
        sweep_plot: a PNG of hashrate and J/TH against the clock (None: none).
        asic_port / asic_chip: the ASIC's serial port (or ``emulator``) and chip.
        threads: CPU and GPU points: worker threads.
        powercap_root / tdp_watts_per_core: the meter's settings.
    """

    backend: str | None = "auto"
    sweep_mhz: str | None = None
    sweep_seconds: float = 1.0
    sweep_plot: str | None = None
    asic_port: str | None = None
    asic_chip: str | None = None
    threads: int | None = None
    powercap_root: str | None = None
    tdp_watts_per_core: float | None = None


def _frequencies(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--sweep-mhz {text!r} is not a list of numbers") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise ConfigError("--sweep-mhz needs positive frequencies")
    return values


def run_sweep(options: SweepOptions) -> SweepReport:
    """The sweep ``hashcore bench --sweep`` asks for (see the module docstring)."""
    seconds = float(options.sweep_seconds)
    if not seconds > 0:
        raise ConfigError("--sweep-seconds must be positive")
    name = resolve_names([options.backend or "auto"])[0]
    if name == "asic":
        port = options.asic_port
        chip = options.asic_chip or "bm1366"
        if not port:
            raise ConfigError("an ASIC sweep needs --asic-port (a serial device, or 'emulator')")
        if port == "emulator":
            report = sweep_asic(lambda: emulated_asic(chip), _frequencies(options.sweep_mhz), seconds,
                                measure_backend)
            report.notes.append("emulated chain: the hashrate and watts are the emulator's (its CPU-hashed rate), "
                                "the J/TH is the chip model's")
        else:
            report = sweep_asic(lambda: open_asic(port=port, chip=chip), _frequencies(options.sweep_mhz), seconds,
                                measure_backend)
    else:
        point = _bench_measure(name, options)
        report = sweep_gpu(name, point, seconds) if name == "opencl" else sweep_cpu(name, point, seconds)
    if options.sweep_plot:
        try:
            Path(options.sweep_plot).write_bytes(curve_png(report.to_json(), f"{name}: operating points"))
        except OSError as exc:
            raise ConfigError(f"cannot write {options.sweep_plot}: {exc.strerror or exc}") from exc
        report.plot = options.sweep_plot
    return report


def _bench_measure(name: str, options: SweepOptions) -> Measure:
    threads = int(options.threads or 1)
    settings = MeterSettings(options.powercap_root, options.tdp_watts_per_core)

    def measure(seconds: float) -> Measurement:
        began = time.perf_counter()
        report = bench(name, seconds, threads, baseline=False, meter_settings=settings)
        log.debug("bench of %s took %.1f s", name, time.perf_counter() - began)
        return report.hashrate_hs, report.watts, report.energy_source

    return measure
