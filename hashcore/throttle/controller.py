"""The power controller: a budget and a measured power in, settings out, once a tick.

Theory of operation
-------------------
The plant is nearly static: a backend's power follows its duty within one scan (a
quarter of a second for the engine), and the meter reports the average over the tick
just ended, so what the controller sees lags what it set by one tick. What it does not
know well is the scale: ``hashcore bench`` measured the fleet at another time, the
estimate is an estimate, a site's machines age. So the controller is a feed-forward
through the fleet's power model, corrected by one adaptive gain:

- ``gain`` (ĝ) is measured over modelled power above the paused floor. Each tick the
  controller asks the model for ``(budget - paused) / ĝ`` watts, fills the backends
  cheapest J/H first, lets the actuator chains realise it, and remembers the modelled
  power of what was realised.
- When the next measurement arrives, ĝ moves a fraction ``adapt_rate`` of the way to
  ``(measured - paused) / modelled``. In the steady state that makes measured equal the
  budget: it is integral action, acting on the scale instead of adding watts.

The gains, and why:

- ``adapt_rate`` = 0.5. With the model right, a step in the budget lands in the first
  tick after it (feed-forward, no integrator to wind up). With the model off by a
  factor, ĝ's error halves with every steady tick; a correction moves the settings, so
  the tick after it is in transit and teaches nothing: 30% off is within 2% after about
  eight ticks. The rate is the same whatever the error (an additive integrator's loop
  gain would scale with the unknown plant gain), and it is below 1, so ĝ approaches the
  true gain from one side: no overshoot, no oscillation. 1.0 would be deadbeat on a
  noiseless plant but would pass all of the meter's noise into the command; 0.5 passes
  sqrt(0.5 / 1.5), about 58% of it.
- ``steady_band`` = 1% of the power set. ĝ learns only from a tick whose settings were
  within 1% of the tick before's: a tick with a change in it averages two operating
  points (actuator lag), and learning from it is what makes a plain integrator
  overshoot after every step. A change under 1% biases ĝ by at most 1% × the part of
  the tick spent in transit × ``adapt_rate`` (0.06% with the engine's quarter-second
  response and a 2-second tick).
- ``min_update`` = 5% of the fleet's controllable power: below that the ratio is mostly
  meter noise and idle overhead, so ĝ holds.
- ``gain_bounds`` = (0.25, 4): a broken meter cannot drive the command to nothing or to
  everything through ĝ alone.

A budget under the paused floor pauses everything (nothing less can be drawn); a budget
over full power runs everything at full duty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.errors import ConfigError
from hashcore.throttle.actuators import Actuator, Knobs, apply_chain, make_chain
from hashcore.throttle.model import FleetModel


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """The controller's gains (see the module docstring for why these values)."""

    adapt_rate: float = 0.5
    steady_band: float = 0.01
    min_update: float = 0.05
    gain_bounds: tuple[float, float] = (0.25, 4.0)
    initial_gain: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.adapt_rate <= 1:
            raise ConfigError(f"adapt_rate must be in (0, 1], not {self.adapt_rate}")
        low, high = self.gain_bounds
        if not 0 < low <= self.initial_gain <= high:
            raise ConfigError("gain bounds must be positive and hold the initial gain")


@dataclass(frozen=True, slots=True)
class Command:
    """What one tick decided.

    Attributes:
        budget_w: the budget it was given.
        target_w: the power it aimed at: the budget held within [paused, full] power.
        expected_w: the power it expects the realised settings to draw (model × ĝ).
        fractions: realised fraction of full power per backend.
        gain: ĝ used for this tick.
    """

    budget_w: float
    target_w: float
    expected_w: float
    fractions: Mapping[str, float]
    gain: float


class Controller:
    """Sets a fleet's actuators each tick so that measured power follows a budget.

    Args:
        fleet: the power model of every backend, cheapest J/H first.
        knobs: the miner's (or the simulated plant's) duty and threads.
        chains: an actuator chain per backend (default: :func:`make_chain` for ``actuator``,
            which sets no real device: the live throttle hands in its own chains).
        config: gains.
        actuator: ``duty`` or ``dvfs``, for the default chains.
    """

    def __init__(
        self,
        fleet: FleetModel,
        knobs: Knobs,
        chains: Mapping[str, list[Actuator]] | None = None,
        config: ControllerConfig | None = None,
        actuator: str = "duty",
    ) -> None:
        self.fleet = fleet
        self.knobs = knobs
        self.config = config or ControllerConfig()
        self.chains = (dict(chains) if chains is not None
                       else {b.name: make_chain(b, knobs, actuator) for b in fleet.backends})
        missing = [b.name for b in fleet.backends if b.name not in self.chains]
        if missing:
            raise ConfigError(f"no actuator chain for {', '.join(missing)}")
        self.gain = self.config.initial_gain
        self._span = fleet.span_watts
        self._paused = fleet.paused_watts
        self._spans = [(b.name, b.span_watts) for b in fleet.backends]
        self._modelled: float | None = None  # controllable watts set for the tick being measured
        self._modelled_before: float | None = None  # ... and for the tick before it
        self.last: Command | None = None

    def learn(self, measured_w: float) -> None:
        """Update ĝ from the power measured over the tick that just ended."""
        modelled, before = self._modelled, self._modelled_before
        if modelled is None or before is None:
            return
        cfg = self.config
        if modelled < cfg.min_update * self._span or abs(modelled - before) > cfg.steady_band * modelled:
            return
        sample = (measured_w - self._paused) / modelled
        low, high = cfg.gain_bounds
        self.gain = min(high, max(low, self.gain + cfg.adapt_rate * (sample - self.gain)))

    def step(self, budget_w: float, measured_w: float | None = None) -> Command:
        """One tick: learn from ``measured_w`` (the average power over the tick that just
        ended, None when there is none yet), then set the actuators for ``budget_w``."""
        if measured_w is not None:
            self.learn(measured_w)
        gain = self.gain
        want = max(0.0, budget_w - self._paused) / gain
        fractions: dict[str, float] = {}
        modelled = 0.0
        for name, span in self._spans:
            take = want if want < span else span
            want -= take
            realised = apply_chain(self.chains[name], name, take / span)
            fractions[name] = realised
            modelled += realised * span
        self._modelled_before, self._modelled = self._modelled, modelled
        target = min(max(budget_w, self._paused), self._paused + gain * self._span)
        command = Command(budget_w, target, self._paused + gain * modelled, fractions, gain)
        self.last = command
        return command

    def status(self) -> dict[str, Any]:
        last = self.last
        return {
            "gain": self.gain,
            "target_w": None if last is None else last.target_w,
            "expected_w": None if last is None else last.expected_w,
            "full_w": self._paused + self.gain * self._span,
            "paused_w": self._paused,
            "backends": {
                name: {
                    "fraction": None if last is None else last.fractions.get(name),
                    "duty": self.knobs.duty(name),
                    "active_threads": self.knobs.active_threads(name),
                    "actuators": [a.describe() for a in self.chains[name]],
                }
                for name, _ in self._spans
            },
        }

    def close(self) -> None:
        for chain in self.chains.values():
            for actuator in chain:
                actuator.close()
