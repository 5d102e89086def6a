"""The simulated miner: the fleet's power model with the engine's knobs.

It answers to the same :class:`~hashcore.throttle.actuators.Knobs` as the engine, so the
controller cannot tell it from a real miner. A backend draws
``paused + running × (full - paused)``, where ``running`` (duty × active/total threads)
follows a new setting with a first-order lag ``lag_s`` (the engine's duty takes effect
at the end of the scan in progress: a quarter of a second). ``truth`` may differ from
the controller's model (a stale bench, a wrong estimate) and ``noise`` adds meter
noise, so robustness can be tried on the virtual clock too.
"""

from __future__ import annotations

import math
import random

from hashcore.errors import ConfigError
from hashcore.throttle.devices import Mix
from hashcore.throttle.model import FleetModel


class SimulatedMiner:
    """A fleet on a virtual clock.

    Args:
        truth: what the fleet really draws and hashes.
        lag_s: time constant of a backend's response to a new setting (seconds).
        noise: relative standard deviation of the meter's reading.
        seed: for the noise.
        min_duty: the smallest duty the knobs accept (a fleet of many machines: 0).
    """

    def __init__(self, truth: FleetModel, *, lag_s: float = 0.25, noise: float = 0.0, seed: int = 0,
                 min_duty: float = 0.0) -> None:
        if lag_s < 0 or noise < 0:
            raise ConfigError("lag and noise must not be negative")
        self.truth = truth
        self.lag_s = lag_s
        self.noise = noise
        self.min_duty = min_duty
        self._random = random.Random(seed)
        self._duty = dict.fromkeys(truth.names, 1.0)
        self._threads = {b.name: b.threads for b in truth.backends}
        # Power above paused and hashrate, each lagging its target; starts cold.
        self._running = {name: (0.0, 0.0) for name in truth.names}
        self._point = {b.name: (b.span_watts, b.hashrate_hs) for b in truth.backends}
        self._rows = [(b.name, b.paused_watts, b.threads) for b in truth.backends]
        self.points: dict[str, Mix | None] = dict.fromkeys(truth.names)
        self.power_w = truth.paused_watts

    # --- knobs ---------------------------------------------------------------------------

    def max_threads(self, backend: str) -> int:
        return self.truth.backend(backend).threads

    def set_duty(self, backend: str, duty: float) -> None:
        self._duty[backend] = min(1.0, max(0.0, duty))

    def set_threads(self, backend: str, threads: int) -> None:
        self._threads[backend] = min(max(threads, 0), self.max_threads(backend))

    def duty(self, backend: str) -> float:
        return self._duty[backend]

    def active_threads(self, backend: str) -> int:
        return self._threads[backend]

    def set_operating_point(self, backend: str, mix: Mix) -> None:
        """Run ``backend`` at ``mix`` of the truth's curve (scaled by the truth's own top
        point, so a plant that draws more than the model does at every point too)."""
        model = self.truth.backend(backend)
        if model.curve is None:
            raise ConfigError(f"{backend} has no operating points to set")
        top = model.curve.top
        ratio_w, ratio_h = model.full_watts / top.watts, model.hashrate_hs / top.hashrate_hs
        self._point[backend] = (mix.watts * ratio_w - model.paused_watts, mix.hashrate_hs * ratio_h)
        self.points[backend] = mix

    # --- physics -------------------------------------------------------------------------

    def advance(self, dt: float) -> tuple[float, float]:
        """Run ``dt`` seconds at the current settings: (average watts, hashes done)."""
        if self.lag_s > 0:
            decay = math.exp(-dt / self.lag_s)
            mix = self.lag_s / dt * (1.0 - decay)  # average of the exponential approach
        else:
            decay = mix = 0.0
        power = hashes = 0.0
        running = self._running
        for name, paused, threads in self._rows:
            fraction = self._duty[name] * self._threads[name] / threads
            span, rate = self._point[name]
            target_w, target_h = fraction * span, fraction * rate
            start_w, start_h = running[name]
            running[name] = (target_w + (start_w - target_w) * decay, target_h + (start_h - target_h) * decay)
            power += paused + target_w + (start_w - target_w) * mix
            hashes += (target_h + (start_h - target_h) * mix) * dt
        self.power_w = power
        return power, hashes

    def measure(self, power_w: float) -> float:
        """What the meter reports for a tick whose true average was ``power_w``."""
        if self.noise <= 0:
            return power_w
        return max(0.0, power_w * (1.0 + self._random.gauss(0.0, self.noise)))
