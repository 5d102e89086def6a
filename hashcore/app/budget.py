"""``hashcore mine --power-budget``: the live throttle's plan, decided before the miner
starts, and the run folder written after it stops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.app.inputs import load_trace
from hashcore.app.live import LivePlan, LiveThrottle
from hashcore.app.plan import (
    ThrottleOptions,
    account_settings,
    backend_names,
    battery_config,
    fleet_for,
    option,
    policy_for,
)
from hashcore.app.sources import LiveBatteryState, LiveSource
from hashcore.errors import ConfigError
from hashcore.throttle.controller import ControllerConfig
from hashcore.throttle.model import FleetModel
from hashcore.throttle.signals import ConstantSignal, Signal


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetOptions(ThrottleOptions):
    """The power budget a miner follows (None: not given; a config file may give it).

    Attributes:
        power_budget: a trace CSV, a constant in watts, or a live file/URL.
        budget_poll: read a file as a live source this often (URLs: default 10 s).
        budget_align: replay a trace from its first row (start) or at its wall-clock times.
        budget_scale: multiply a trace's or a constant's watts.
        throttle_tick: the controller tick, seconds.
        idle_watts: the host's idle power (None: 0 for the estimate, else measured).
        battery_state: a site battery's state of charge, a file or URL.
        account_dir: where to write the run and its carbon account at the end.
    """

    power_budget: str | None = None
    budget_poll: float | None = None
    budget_align: str = "start"
    budget_scale: float = 1.0
    throttle_tick: float = 1.0
    idle_watts: float | None = None
    battery_state: str | None = None
    account_dir: str | None = None


def budget_signal(options: BudgetOptions, settings: Mapping[str, Any] | None = None) -> Signal:
    """The signal ``power_budget`` (or the config's ``power_budget``) names."""
    spec = str(option(options, "power_budget", settings)).strip()
    policy = str(option(options, "policy", settings))
    wants_carbon = "carbon-cap" in policy
    wants_price = "price" in policy
    try:
        watts = float(spec)
    except ValueError:
        pass
    else:
        return ConstantSignal(watts * options.budget_scale)
    if spec.startswith(("http://", "https://")) or options.budget_poll is not None:
        if options.budget_scale != 1.0:
            raise ConfigError("--budget-scale applies to traces and constants, not live sources")
        return LiveSource(spec, options.budget_poll or 10.0, has_carbon=wants_carbon, has_price=wants_price)
    interpolation = option(options, "interpolation", settings)
    if interpolation not in (None, "step", "linear"):
        raise ConfigError(f"interpolation must be step or linear, not {interpolation!r}")
    trace = load_trace(spec, interpolation)
    return trace.scaled(options.budget_scale) if options.budget_scale != 1.0 else trace


def plan_budget(
    options: BudgetOptions,
    backends: list[str],
    threads: int | None = None,
    settings: Mapping[str, Any] | None = None,
) -> LivePlan | None:
    """The live throttle's plan for ``hashcore mine`` (None without a power budget).

    ``settings`` is the config file's ``[throttle]`` section (power_budget, policy,
    carbon_cap, price_ceiling, hashprice, interpolation); options override it. Call it
    before the miner starts: without ``model`` it benchmarks each backend for
    ``bench_seconds`` (about a second each) to model its power.
    """
    if option(options, "power_budget", settings) is None:
        return None
    signal = budget_signal(options, settings)
    policy = policy_for(options, signal, settings)
    names = backend_names(",".join(backends))
    fleet = fleet_for(options, names, threads)
    missing = [n for n in names if n not in fleet.names]
    if missing:
        raise ConfigError(f"the power model {options.model} has no figures for {', '.join(missing)} "
                          "(bench it: hashcore bench --all --json)")
    fleet = FleetModel(tuple(b for b in fleet.backends if b.name in names))  # a bench --all file has more
    battery = None
    config = battery_config(options)
    if options.battery_state:
        if config is None:
            raise ConfigError("--battery-state needs the battery's size: --battery-kwh (and --battery-kw)")
        battery = LiveBatteryState(options.battery_state, config, options.budget_poll or 10.0)
    elif config is not None:
        raise ConfigError("a live battery's state comes from --battery-state FILE|URL")
    if options.actuator == "dvfs":
        flat = [b.name for b in fleet.backends if b.curve is None]
        if flat:
            raise ConfigError(f"--actuator dvfs needs operating points for {', '.join(flat)}: "
                              "--model FILE from 'hashcore bench --sweep --json'")
    return LivePlan(signal=signal, policy=policy, fleet=fleet, tick_s=options.throttle_tick,
                    align=options.budget_align, idle_watts=options.idle_watts, config=ControllerConfig(),
                    battery=battery, account=account_settings(options, signal), actuator=options.actuator)


def write_live_run(options: BudgetOptions, throttle: LiveThrottle) -> str | None:
    """After ``hashcore mine --account-dir DIR``: write the run and its carbon account
    (None when no directory is given)."""
    if not options.account_dir:
        return None
    return throttle.write_run(options.account_dir)
