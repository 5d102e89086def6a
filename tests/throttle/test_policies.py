"""Policies: follow, carbon cap, price ceiling, their combination, and their gates."""

from __future__ import annotations

import math

import pytest

from hashcore.errors import ConfigError
from hashcore.throttle.policies import (
    CarbonCap,
    FollowBudget,
    PriceCeiling,
    breakeven_price,
    make_policy,
    policy_budget,
)
from hashcore.throttle.signals import ConstantSignal, SignalPoint

from .conftest import cpu_fleet, steps, two_backends


def test_follow_uses_the_whole_budget_and_no_more():
    assert policy_budget(FollowBudget(), SignalPoint(750.0), cpu_fleet()) == 750.0


def test_carbon_cap_shuts_over_the_cap_and_reopens_only_below_the_band():
    cap = CarbonCap(200.0, hysteresis=0.05)
    fleet = cpu_fleet()
    readings = [150, 199, 201, 195, 191, 189, 205]
    budgets = [policy_budget(cap, SignalPoint(500.0, g), fleet) for g in readings]
    assert budgets == [500, 500, 0, 0, 0, 500, 0]  # reopens under 190, not at 195


def test_a_missing_intensity_shuts_the_carbon_gate():
    assert CarbonCap(200.0).limit(SignalPoint(500.0, None), cpu_fleet()) == 0.0


def test_breakeven_price_of_an_asic_and_of_a_cpu():
    assert breakeven_price(50.0, 15e-12) == pytest.approx(0.1389, rel=1e-3)  # 15 J/TH
    assert breakeven_price(50.0, 1.4e-7) < 1e-4  # a CPU's hash never pays for its energy


def test_price_runs_only_the_backends_whose_hashes_pay():
    fleet = two_backends()  # c at 0.14 J/MH, reference at 4.6 J/MH
    policy = PriceCeiling(hashprice=5e7)  # a hashprice that makes both pay at some price
    c_limit = policy.price_limit(fleet.backend("c").j_per_hash)
    ref_limit = policy.price_limit(fleet.backend("reference").j_per_hash)
    assert ref_limit < c_limit
    between = (ref_limit + c_limit) / 2
    assert policy.limit(SignalPoint(2000.0, None, between), fleet) == 600.0  # only c
    assert policy.limit(SignalPoint(2000.0, None, ref_limit / 2), fleet) == math.inf  # both
    assert policy.limit(SignalPoint(2000.0, None, c_limit * 2), fleet) == 0.0  # neither


def test_a_fixed_price_ceiling_replaces_the_breakeven_price():
    policy = PriceCeiling(ceiling=0.10)
    fleet = cpu_fleet()
    assert policy.limit(SignalPoint(500.0, None, 0.09), fleet) == math.inf
    assert policy.limit(SignalPoint(500.0, None, 0.11), fleet) == 0.0


def test_a_combination_takes_the_smallest_budget():
    trace = steps([(0, 500)])
    trace.gco2_per_kwh, trace.price = [100.0], [0.5]
    policy = make_policy("carbon-cap,price", trace, carbon_cap=200, price_ceiling=0.3)
    assert policy.name == "carbon-cap,price"
    assert policy_budget(policy, SignalPoint(500.0, 100.0, 0.2), cpu_fleet()) == 500.0
    assert policy_budget(policy, SignalPoint(500.0, 100.0, 0.5), cpu_fleet()) == 0.0
    assert policy_budget(policy, SignalPoint(500.0, 300.0, 0.2), cpu_fleet()) == 0.0


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("carbon-cap", {"carbon_cap": 200}, "needs carbon intensity"),
        ("carbon-cap", {}, "needs --carbon-cap"),
        ("price", {}, "needs a price"),
        ("solar", {}, "unknown policy 'solar'"),
        ("", {}, "needs a name"),
    ],
)
def test_policies_check_what_the_signal_carries(spec, options, message):
    with pytest.raises(ConfigError, match=message):
        make_policy(spec, ConstantSignal(100.0), **options)
