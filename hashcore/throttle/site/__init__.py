"""A site's budget shared across many miners (pure): :mod:`~hashcore.throttle.site.rules`
(the vocabulary), :mod:`~hashcore.throttle.site.allocator` (who runs, at what power, each
tick) and :mod:`~hashcore.throttle.site.book` (the site's energy figures)."""

from hashcore.throttle.site.allocator import Allocation, SiteAllocator, ranked
from hashcore.throttle.site.book import SiteBook
from hashcore.throttle.site.rules import (
    CONTROLS,
    FAILURES,
    MAX_MINER_HASHRATE_HS,
    MAX_MINER_WATTS,
    READ_ONLY,
    REFUSED,
    SLEEP,
    STATES,
    TARGET,
    TIMEOUT,
    MinerPlan,
    MinerReading,
    MinerRules,
    Observation,
    Order,
    SiteRules,
)

__all__ = [
    "CONTROLS", "FAILURES", "MAX_MINER_HASHRATE_HS", "MAX_MINER_WATTS", "READ_ONLY", "REFUSED", "SLEEP", "STATES",
    "TARGET", "TIMEOUT", "Allocation",
    "MinerPlan", "MinerReading", "MinerRules", "Observation", "Order", "SiteAllocator", "SiteBook", "SiteRules",
    "ranked",
]
