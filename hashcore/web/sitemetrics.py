"""Prometheus metrics of a site: the budget, the site's power and energy, each miner.

:class:`SiteCollector` reads one :meth:`SiteSource.view` per scrape, so a scrape, the site
page and ``hashcore site --json`` taken at the same moment show the same figures. The
counters (``*_total``) are the site's books since the controller started; a figure the
site does not know yet (its power before the second tick, a miner's hashrate before it
reports one) is left out rather than shown as zero.

Metrics (``address``, ``kind``, ``state``, ``control``, ``basis`` are labels)::

    hashcore_site_budget_watts                        the budget in force
    hashcore_site_surplus_watts                       the signal's watts before the policy
    hashcore_site_usable_watts                        what the allocator may hand out
    hashcore_site_power_watts                         the site's measured power (absent before measured)
    hashcore_site_energy_joules_total                 energy the miners drew
    hashcore_site_budget_energy_joules_total          the budget's energy
    hashcore_site_over_budget_joules_total            energy drawn above the budget
    hashcore_site_absorbed_joules_total               energy drawn inside the budget
    hashcore_site_curtailed_joules_total              energy the miners gave up for the budget
    hashcore_site_hashes_total                        hashes done
    hashcore_site_ticks_total                         ticks booked
    hashcore_site_tick_cost_seconds                   how long the last tick's work took
    hashcore_site_co2_grams{basis="location"|"market"}  emissions so far (where an intensity is known)
    hashcore_site_miner_power_watts{address,kind}     measured, or counted while it does not answer
    hashcore_site_miner_allotted_watts{address,kind}  what the allocator gave it
    hashcore_site_miner_target_watts{address,kind}    the power target it holds (where it holds one)
    hashcore_site_miner_hashrate_hashes_per_second{address,kind}
    hashcore_site_miner_joules_per_terahash{address,kind}
    hashcore_site_miner_energy_joules_total{address,kind}
    hashcore_site_miner_state{address,kind,state}     1 for its state, 0 for the others
    hashcore_site_miner_control_info{address,kind,control}  target, sleep or none

Addresses and kinds come from the operator's configuration and may hold any character;
the exposition format escapes them in label values, so no label can end early or add a
line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from hashcore.app.site.view import SiteMinerView, SiteSource, SiteView
from hashcore.throttle.site import STATES

_MINER = ["address", "kind"]


class SiteCollector(Collector):
    """Turns one ``source.view()`` per scrape into metric families."""

    def __init__(self, source: SiteSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        view = self.source.view()
        yield from _site(view)
        yield from _miners(view.miners)


def _known(value: float | None) -> float | None:
    """The figure, or None where it is unknown (None, NaN or infinite, as the JSON has it)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    """A family of one sample, or nothing while the figure is unknown."""
    known = _known(value)
    if known is not None:
        yield GaugeMetricFamily(name, documentation, value=known)


def _site(view: SiteView) -> Iterator[Metric]:
    yield from _gauge("hashcore_site_budget_watts", "The power budget in force", view.budget_w)
    yield from _gauge("hashcore_site_surplus_watts", "The signal's watts before the policy", view.surplus_w)
    yield from _gauge("hashcore_site_usable_watts", "What the allocator may hand out (budget less headroom and trim)",
                      view.usable_w)
    yield from _gauge("hashcore_site_power_watts", "The site's measured power over the last tick", view.measured_w)
    books = (
        ("hashcore_site_energy_joules_total", "Energy the miners drew", view.energy_j),
        ("hashcore_site_budget_energy_joules_total", "The budget's energy", view.budget_energy_j),
        ("hashcore_site_over_budget_joules_total", "Energy drawn above the budget", view.energy_over_budget_j),
        ("hashcore_site_absorbed_joules_total", "Energy drawn inside the budget", view.absorbed_j),
        ("hashcore_site_curtailed_joules_total", "Energy the miners gave up for the budget", view.curtailed_j),
        ("hashcore_site_hashes_total", "Hashes done", view.hashes),
        ("hashcore_site_ticks_total", "Ticks booked", view.ticks),
    )
    for name, documentation, value in books:
        yield CounterMetricFamily(name, documentation, value=float(value))
    yield from _gauge("hashcore_site_tick_cost_seconds", "How long the last tick's work took", view.last_tick_cost_s)
    co2 = GaugeMetricFamily("hashcore_site_co2_grams", "Emissions so far by accounting basis", labels=["basis"])
    for basis, grams in (("location", view.co2_location_g), ("market", view.co2_market_g)):
        known = _known(grams)
        if known is not None:
            co2.add_metric([basis], known)
    if co2.samples:
        yield co2


def _miners(miners: Sequence[SiteMinerView]) -> Iterator[Metric]:
    watts = GaugeMetricFamily("hashcore_site_miner_power_watts",
                              "Its power: measured, or counted while it does not answer", labels=_MINER)
    allotted = GaugeMetricFamily("hashcore_site_miner_allotted_watts", "What the allocator gave it", labels=_MINER)
    target = GaugeMetricFamily("hashcore_site_miner_target_watts", "The power target it holds", labels=_MINER)
    rate = GaugeMetricFamily("hashcore_site_miner_hashrate_hashes_per_second", "Its measured hashrate",
                             labels=_MINER)
    j_per_th = GaugeMetricFamily("hashcore_site_miner_joules_per_terahash", "Its measured efficiency", labels=_MINER)
    energy = CounterMetricFamily("hashcore_site_miner_energy_joules_total", "The energy the site booked for it",
                                 labels=_MINER)
    state = GaugeMetricFamily("hashcore_site_miner_state", "1 for the miner's state, 0 for the others",
                              labels=[*_MINER, "state"])
    control = InfoMetricFamily("hashcore_site_miner_control", "How the site can steer it", labels=_MINER)
    for miner in miners:
        key = [miner.address, miner.kind]
        for family, value in ((watts, miner.watts), (target, miner.target_w), (rate, miner.hashrate_hs),
                              (j_per_th, miner.j_per_th)):
            known = _known(value)
            if known is not None:
                family.add_metric(key, known)
        allotted.add_metric(key, float(miner.allotted_w))
        energy.add_metric(key, float(miner.energy_j))
        # A state outside the known ones still shows, as the one that is 1.
        for name in STATES if miner.state in STATES else (*STATES, miner.state):
            state.add_metric([*key, name], 1.0 if name == miner.state else 0.0)
        control.add_metric(key, {"control": miner.control})
    yield from (watts, allotted, target, rate, j_per_th, energy, state, control)
