"""Actuators: how a fraction of a backend's full power becomes settings.

The controller decides, per backend, the fraction of its full power it should draw.
An actuator chain turns that into settings: each actuator sets its knob as close to the
fraction as it can, returns the factor it realised (0..1), and leaves the rest to the
next one. A CPU backend's chain is threads then duty (fewer threads at a high duty
rather than every thread at a low one: fewer wake-ups, the same average power); a GPU's
is the NVML power limit then duty; an ASIC's is duty. The realised fraction is the
product of the factors, and the controller's model uses that, not what it asked for.

With ``actuator="dvfs"`` (:func:`make_chain`) a backend with an efficiency curve gets
:class:`DvfsActuator` first: it picks the operating point with the most hashes per
joule that draws the fraction asked, and leaves duty cycling to the duty actuator only
below the most efficient point.

The knobs are the engine's (:class:`EngineKnobs` wraps a :class:`~hashcore.engine.Miner`)
or the simulated plant's; both speak :class:`Knobs`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Protocol, cast

from hashcore.errors import ConfigError, TelemetryError
from hashcore.throttle.devices import EfficiencyCurve, Mix
from hashcore.throttle.model import BackendModel

ACTUATORS = ("duty", "dvfs")

#: The engine's workers sleep ``scan × (1 - duty) / duty`` after each scan without
#: looking at their duty again, so a small duty leaves them deaf to a change for a long
#: time; 0.2 bounds that at four scans (a second with the default quarter-second scans).
ENGINE_MIN_DUTY = 0.2


class Knobs(Protocol):
    """What a controller can set on a miner (the engine's actuators)."""

    min_duty: float

    def max_threads(self, backend: str) -> int: ...

    def set_duty(self, backend: str, duty: float) -> None: ...

    def set_threads(self, backend: str, threads: int) -> None: ...

    def duty(self, backend: str) -> float: ...

    def active_threads(self, backend: str) -> int: ...


class EngineKnobs:
    """The knobs of a running :class:`~hashcore.engine.Miner`."""

    def __init__(self, miner: Any, min_duty: float = ENGINE_MIN_DUTY) -> None:
        self.miner = miner
        self.min_duty = min_duty

    def max_threads(self, backend: str) -> int:
        return int(self.miner.counters[backend].threads)

    def set_duty(self, backend: str, duty: float) -> None:
        self.miner.set_duty(backend, duty)

    def set_threads(self, backend: str, threads: int) -> None:
        self.miner.set_threads(backend, threads)

    def duty(self, backend: str) -> float:
        return float(self.miner.duty(backend))

    def active_threads(self, backend: str) -> int:
        return int(self.miner.active_threads(backend))

    def set_operating_point(self, backend: str, mix: Mix) -> None:
        """One chain runs at one clock: the mix's average frequency, the voltage following
        the chip's V/f table (the driver sets it before a rise, after a fall)."""
        self.miner.set_operating_point(backend, mix.freq_mhz)


class Actuator(Protocol):
    name: str

    def apply(self, backend: str, fraction: float) -> float:
        """Set the knob for ``fraction`` (0..1) of full power; return the factor realised."""
        ...

    def describe(self) -> dict[str, Any]:
        """Name, whether it acts, and why not when it does not."""
        ...

    def close(self) -> None: ...


class ThreadsActuator:
    """Runs ``ceil(fraction × threads)`` threads; duty makes up the rest."""

    name = "threads"

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs

    def apply(self, backend: str, fraction: float) -> float:
        n = self.knobs.max_threads(backend)
        threads = min(n, math.ceil(fraction * n - 1e-9)) if fraction > 0 else 0
        self.knobs.set_threads(backend, threads)
        return threads / n

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "active": True}

    def close(self) -> None:
        pass


class DutyActuator:
    """The duty cycle: the fraction of time the backend's threads scan.

    A fraction under ``knobs.min_duty`` rounds down to a pause, never up: rounding up
    would draw more than asked.
    """

    name = "duty"

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs

    def apply(self, backend: str, fraction: float) -> float:
        duty = min(1.0, max(0.0, fraction))
        if duty < self.knobs.min_duty or duty <= 1e-9:
            duty = 0.0
        self.knobs.set_duty(backend, duty)
        return duty

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "active": True, "min_duty": self.knobs.min_duty}

    def close(self) -> None:
        pass


class GpuPowerLimit:
    """An NVIDIA GPU's board power limit through NVML, where the driver permits it.

    Setting a limit needs root (or the admin's ``nvidia-smi -pl`` permission); where it is
    refused, or there is no GPU or driver, the actuator says why in ``reason``, realises
    nothing (factor 1) and the chain falls back to duty. On close it restores the limit
    it found.

    Args:
        device: GPU index or PCI bus id.
        lib: the ``pynvml`` module, or a stand-in of the same shape (tests).
    """

    name = "gpu-power-limit"

    def __init__(self, device: int | str = 0, lib: Any = None) -> None:
        from hashcore.telemetry.nvml import Nvml

        self.available = False
        self.reason = ""
        self._handle: Any = None
        self._original_mw: int | None = None
        self._min_mw = self._max_mw = 0
        self._current_mw: int | None = None
        self._initialised = False
        try:
            self._nvml = Nvml(lib)
            self._nvml.init()
        except TelemetryError as exc:
            self.reason = f"not permitted here: {exc}"
            return
        self._initialised = True
        try:
            self._handle = self._nvml.handle(device)
            low, high = self._call("power limit range", "nvmlDeviceGetPowerManagementLimitConstraints")
            self._min_mw, self._max_mw = int(low), int(high)
            self._original_mw = int(self._call("power limit", "nvmlDeviceGetPowerManagementLimit"))
            self.available = self._max_mw > 0
            self.reason = "" if self.available else "the GPU reports no power limit range"
        except (TelemetryError, ConfigError) as exc:
            self.reason = f"not permitted here: {exc}"
            self._shutdown()

    def _call(self, what: str, function: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml.lib, function)(self._handle, *args)
        except self._nvml.lib.NVMLError as exc:
            raise self._nvml.error(what, exc) from exc

    def apply(self, backend: str, fraction: float) -> float:
        if not self.available:
            return 1.0
        if fraction <= 0:
            return 0.0
        limit = min(self._max_mw, max(self._min_mw, round(fraction * self._max_mw)))
        if limit != self._current_mw:
            try:
                self._call("set power limit", "nvmlDeviceSetPowerManagementLimit", limit)
            except TelemetryError as exc:
                self.available = False
                self.reason = f"not permitted: {exc}; duty cycling instead"
                return 1.0
            self._current_mw = limit
        return limit / self._max_mw

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "active": self.available}
        if self.available:
            info.update(min_w=self._min_mw / 1000, max_w=self._max_mw / 1000,
                        limit_w=None if self._current_mw is None else self._current_mw / 1000)
        else:
            info["reason"] = self.reason
        return info

    def close(self) -> None:
        if self.available and self._original_mw is not None and self._current_mw not in (None, self._original_mw):
            with contextlib.suppress(TelemetryError):
                self._call("restore power limit", "nvmlDeviceSetPowerManagementLimit", self._original_mw)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(TelemetryError):
                self._nvml.shutdown()
        self._handle = None
        self.available = False


class PointKnobs(Protocol):
    """Knobs that can also set a backend's operating point (the simulated plant)."""

    def set_operating_point(self, backend: str, mix: Mix) -> None: ...


class DvfsActuator:
    """Frequency and voltage: the operating point with the most hashes per joule for the
    fraction asked (see :mod:`hashcore.throttle.devices` for the envelope).

    Below the most efficient point it sets that point and returns its share of the
    power, so the next actuator (duty) makes up the rest; from there up it returns the
    whole fraction. Where the knobs cannot set an operating point (the engine has no
    such control yet) it says why, realises nothing (factor 1) and duty takes over.
    """

    name = "dvfs"

    def __init__(self, knobs: Knobs, backend: BackendModel) -> None:
        self.knobs = knobs
        self.curve: EfficiencyCurve | None = backend.curve
        self.paused_w = backend.paused_watts
        self.span_w = backend.span_watts
        settable = callable(getattr(knobs, "set_operating_point", None))
        self._points = cast(PointKnobs, knobs) if settable else None
        self.available = backend.curve is not None and settable
        if backend.curve is None:
            self.reason = f"{backend.name} has no operating points (hashcore bench --sweep, or --device-model)"
        elif not self.available:
            self.reason = "this miner exposes no operating-point control; duty cycling instead"
        else:
            self.reason = ""
        self._lowest = backend.curve.envelope(self.paused_w)[0] if backend.curve is not None else None
        self.mix: Mix | None = None

    def apply(self, backend: str, fraction: float) -> float:
        if not self.available or self.curve is None or self._lowest is None or self._points is None:
            return 1.0
        want = self.paused_w + min(1.0, max(0.0, fraction)) * self.span_w
        if want <= self._lowest.watts:
            mix = Mix(self._lowest, self._lowest, 0.0)
        else:
            mix, _ = self.curve.for_power(want, self.paused_w)
        if mix != self.mix:
            self._points.set_operating_point(backend, mix)
            self.mix = mix
        return max(0.0, (mix.watts - self.paused_w) / self.span_w)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "active": self.available}
        if not self.available:
            info["reason"] = self.reason
        elif self.mix is not None:
            info.update(freq_mhz=self.mix.freq_mhz, low_mhz=self.mix.low.freq_mhz, high_mhz=self.mix.high.freq_mhz,
                        share_high=self.mix.share, watts=self.mix.watts)
        return info

    def close(self) -> None:
        pass


def make_chain(backend: BackendModel, knobs: Knobs, actuator: str = "duty",
               gpu_device: int | str | None = None, *, real_devices: bool = True) -> list[Actuator]:
    """The chain for ``--actuator duty`` (:func:`default_chain`) or ``dvfs`` (the
    operating point first, then duty). ``real_devices`` False (a simulation) leaves out
    actuators that would set a real device here (a GPU's power limit)."""
    if actuator == "duty":
        if not real_devices and backend.kind == "gpu":
            return [DutyActuator(knobs)]
        return default_chain(backend, knobs, gpu_device)
    if actuator != "dvfs":
        raise ConfigError(f"unknown actuator {actuator!r} (choose from {', '.join(ACTUATORS)})")
    if backend.curve is None:
        raise ConfigError(f"--actuator dvfs needs operating points for {backend.name}: --device-model, or a "
                          "--model written by 'hashcore bench --sweep --json'")
    return [DvfsActuator(knobs, backend), DutyActuator(knobs)]


def default_chain(backend: BackendModel, knobs: Knobs, gpu_device: int | str | None = None) -> list[Actuator]:
    """Threads then duty for CPU backends, the NVML power limit then duty for GPUs, duty
    for ASIC boards."""
    if backend.kind == "gpu":
        return [GpuPowerLimit(0 if gpu_device is None else gpu_device), DutyActuator(knobs)]
    if backend.kind == "asic":
        return [DutyActuator(knobs)]
    return [ThreadsActuator(knobs), DutyActuator(knobs)]


def apply_chain(chain: list[Actuator], backend: str, fraction: float) -> float:
    """Run a chain for one backend; the fraction of full power realised."""
    realised = 1.0
    want = min(1.0, max(0.0, fraction))
    for actuator in chain:
        factor = actuator.apply(backend, want)
        realised *= factor
        want = min(1.0, want / factor) if factor > 0 else 0.0
    return realised
