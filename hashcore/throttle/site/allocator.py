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
a meter reading high) and shrinks again when it is back under. The trim is a fraction of
the budget, as the overshoot it corrects is of the power drawn: after a step down it
takes its share of the new budget, not the watts it had grown to under the old one.

An order is sent when the allotment changes by more than ``deadband_w``, or when the miner
reports a target or a state other than the one ordered (telemetry confirms every order;
a drifted miner is ordered again).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hashcore.errors import ConfigError
from hashcore.throttle.site.rules import (
    CONTROLS,
    FAILURES,
    MAX_MINER_WATTS,
    READ_ONLY,
    REFUSED,
    TARGET,
    TIMEOUT,
    MinerPlan,
    MinerReading,
    MinerRules,
    Observation,
    Order,
    SiteRules,
)

#: How much more than its most measured draw a miner held at its target is offered.
_PROBE = 1.5
#: A draw above the one before by more than this factor is still rising to its target.
_RISING = 1.02
#: Weight of each new measurement in the smoothed power and hashrate whose ratio ranks the miners.
_RANK_WEIGHT = 0.2


@dataclass(slots=True)
class _Miner:
    rules: MinerRules
    awake: bool = True
    changed_at: float = -math.inf
    control: str = READ_ONLY
    last_watts: float | None = None
    max_seen: float | None = None          # the most drawn since first seen free of its target
    at_target: bool = False                # its last draw reached its target: it may draw more
    full_known: bool = False               # seen steady below what it was asked for: max_seen is its full
    j_per_th: float | None = None
    mean_w: float | None = None            # smoothed power and hashrate while it hashed:
    mean_hs: float | None = None           # their ratio ranks it
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
        if self.max_seen is not None and self.at_target and not self.full_known:
            return self.max_seen * _PROBE  # offer more, so that it shows how much more it draws
        return self.max_seen

    def floor_w(self, full: float) -> float:
        if self.control != TARGET:
            return full
        low = self.rules.min_watts if self.rules.min_watts is not None else full / 3
        return min(max(low, self.rules.sleep_watts), full)


@dataclass(slots=True)
class _Choice:
    """One miner's share for the tick, before it is committed and ordered."""

    address: str
    miner: _Miner
    rank: int
    run: bool
    allotted: float
    floor: float
    locked: str | None
    full: float | None  # None: still learning its full power

    def drawing(self) -> float:
        """What it draws until a reading shows its order took."""
        return self.miner.last_watts if self.miner.last_watts is not None else self.allotted


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
        self._trim = 0.0  # a fraction of the budget
        self._last_t: float | None = None
        self._last_budget: float | None = None  # what the tick that ended was measured against

    @property
    def trim_w(self) -> float:
        """The trim in watts of the budget last handed out."""
        return self._trim * (self._last_budget or 0.0)

    def plans(self) -> dict[str, MinerPlan]:
        return {address: m.plan for address, m in self._miners.items()}

    def step(self, now: float, budget_w: float, observations: Mapping[str, Observation],
             measured_w: float | None = None) -> Allocation:
        """Allocate ``budget_w`` for the tick starting at ``now``.

        ``observations``: each miner's reading, or :data:`TIMEOUT` / :data:`REFUSED`
        (a miner left out counts as a timeout). ``measured_w``: the site's measured power
        over the tick that ended, held against that tick's budget (it feeds the trim).
        """
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        budget_w = max(0.0, budget_w) if math.isfinite(budget_w) else 0.0
        if self._last_budget is not None:
            self._update_trim(self._last_budget, measured_w)
        self._last_budget = budget_w
        for address, miner in self._miners.items():
            self._observe(miner, observations.get(address, TIMEOUT))
        usable = max(0.0, budget_w * (1.0 - self.rules.headroom - self._trim))
        fixed = 0.0
        steered: list[tuple[str, _Miner]] = []
        for address, miner in self._miners.items():
            if miner.failure is not None or miner.control == READ_ONLY:
                fixed += self._count_unsteered(miner)
            else:
                steered.append((address, miner))
        steered.sort(key=lambda item: _rank_key(item[0], item[1], self.rules.rank_margin))
        # Locked-on miners keep their floor before anyone is given more.
        kept = {address: _kept_on(miner, now) for address, miner in steered}
        remaining = usable - fixed - sum(m.rules.sleep_watts + kept[a] for a, m in steered)
        wakes = 0
        rise_left = math.inf if self.rules.site_ramp_w_per_s is None else self.rules.site_ramp_w_per_s * dt
        choices: list[_Choice] = []
        for rank, (address, miner) in enumerate(steered):
            # What was set aside for it is its own again.
            choice = self._choose(address, miner, rank, now, dt, remaining + kept[address], wakes, rise_left)
            remaining -= choice.allotted - miner.rules.sleep_watts - kept[address]
            waking = choice.run and not miner.awake
            wakes += waking
            if waking or miner.control == TARGET:  # one running whole does not rise
                before = _rise_base(miner, waking)
                rise_left -= max(0.0, choice.allotted - (choice.floor if before is None else before))
            choices.append(choice)
        _hold_rises(choices, usable - fixed)
        orders: list[Order] = []
        allotted_total = fixed
        for choice in choices:
            self._commit(choice, now, orders)
            allotted_total += choice.allotted
        counted = sum(m.plan.counted_w for m in self._miners.values())
        return Allocation(tuple(orders), self.plans(), usable, counted, allotted_total)

    # --- one miner ---------------------------------------------------------------------

    def _observe(self, miner: _Miner, observation: Observation) -> None:
        if isinstance(observation, MinerReading):
            if observation.control not in CONTROLS:
                raise ConfigError(f"unknown control {observation.control!r}")
            miner.failure = None
            miner.control = observation.control
            target = miner.reported_target = _finite(observation.target_w)
            miner.reported_asleep = observation.asleep
            watts = _finite(observation.watts)
            rate = _finite(observation.hashrate_hs)
            if miner.ordered_awake is None:  # first contact: take it as it is
                if miner.awake == observation.asleep:
                    # It switched by itself while down (a restart): the site set no lock on that.
                    miner.changed_at = -math.inf
                miner.awake = miner.ordered_awake = not observation.asleep
            if watts is not None:
                # Its full power shows where what it was asked for did not hold it back
                # (then it is learnt); every draw after that is a floor under it. A draw
                # held at its target is offered more; one still rising keeps the offer; one
                # that stopped rising below what it was asked for is all it draws. A draw no
                # more than its sleep power (resumed, not hashing yet) says nothing of it.
                asked = miner.ordered_w if miner.ordered_w is not None else target
                free = asked is None or watts < 0.9 * asked
                before = miner.last_watts
                hashing = not observation.asleep and watts > miner.rules.sleep_watts
                if hashing and (free or miner.max_seen is not None):
                    miner.max_seen = watts if miner.max_seen is None else max(miner.max_seen, watts)
                    if not free:
                        miner.at_target = True
                    elif before is not None and watts <= before * _RISING:
                        miner.at_target, miner.full_known = False, True
                miner.last_watts = watts
                if not observation.asleep and rate and rate > 0 and watts > 0:
                    # A ratio of smoothed figures, not a smoothed ratio: a tick of next to no
                    # hashing (a miner just woken, held near zero) weighs next to nothing.
                    miner.mean_w = _smoothed(miner.mean_w, watts)
                    miner.mean_hs = _smoothed(miner.mean_hs, rate)
                    # Next to no hashes for its power (a few H/s: a miner's nonsense, or one
                    # stalled): dearer than any other, never a division by zero.
                    miner.j_per_th = miner.mean_w / miner.mean_hs * 1e12 if miner.mean_hs > 0 else math.inf
        elif observation in FAILURES:
            miner.failure = observation
            if observation == REFUSED:
                # Nothing runs there: when it returns it starts as it likes, confirmed by its
                # reading, and may be another machine: its full power is learnt again.
                miner.ordered_awake = None
                miner.ordered_w = None
                miner.full_known = False
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
                               since=miner.changed_at, full_w=full)
        return counted

    def _choose(self, address: str, miner: _Miner, rank: int, now: float, dt: float, remaining: float,
                wakes: int, rise_left: float) -> _Choice:
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
            full = min(max(remaining + sleep_w, sleep_w + 1.0), MAX_MINER_WATTS)
            learning = True
        else:
            learning = False
        floor = miner.floor_w(full)
        need = floor - sleep_w
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
                allotted = self._ramped(miner, allotted, dt, rise_left, floor, waking=not miner.awake)
        else:
            allotted = full
        return _Choice(address, miner, rank, run, allotted, floor, locked, None if learning else full)

    def _commit(self, choice: _Choice, now: float, orders: list[Order]) -> None:
        miner, run = choice.miner, choice.run
        waking = run and not miner.awake
        if run != miner.awake:
            miner.awake, miner.changed_at = run, now
        state = "on" if run else "asleep"
        if waking:
            state = "waking"
        elif not run and miner.reported_asleep is False:
            state = "sleeping"
        self._orders(choice.address, miner, run, choice.allotted if run and miner.control == TARGET else None, orders,
                     now)
        counted = miner.last_watts if miner.last_watts is not None else choice.allotted
        miner.plan = MinerPlan(state, allotted_w=choice.allotted, counted_w=counted, j_per_th=miner.j_per_th,
                               rank=choice.rank, since=miner.changed_at, locked=choice.locked, full_w=choice.full)

    def _ramped(self, miner: _Miner, allotted: float, dt: float, rise_left: float, floor: float, *,
                waking: bool) -> float:
        before = _rise_base(miner, waking)
        if before is None:
            before = floor
        # A rise the site's ramp has no room for waits; it never cuts what was sent before.
        limit = before + max(0.0, min(rise_left, math.inf if miner.rules.ramp_w_per_s is None
                                      else miner.rules.ramp_w_per_s * dt))
        return max(floor, min(allotted, limit)) if allotted > before else allotted

    def _orders(self, address: str, miner: _Miner, run: bool, target: float | None, orders: list[Order],
                now: float) -> None:
        confirm = self.rules.confirm_ticks
        miner.state_drift = miner.state_drift + 1 if miner.reported_asleep == run else 0
        miner.target_drift = miner.target_drift + 1 if (
            target is not None and miner.ordered_w is not None
            and (miner.reported_target is None or abs(miner.reported_target - miner.ordered_w) > max(
                self.rules.deadband_w, 0.02 * miner.ordered_w))) else 0
        if target is not None and (miner.ordered_w is None or abs(miner.ordered_w - target) > self.rules.deadband_w
                                   or miner.target_drift >= confirm):
            # Before a wake: the miner starts at its new target, not its old one.
            orders.append(Order(address, "target", float(f"{target:.6g}")))  # a chip may draw microwatts
            miner.ordered_w, miner.target_drift = target, 0
        if miner.ordered_awake != run or miner.state_drift >= confirm:
            if miner.ordered_awake == run:
                # Sent again to a miner in the other state: this switches it, and the lock counts from here.
                miner.changed_at = now
            orders.append(Order(address, "wake" if run else "sleep"))
            miner.ordered_awake, miner.state_drift = run, 0

    def _update_trim(self, budget_w: float, measured_w: float | None) -> None:
        if measured_w is None or not math.isfinite(measured_w) or budget_w <= 0:
            return
        excess = measured_w / budget_w - (1.0 - self.rules.headroom / 2)
        self._trim = min(0.25, max(0.0, self._trim + self.rules.trim_gain * excess))


def _hold_rises(choices: list[_Choice], room: float) -> None:
    """A rise waits for the cuts that make room for it: a miner told to draw less draws
    what it drew until its next reading shows the cut. Where the fleet's draw so counted
    would pass ``room``, the dearest rises are held back first (a wake that no longer
    fits waits a tick asleep)."""
    excess = sum(max(c.allotted, c.drawing()) for c in choices) - room
    for choice in reversed(choices):
        if excess <= 1e-9:
            return
        drawing = choice.drawing()
        if not choice.run or choice.allotted <= drawing or choice.locked is not None:
            continue
        before = choice.allotted
        held = max(drawing, before - excess)
        if not choice.miner.awake and (choice.miner.control != TARGET or held < choice.floor):
            choice.run, choice.allotted = False, choice.miner.rules.sleep_watts
        elif choice.miner.control == TARGET:
            choice.allotted = max(held, choice.floor)
        excess -= max(before, drawing) - max(choice.allotted, drawing)


def _kept_on(miner: _Miner, now: float) -> float:
    """What a miner switched on less than ``min_on_s`` ago keeps above its sleep power before
    the budget is shared: its floor (0: not locked on, or its full power not known yet)."""
    full = miner.full_w()
    if not miner.awake or now - miner.changed_at >= miner.rules.min_on_s or full is None:
        return 0.0
    return miner.floor_w(full) - miner.rules.sleep_watts


def _rise_base(miner: _Miner, waking: bool) -> float | None:
    """Where a miner's rise is measured from, for its ramp and the site's: a miner waking
    rises from its sleep, not from the target it had before it slept; a running one from
    the target last sent, else its draw (None: neither known, its floor)."""
    if waking:
        return miner.rules.sleep_watts
    return miner.ordered_w if miner.ordered_w is not None else miner.last_watts


def _rank_key(address: str, miner: _Miner, margin: float) -> tuple[float, str]:
    j = miner.j_per_th if miner.j_per_th is not None else miner.rules.j_per_th
    if j is None:
        return (math.inf, address)
    return (j * (1.0 - margin) if miner.awake else j, address)  # a running miner keeps its place


def _smoothed(mean: float | None, value: float) -> float:
    return value if mean is None else mean + _RANK_WEIGHT * (value - mean)


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def ranked(plans: Mapping[str, MinerPlan]) -> Iterable[str]:
    """Addresses in the allocator's order, cheapest first, then the unsteered."""
    return sorted(plans, key=lambda a: (plans[a].rank if plans[a].rank is not None else math.inf, a))
