"""A site's budget shared across many miners: who runs, at what power, each tick.

Pure logic on made-up times: the application (:mod:`hashcore.app.site`) reads the miners
and the budget, hands them to :class:`SiteAllocator` each tick and sends the orders it
returns; :class:`SiteBook` keeps the site's energy figures.

Each tick the allocator:

1. **Counts what it cannot steer.** A miner that answers but cannot be steered (a
   read-only API) draws what it reports, else its ``max_watts``. A miner that stops
   answering (a timeout, a garbled reply) is counted at its last measured power, else its
   ``max_watts``, until it answers again: it may still be hashing. A miner whose address
   refuses the connection has no miner software running there, so it draws its
   ``sleep_watts``, and its share goes to the others at once.
2. **Holds the locks.** A miner switched on less than ``min_on_s`` ago stays on (at its
   ``min_watts`` where it takes a power target), one switched off less than ``min_off_s``
   ago stays asleep: waking an ASIC is slow and wears it.
3. **Gives the rest cheapest first.** The miners are ranked by their measured joules per
   terahash (a smoothed figure; the configured one until measured, unmeasured ones last)
   and each in turn gets what is left, up to its full power: by a power target where it
   takes one, whole (on at full power, or asleep) where it can only sleep and wake.
   Hysteresis keeps a miner at the margin from toggling: a sleeping miner wakes only when
   ``wake_margin_w`` more than its minimum is left, a running one sleeps only when less
   than its minimum is.
4. **Limits the ramps.** A target rises at most ``ramp_w_per_s`` a second (per miner; and
   the site's total at most ``site_ramp_w_per_s``) and at most ``wake_batch`` miners wake
   per tick, so a returning surplus is taken up in steps; cuts are never limited.

The budget handed out is ``budget × (1 - headroom)`` less a trim that grows while the
site's measured power stays above the budget (a miner drawing a little over its target,
a meter reading high) and shrinks again when it is back under.

An order is sent when the allotment changes by more than ``deadband_w``, or when the miner
reports a target or a state other than the one ordered (telemetry confirms every order;
a drifted miner is ordered again).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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

#: Weight of each new measurement in the smoothed J/TH that ranks the miners.
_RANK_WEIGHT = 0.2


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
    """

    headroom: float = 0.05
    wake_margin_w: float = 0.0
    wake_batch: int = 0
    site_ramp_w_per_s: float | None = None
    deadband_w: float = 0.5
    trim_gain: float = 0.5
    confirm_ticks: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.headroom < 1.0:
            raise ConfigError(f"headroom must be in [0, 1), not {self.headroom!r}")
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
    """

    state: str
    allotted_w: float = 0.0
    counted_w: float = 0.0
    j_per_th: float | None = None
    rank: int | None = None
    since: float = -math.inf
    locked: str | None = None


@dataclass(slots=True)
class _Miner:
    rules: MinerRules
    awake: bool = True
    changed_at: float = -math.inf
    control: str = READ_ONLY
    last_watts: float | None = None
    max_seen: float | None = None          # the most drawn while free of its target
    j_per_th: float | None = None
    ordered_w: float | None = None        # the target last sent
    ordered_awake: bool | None = None     # the state last sent
    reported_target: float | None = None
    reported_asleep: bool | None = None
    failure: str | None = None
    state_drift: int = 0                  # ticks its reported state has differed from the order
    target_drift: int = 0
    plan: MinerPlan = field(default_factory=lambda: MinerPlan("down"))

    def full_w(self) -> float | None:
        if self.rules.max_watts is not None:
            return self.rules.max_watts
        return self.max_seen

    def floor_w(self, full: float) -> float:
        if self.control != TARGET:
            return full
        low = self.rules.min_watts if self.rules.min_watts is not None else full / 3
        return min(max(low, self.rules.sleep_watts), full)


@dataclass(frozen=True, slots=True)
class Allocation:
    """One tick's outcome: the orders to send and every miner's plan."""

    orders: tuple[Order, ...]
    plans: Mapping[str, MinerPlan]
    usable_w: float
    counted_w: float
    allotted_w: float


class SiteAllocator:
    """Shares a budget across miners each tick; see the module docstring.

    Args:
        miners: each miner's address and rules, in the operator's order.
        rules: the site's rules.
    """

    def __init__(self, miners: Mapping[str, MinerRules], rules: SiteRules | None = None) -> None:
        if not miners:
            raise ConfigError("a site needs at least one miner")
        self.rules = rules or SiteRules()
        self._miners = {address: _Miner(r) for address, r in miners.items()}
        self._trim = 0.0
        self._last_t: float | None = None
        self._allotted_total = 0.0

    @property
    def trim_w(self) -> float:
        return self._trim

    def plans(self) -> dict[str, MinerPlan]:
        return {address: m.plan for address, m in self._miners.items()}

    def step(self, now: float, budget_w: float, observations: Mapping[str, Observation],
             measured_w: float | None = None) -> Allocation:
        """Allocate ``budget_w`` for the tick starting at ``now``.

        ``observations``: each miner's reading, or :data:`TIMEOUT` / :data:`REFUSED`
        (a miner left out counts as a timeout). ``measured_w``: the site's measured power
        over the tick that ended (feeds the trim).
        """
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        budget_w = max(0.0, budget_w) if math.isfinite(budget_w) else 0.0
        self._update_trim(budget_w, measured_w)
        for address, miner in self._miners.items():
            self._observe(miner, observations.get(address, TIMEOUT))
        usable = max(0.0, budget_w * (1.0 - self.rules.headroom) - self._trim)
        fixed = 0.0
        steered: list[tuple[str, _Miner]] = []
        for address, miner in self._miners.items():
            if miner.failure is not None or miner.control == READ_ONLY:
                fixed += self._count_unsteered(miner)
            else:
                steered.append((address, miner))
        steered.sort(key=lambda item: _rank_key(item[0], item[1]))
        remaining = usable - fixed - sum(m.rules.sleep_watts for _, m in steered)
        # Locked-on miners keep their floor before anyone is given more.
        for _, miner in steered:
            if miner.awake and now - miner.changed_at < miner.rules.min_on_s:
                full = miner.full_w()
                if full is not None:
                    remaining -= miner.floor_w(full) - miner.rules.sleep_watts
        orders: list[Order] = []
        wakes = 0
        rise_left = math.inf if self.rules.site_ramp_w_per_s is None else self.rules.site_ramp_w_per_s * dt
        allotted_total = fixed
        for rank, (address, miner) in enumerate(steered):
            plan = self._place(address, miner, rank, now, dt, remaining, wakes, rise_left, orders)
            extra = plan.allotted_w - miner.rules.sleep_watts
            locked_on = plan.locked == "min_on" and miner.awake
            if locked_on:
                full = miner.full_w()
                remaining -= extra - (miner.floor_w(full) - miner.rules.sleep_watts if full is not None else 0.0)
            else:
                remaining -= extra
            if plan.state == "waking":
                wakes += 1
            before = miner.ordered_w if miner.ordered_w is not None else (miner.last_watts or 0.0)
            if plan.allotted_w > before:
                rise_left -= plan.allotted_w - before
            allotted_total += plan.allotted_w
        self._allotted_total = allotted_total
        counted = sum(m.plan.counted_w for m in self._miners.values())
        return Allocation(tuple(orders), self.plans(), usable, counted, allotted_total)

    # --- one miner ---------------------------------------------------------------------

    def _observe(self, miner: _Miner, observation: Observation) -> None:
        if isinstance(observation, MinerReading):
            if observation.control not in CONTROLS:
                raise ConfigError(f"unknown control {observation.control!r}")
            miner.failure = None
            miner.control = observation.control
            miner.reported_target = observation.target_w
            miner.reported_asleep = observation.asleep
            watts = _finite(observation.watts)
            rate = _finite(observation.hashrate_hs)
            if miner.ordered_awake is None:
                miner.awake = not observation.asleep  # first contact: take it as it is
            if watts is not None:
                miner.last_watts = watts
                # Its full power shows only where its target did not hold it back.
                free = observation.target_w is None or watts < 0.9 * observation.target_w
                if not observation.asleep and free:
                    miner.max_seen = watts if miner.max_seen is None else max(miner.max_seen, watts)
                if not observation.asleep and rate and rate > 0 and watts > 0:
                    j = watts / (rate / 1e12)
                    miner.j_per_th = j if miner.j_per_th is None else miner.j_per_th + _RANK_WEIGHT * (
                        j - miner.j_per_th)
        elif observation in FAILURES:
            miner.failure = observation
            if observation == REFUSED:
                # Nothing runs there: when it returns it starts as it likes, confirmed by its reading.
                miner.ordered_awake = None
                miner.ordered_w = None
        else:
            raise ConfigError(f"unknown observation {observation!r}")

    def _count_unsteered(self, miner: _Miner) -> float:
        full = miner.full_w()
        if miner.failure == REFUSED:
            counted, state = miner.rules.sleep_watts, "down"
        elif miner.failure == TIMEOUT:
            counted = miner.last_watts if miner.last_watts is not None else (full or 0.0)
            state = "unresponsive"
        else:
            reading = miner.last_watts
            counted = reading if reading is not None else (full or 0.0)
            state = "read-only"
        miner.plan = MinerPlan(state, allotted_w=counted, counted_w=counted, j_per_th=miner.j_per_th,
                               since=miner.changed_at)
        return counted

    def _place(self, address: str, miner: _Miner, rank: int, now: float, dt: float, remaining: float,
               wakes: int, rise_left: float, orders: list[Order]) -> MinerPlan:
        rules, site = miner.rules, self.rules
        sleep_w = rules.sleep_watts
        full = miner.full_w()
        locked: str | None = None
        if miner.awake and now - miner.changed_at < rules.min_on_s:
            locked = "min_on"
        elif not miner.awake and now - miner.changed_at < rules.min_off_s:
            locked = "min_off"
        if full is None:
            # Never measured at full power: offer what is left, and learn its draw from the answer.
            full = max(remaining + sleep_w, sleep_w + 1.0)
            learning = True
        else:
            learning = False
        floor = miner.floor_w(full)
        need = floor - sleep_w
        if locked == "min_on":
            remaining += need  # its floor was set aside before the walk
        run = miner.awake
        if locked is None:
            if miner.awake and remaining < need:
                run = False
            elif not miner.awake:
                batch_full = site.wake_batch and wakes >= site.wake_batch
                run = remaining >= need + site.wake_margin_w and not batch_full and rise_left >= need
        if not run:
            allotted = sleep_w
        elif miner.control == TARGET:
            allotted = min(full, sleep_w + max(remaining, need))
            if not learning:
                allotted = self._ramped(miner, allotted, dt, rise_left, floor)
        else:
            allotted = full
        waking = run and not miner.awake
        if run != miner.awake:
            miner.awake, miner.changed_at = run, now
        state = "on" if run else "asleep"
        if waking:
            state = "waking"
        elif not run and miner.reported_asleep is False:
            state = "sleeping"
        self._orders(address, miner, run, allotted if run and miner.control == TARGET else None, orders)
        counted = miner.last_watts if miner.last_watts is not None else allotted
        miner.plan = MinerPlan(state, allotted_w=allotted, counted_w=counted, j_per_th=miner.j_per_th, rank=rank,
                               since=miner.changed_at, locked=locked)
        return miner.plan

    def _ramped(self, miner: _Miner, allotted: float, dt: float, rise_left: float, floor: float) -> float:
        before = miner.ordered_w if miner.ordered_w is not None else miner.last_watts
        if before is None:
            before = floor
        limit = before + min(rise_left, math.inf if miner.rules.ramp_w_per_s is None
                             else miner.rules.ramp_w_per_s * dt)
        return max(floor, min(allotted, limit)) if allotted > before else allotted

    def _orders(self, address: str, miner: _Miner, run: bool, target: float | None, orders: list[Order]) -> None:
        confirm = self.rules.confirm_ticks
        miner.state_drift = miner.state_drift + 1 if miner.reported_asleep == run else 0
        miner.target_drift = miner.target_drift + 1 if (
            target is not None and miner.ordered_w is not None
            and (miner.reported_target is None or abs(miner.reported_target - miner.ordered_w) > max(
                self.rules.deadband_w, 0.02 * miner.ordered_w))) else 0
        if target is not None and (miner.ordered_w is None or abs(miner.ordered_w - target) > self.rules.deadband_w
                                   or miner.target_drift >= confirm):
            # Before a wake: the miner starts at its new target, not its old one.
            orders.append(Order(address, "target", round(target, 3)))
            miner.ordered_w, miner.target_drift = target, 0
        if miner.ordered_awake != run or miner.state_drift >= confirm:
            orders.append(Order(address, "wake" if run else "sleep"))
            miner.ordered_awake, miner.state_drift = run, 0

    def _update_trim(self, budget_w: float, measured_w: float | None) -> None:
        if measured_w is None or not math.isfinite(measured_w):
            return
        excess = measured_w - budget_w * (1.0 - self.rules.headroom / 2)
        gain = self.rules.trim_gain
        if excess > 0:
            self._trim += gain * excess
        else:
            self._trim = max(0.0, self._trim - gain * min(-excess, self._trim))
        self._trim = min(self._trim, 0.25 * budget_w)


def _rank_key(address: str, miner: _Miner) -> tuple[float, str]:
    j = miner.j_per_th if miner.j_per_th is not None else miner.rules.j_per_th
    return (j if j is not None else math.inf, address)


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


@dataclass(slots=True)
class SiteBook:
    """The site's energy, tick by tick.

    Attributes:
        seconds: time booked.
        budget_energy_j: the budget's energy over that time.
        energy_j: what the miners drew (measured, or counted for a miner that did not answer).
        energy_over_budget_j: the part of each tick's energy above that tick's budget.
        absorbed_j: the part inside the budget.
        curtailed_j: what the miners gave up for the budget: their full power less what
            they drew, over the ticks they were held below it.
        hashes: hashes done.
        ticks: ticks booked.
    """

    seconds: float = 0.0
    budget_energy_j: float = 0.0
    energy_j: float = 0.0
    energy_over_budget_j: float = 0.0
    absorbed_j: float = 0.0
    curtailed_j: float = 0.0
    hashes: float = 0.0
    ticks: int = 0

    def add(self, dt: float, budget_w: float, energy_j: float, full_w: float, hashes: float = 0.0) -> None:
        """Book one tick of ``dt`` seconds: the budget in force, the energy drawn, the
        fleet's full power (of the miners that could run) and the hashes done."""
        if not (dt > 0 and math.isfinite(dt)):
            return
        budget_j = max(0.0, budget_w) * dt
        energy_j = max(0.0, energy_j)
        self.seconds += dt
        self.budget_energy_j += budget_j
        self.energy_j += energy_j
        self.energy_over_budget_j += max(0.0, energy_j - budget_j)
        self.absorbed_j += min(energy_j, budget_j)
        self.curtailed_j += max(0.0, max(0.0, full_w) * dt - energy_j)
        self.hashes += max(0.0, hashes)
        self.ticks += 1

    def to_json(self) -> dict[str, float | int]:
        return {
            "seconds": round(self.seconds, 3),
            "budget_energy_j": round(self.budget_energy_j, 3),
            "energy_j": round(self.energy_j, 3),
            "energy_over_budget_j": round(self.energy_over_budget_j, 3),
            "absorbed_j": round(self.absorbed_j, 3),
            "curtailed_j": round(self.curtailed_j, 3),
            "hashes": self.hashes,
            "ticks": self.ticks,
        }


def ranked(plans: Mapping[str, MinerPlan]) -> Iterable[str]:
    """Addresses in the allocator's order, cheapest first, then the unsteered."""
    return sorted(plans, key=lambda a: (plans[a].rank if plans[a].rank is not None else math.inf, a))
