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

The knobs are the engine's (:class:`hashcore.app.actuators.EngineKnobs`) or the
simulated plant's; both speak :class:`Knobs`. Actuators that set a real device (a GPU's
power limit: :class:`hashcore.app.actuators.GpuPowerLimit`) are made by the application
and handed to :func:`make_chain` as ``power_limit``; without one a GPU backend gets duty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from hashcore.errors import ConfigError
from hashcore.throttle.devices import EfficiencyCurve, Mix
from hashcore.throttle.model import BackendModel

ACTUATORS = ("duty", "dvfs")


class Knobs(Protocol):
    """What a controller can set on a miner (the engine's actuators)."""

    min_duty: float

    def max_threads(self, backend: str) -> int: ...

    def set_duty(self, backend: str, duty: float) -> None: ...

    def set_threads(self, backend: str, threads: int) -> None: ...

    def duty(self, backend: str) -> float: ...

    def active_threads(self, backend: str) -> int: ...


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


@runtime_checkable
class PointKnobs(Protocol):
    """Knobs that can also set a backend's operating point (the simulated plant)."""

    def set_operating_point(self, backend: str, mix: Mix) -> None: ...


class DvfsActuator:
    """Frequency and voltage: the operating point with the most hashes per joule for the
    fraction asked (see :mod:`hashcore.throttle.devices` for the envelope).

    Below the most efficient point it sets that point and returns its share of the
    power, so the next actuator (duty) makes up the rest; from there up it returns the
    whole fraction. Where the knobs cannot set an operating point (the engine has no
    such control) it says why, realises nothing (factor 1) and duty takes over.
    """

    name = "dvfs"

    def __init__(self, knobs: Knobs, backend: BackendModel) -> None:
        self.knobs = knobs
        self.curve: EfficiencyCurve | None = backend.curve
        self.paused_w = backend.paused_watts
        self.span_w = backend.span_watts
        settable = isinstance(knobs, PointKnobs)
        self._points = knobs if isinstance(knobs, PointKnobs) else None
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


#: Makes the actuator that sets a GPU's board power limit (the application's, on real devices).
PowerLimitFactory = Callable[[], "Actuator"]


def make_chain(backend: BackendModel, knobs: Knobs, actuator: str = "duty",
               power_limit: PowerLimitFactory | None = None) -> list[Actuator]:
    """The chain for ``--actuator duty`` (:func:`default_chain`) or ``dvfs`` (the
    operating point first, then duty). ``power_limit`` makes a GPU's power-limit
    actuator; without it (a simulation) a GPU backend is duty cycled only."""
    if actuator == "duty":
        return default_chain(backend, knobs, power_limit)
    if actuator != "dvfs":
        raise ConfigError(f"unknown actuator {actuator!r} (choose from {', '.join(ACTUATORS)})")
    if backend.curve is None:
        raise ConfigError(f"--actuator dvfs needs operating points for {backend.name}: --device-model, or a "
                          "--model written by 'hashcore bench --sweep --json'")
    return [DvfsActuator(knobs, backend), DutyActuator(knobs)]


def default_chain(backend: BackendModel, knobs: Knobs, power_limit: PowerLimitFactory | None = None) -> list[Actuator]:
    """Threads then duty for CPU backends, the power limit (where ``power_limit`` makes
    one) then duty for GPUs, duty for ASIC boards."""
    if backend.kind == "gpu":
        return [power_limit(), DutyActuator(knobs)] if power_limit is not None else [DutyActuator(knobs)]
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
