"""The ``opencl`` backend: one object driving every selected device, its factory, its
probe for ``hashcore devices``, its measured rate for ``auto``, and its registration.

A scan splits its range between devices in proportion to their tuned rates, runs them
at once, re-checks every nonce found with hashlib and merges the results in nonce order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hashcore.backends import backendrank, tuning
from hashcore.backends.base import BackendInfo, EnergyKind, ScanResult, check_range, register
from hashcore.backends.opencl.devices import DeviceRef, list_devices, load_pyopencl, select_devices
from hashcore.backends.opencl.runner import DeviceRunner
from hashcore.backends.opencl.settings import CHOICES, WIDTHS, Settings, cached_settings, launch_nonces, tune_file
from hashcore.backends.opencl.source import default_kernel_dir, load_source
from hashcore.backends.opencl.tune import auto_paths, known_choice, prepare_device
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import Work, verify_nonce

log = logging.getLogger("hashcore.backends.opencl")


class OpenCLBackend:
    """SHA-256d on one or more OpenCL devices; safe to share between threads (scans of
    one backend run one at a time: the devices are its to keep busy).

    Attributes:
        devices: the devices driven, in the order their shares of a range go.
        settings: per device, how it runs (path, widths, sizes, tuned rate).
        path: the code path(s), for reports (``x86sha``, ``portable``, or both).
        energy_kind: ``gpu`` where the devices are GPUs (each gets its own meter), else
            ``cpu`` (PoCL runs on the CPU cores the CPU meter measures).
    """

    name = "opencl"
    releases_gil = True

    def __init__(self, devices: list[DeviceRunner], settings: list[Settings]) -> None:
        self._devices = devices
        self.devices = [d.ref for d in devices]
        self.settings = settings
        self.path = "+".join(sorted({s.path for s in settings}))
        self.energy_kind: EnergyKind = "gpu" if all(ref.kind == "GPU" for ref in self.devices) else "cpu"
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(len(devices), "hashcore-opencl") if len(devices) > 1 else None
        self.rejected = 0  # nonces a device reported that hashlib did not confirm

    def energy_options(self) -> dict[str, Any]:
        """The GPU for NVML: the first device's PCI bus id (NVIDIA), where known."""
        for ref in self.devices:
            if ref.kind == "GPU" and ref.pci_bus_id is not None:
                return {"gpu": ref.pci_bus_id}
        return {}

    def _shares(self, start: int, count: int) -> list[tuple[int, int]]:
        """Consecutive parts of the range, one per device, in proportion to their rates."""
        rates = [max(s.rate_hs, 1.0) for s in self.settings]
        total = sum(rates)
        shares, at = [], start
        for i, rate in enumerate(rates):
            size = start + count - at if i == len(rates) - 1 else int(count * rate / total)
            shares.append((at, size))
            at += size
        return shares

    def _verified(self, work: Work, nonces: list[int], ref: DeviceRef) -> list[int]:
        good = []
        for nonce in nonces:
            if verify_nonce(work, nonce).value <= work.target:
                good.append(nonce)
            else:
                self.rejected += 1
                log.warning("OpenCL device %s reported nonce %d, which does not meet the target", ref.id, nonce)
        return good

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        if count == 0:
            return ScanResult([], 0)
        shares = self._shares(nonce_start, count)
        with self._lock:
            try:
                if self._pool is None:
                    parts = [self._devices[0].scan(work, nonce_start, count, max_results, self.settings[0])]
                else:
                    runs = zip(self._devices, self.settings, shares, strict=True)
                    futures = [self._pool.submit(dev.scan, work, s, c, max_results, st) for dev, st, (s, c) in runs]
                    parts = [f.result() for f in futures]
            except self._cl_error() as exc:
                raise BackendError(
                    f"OpenCL backend: a device failed mid-scan ({exc}); the device may be lost or reset; "
                    "fix: check the driver (dmesg, clinfo) and restart hashcore"
                ) from exc
            # Shares in range order: complete up to the first one that stopped early.
            found: list[int] = []
            for dev, (share_start, size), (nonces, done) in zip(self._devices, shares, parts, strict=True):
                found.extend(self._verified(work, nonces, dev.ref))
                if len(found) >= max_results:
                    found = found[:max_results]
                    return ScanResult(found, found[-1] + 1 - nonce_start)
                if done < size:  # stopped at its own max_results, some of which hashlib refused
                    return ScanResult(found, share_start + done - nonce_start)
            return ScanResult(found, count)

    def _cl_error(self) -> type[Exception]:
        return self._devices[0].cl.Error

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for dev in self._devices:
            dev.close()

    def __repr__(self) -> str:
        devices = ", ".join(f"{ref.id}: {s.describe()}" for ref, s in zip(self.devices, self.settings, strict=True))
        return f"OpenCLBackend({devices})"


def _option_int(name: str, value: Any, allowed: Sequence[int] | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"OpenCL {name} must be a positive integer, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ConfigError(f"OpenCL {name} must be one of {', '.join(map(str, allowed))}, got {value}")
    return value


def open_opencl(
    *,
    device: str = "auto",
    path: str = "auto",
    tune: bool = True,
    width: int | None = None,
    nonces_per_item: int | None = None,
    local_size: int | None = None,
    launch_seconds: float = tuning.OPENCL_LAUNCH_SECONDS,
    build_options: Sequence[str] = (),
    kernel_dir: str | None = None,
    **_options: Any,
) -> OpenCLBackend:
    """Open the OpenCL backend.

    Args:
        device: auto (every GPU, else the first CPU device), all, or ``P:D`` ids
            separated by commas (``hashcore devices`` lists them).
        path: auto (the faster of x86sha and portable where both run, measured once;
            else portable), portable or x86sha.
        tune: time the settings grid once per device and driver (cached on disk);
            False uses the defaults of ``tuning``.
        width / nonces_per_item / local_size: fix a setting (the tune then leaves it
            alone); width is vector lanes (portable) or nonces in flight (x86sha).
        launch_seconds: target duration of one kernel launch.
        build_options: extra options for the OpenCL compiler (``-D...``).
        kernel_dir: a directory holding the kernels instead of the installed ones.
    """
    if path not in CHOICES:
        raise ConfigError(f"unknown OpenCL code path {path!r} (choose from {', '.join(CHOICES)})")
    width = _option_int("width", width, sorted(set(WIDTHS["portable"]) | set(WIDTHS["x86sha"])))
    per_item = _option_int("nonces_per_item", nonces_per_item)
    local = _option_int("local_size", local_size)
    if not isinstance(launch_seconds, (int, float)) or not 0 < launch_seconds <= 10:
        raise ConfigError(f"OpenCL launch_seconds must be between 0 and 10, got {launch_seconds!r}")
    if isinstance(build_options, str) or not all(isinstance(o, str) for o in build_options):
        raise ConfigError("OpenCL build_options must be a list of strings")
    import numpy as np

    cl = load_pyopencl()
    source = load_source(Path(kernel_dir) if kernel_dir else default_kernel_dir())
    chosen = select_devices(device, list_devices())
    fixed = {k: v for k, v in (("width", width), ("nonces_per_item", per_item), ("local_size", local)) if v is not None}
    devices: list[DeviceRunner] = []
    settings: list[Settings] = []
    try:
        for ref, handle in chosen:
            dev = DeviceRunner(cl, np, ref, handle, source, build_options)
            devices.append(dev)
            settings.append(prepare_device(dev, path, tune, fixed, launch_seconds))
    except BaseException:
        for dev in devices:
            dev.close()
        raise
    backend = OpenCLBackend(devices, settings)
    log.info("OpenCL backend ready: %r", backend)
    return backend


def backend_rate() -> backendrank.BackendRate:
    """OpenCL with its defaults (the devices auto selects): from the caches where they
    hold, else opened, tuned and measured once."""
    entries = [ref for ref, _ in select_devices("auto", list_devices())]
    source = load_source(default_kernel_dir())
    known = _known_rates(entries, source)
    if known is None:
        backend = open_opencl()  # builds, tunes and measures what the caches lack
        backend.close()
        known = _known_rates(entries, source) or [
            (ref, s.path, s.rate_hs, 0.0) for ref, s in zip(backend.devices, backend.settings, strict=True)
        ]
    total = sum(rate for _, _, rate, _ in known)
    paths = "+".join(sorted({path for _, path, _, _ in known}))
    sticks = [stick for _, _, _, stick in known]
    stick = min(sticks) if all(sticks) else 0.0
    cpu_cores = sum(ref.compute_units for ref, _, _, _ in known if ref.kind == "CPU")
    if all(ref.kind == "CPU" for ref, _, _, _ in known):
        return backendrank.BackendRate("opencl", paths, total / max(cpu_cores, 1), total,
                                      f"measured on {cpu_cores} cores", stick)  # fmt: skip
    return backendrank.BackendRate("opencl", paths, None, total, f"measured on {len(known)} device(s)", stick)


def _known_rates(refs: list[DeviceRef], source: str) -> list[tuple[DeviceRef, str, float, float]] | None:
    """(device, path, rate, yardstick) of each device from the caches; None if one lacks it."""
    known = []
    for ref in refs:
        choice = known_choice(ref, source)
        tuned = cached_settings(ref, "portable", source) if len(auto_paths(ref, {})) == 1 else None
        if choice is not None:
            known.append((ref, choice.chosen, choice.best_hs, choice.yardstick_hs))
        elif tuned is not None:
            known.append((ref, "portable", tuned.rate_hs, 0.0))
        else:
            return None
    return known


def _probe() -> BackendInfo:
    entries = list_devices()  # BackendUnavailable (no pyopencl, no platform) is the answer
    chosen = {ref.id for ref, _ in select_devices("auto", entries)}
    try:
        source = load_source(default_kernel_dir())
    except BackendUnavailable:
        source = ""
    lines, extra_devices = [], []
    for ref, _ in entries:
        choice = known_choice(ref, source) if source else None
        paths = auto_paths(ref, {})
        path = choice.chosen if choice else paths[0]
        tuned = cached_settings(ref, path, source) if source else None
        if tuned is not None:
            tuned = replace(tuned, launch_nonces=launch_nonces(tuned, tuning.OPENCL_LAUNCH_SECONDS))
        note = f"tuned: {tuned.describe()}" if tuned else "not tuned yet (the first open tunes it)"
        if choice is not None:
            note += f"; measured: {choice.describe()}"
        elif len(paths) > 1:
            note += f"; {' or '.join(paths)}, measured on first open"
            path = "auto"
        mark = ", picked by auto" if ref.id in chosen else ""  # no brackets: the CLI prints rich markup
        lines.append(f"{ref.describe()}{mark}, path {path}, {note}")
        extra_devices.append(
            {
                **asdict(ref),
                "auto": ref.id in chosen,
                "path": path,
                "tuned": asdict(tuned) if tuned else None,
                "path_choice": choice.to_json() if choice else None,
            }
        )
    return BackendInfo(
        "opencl", True, "; ".join(lines), extra={"devices": extra_devices, "tune_cache": str(tune_file())}
    )


register("opencl", open_opencl, _probe, "OpenCL: GPUs, or the CPU through PoCL (SHA extensions or lanes, measured)",
         rate=backend_rate)  # fmt: skip
