"""The site's vocabulary: what the operator says of a miner and of the site, what a miner
answers, what the allocator orders and how it sees each miner (see :mod:`hashcore.throttle.site`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hashcore.errors import ConfigError

#: How a miner can be steered: a power target (and sleep/wake), sleep/wake only, not at all.
TARGET = "target"
SLEEP = "sleep"
READ_ONLY = "none"
CONTROLS = (TARGET, SLEEP, READ_ONLY)

#: Why a miner could not be read this tick.
TIMEOUT = "timeout"      # no answer in time, or a garbled one: it may still be hashing
REFUSED = "refused"      # nothing listens at its address: its miner software is not running
FAILURES = (TIMEOUT, REFUSED)

#: A miner's state as the site reports it.
STATES = ("on", "asleep", "waking", "sleeping", "read-only", "unresponsive", "down")

#: The most one miner can draw or hash: a figure above these is a miner's nonsense, not a
#: measurement (a megawatt, a zettahash a second: the whole network is under one).
MAX_MINER_WATTS = 1e6
MAX_MINER_HASHRATE_HS = 1e21


@dataclass(frozen=True, slots=True)
class MinerRules:
    """What the operator says of one miner (None: learnt from measurement).

    Attributes:
        max_watts: its power at full speed (None: the most it has been measured drawing).
        min_watts: the lowest power target it holds while mining (None: a third of full).
        sleep_watts: what it draws asleep (or with its miner software stopped).
        min_on_s / min_off_s: the shortest time it stays on, or asleep, once switched.
        ramp_w_per_s: the most its target rises a second (None: no limit).
        j_per_th: its efficiency until measured (ranks it before its first reading).
    """

    max_watts: float | None = None
    min_watts: float | None = None
    sleep_watts: float = 0.0
    min_on_s: float = 60.0
    min_off_s: float = 60.0
    ramp_w_per_s: float | None = None
    j_per_th: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_watts", "min_watts", "sleep_watts", "min_on_s", "min_off_s", "ramp_w_per_s", "j_per_th"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.max_watts is not None and self.max_watts <= 0:
            raise ConfigError(f"max_watts must be above 0, not {self.max_watts!r}")
        if self.max_watts is not None and self.min_watts is not None and self.min_watts > self.max_watts:
            raise ConfigError(f"min_watts {self.min_watts:g} is above max_watts {self.max_watts:g}")
        if self.max_watts is not None and self.sleep_watts >= self.max_watts:
            raise ConfigError(f"sleep_watts {self.sleep_watts:g} must be below max_watts {self.max_watts:g}")


@dataclass(frozen=True, slots=True)
class SiteRules:
    """How the whole site is run.

    Attributes:
        headroom: the fraction of the budget kept free for the miners' own ripple.
        wake_margin_w: how much more than a sleeping miner's minimum must be free to wake it.
        wake_batch: the most miners woken in one tick (0: no limit).
        site_ramp_w_per_s: the most the site's allotted total rises a second (None: no limit).
        deadband_w: a change of target smaller than this is not sent.
        trim_gain: how fast the trim follows the site's measured excess (per tick, 0-1).
        confirm_ticks: ticks a miner may report a state or target other than the one
            ordered before the order is sent again (a wake takes a while on an ASIC).
        rank_margin: how much cheaper (a fraction) a sleeping miner must be than a running
            one to take its place: two miners of nearly the same J/TH do not swap on noise.
    """

    headroom: float = 0.05
    wake_margin_w: float = 0.0
    wake_batch: int = 0
    site_ramp_w_per_s: float | None = None
    deadband_w: float = 0.5
    trim_gain: float = 0.5
    confirm_ticks: int = 3
    rank_margin: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.headroom < 1.0:
            raise ConfigError(f"headroom must be in [0, 1), not {self.headroom!r}")
        if not 0.0 <= self.rank_margin < 1.0:
            raise ConfigError(f"rank_margin must be in [0, 1), not {self.rank_margin!r}")
        if not 0.0 <= self.trim_gain <= 1.0:
            raise ConfigError(f"trim_gain must be in [0, 1], not {self.trim_gain!r}")
        for name in ("wake_margin_w", "deadband_w", "site_ramp_w_per_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.wake_batch < 0:
            raise ConfigError(f"wake_batch must be >= 0, not {self.wake_batch!r}")
        if self.confirm_ticks < 1:
            raise ConfigError(f"confirm_ticks must be >= 1, not {self.confirm_ticks!r}")


@dataclass(frozen=True, slots=True)
class MinerReading:
    """One miner's answer this tick.

    Attributes:
        watts: its power now (None: it does not report power).
        hashrate_hs: its hashrate now (None: not reported).
        asleep: whether it is paused or sleeping.
        control: how it can be steered now (:data:`TARGET`, :data:`SLEEP`, :data:`READ_ONLY`).
        target_w: the power target in force on it (None: none).
    """

    watts: float | None
    hashrate_hs: float | None
    asleep: bool
    control: str
    target_w: float | None = None


#: What the allocator is told of a miner each tick: its reading, or why there was none.
Observation = MinerReading | str


@dataclass(frozen=True, slots=True)
class Order:
    """What to tell one miner: ``sleep``, ``wake`` (then its target, if any) or ``target``."""

    address: str
    action: str
    watts: float | None = None


@dataclass(slots=True)
class MinerPlan:
    """The allocator's view of one miner after a tick (what the site page shows).

    Attributes:
        state: one of :data:`STATES`.
        allotted_w: what it may draw this tick (its target, full power, or its sleep power).
        counted_w: what the site counts it drawing (its measurement, or the stand-in).
        j_per_th: its smoothed efficiency (None before a reading with hashes).
        rank: its place in the order (0: cheapest); None where it is not steered.
        since: when its on/off state last changed.
        locked: why it may not change now (``min_on``, ``min_off``) or None.
        full_w: its full power as known (configured, or the most measured); None: not yet.
    """

    state: str
    allotted_w: float = 0.0
    counted_w: float = 0.0
    j_per_th: float | None = None
    rank: int | None = None
    since: float = -math.inf
    locked: str | None = None
    full_w: float | None = None
