"""What a throttle run is made of, from its options: the policy, the fleet's power model,
the site battery and the carbon account's settings.

:class:`ThrottleOptions` holds what ``hashcore simulate`` and ``hashcore mine
--power-budget`` share (their flags, or a config file's ``[throttle]`` section); the
functions here turn it into the throttle core's objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashcore.app.devices import measure_fleet
from hashcore.app.inputs import load_fleet
from hashcore.backends.base import resolve_names
from hashcore.errors import ConfigError
from hashcore.metering import MeterSettings
from hashcore.report.account import AccountSettings
from hashcore.throttle.battery import BatteryConfig
from hashcore.throttle.model import FleetModel
from hashcore.throttle.policies import Policy, make_policy
from hashcore.throttle.signals import Signal

#: Defaults of the options a config file's [throttle] section may also set.
DEFAULTS: dict[str, Any] = {"policy": "follow", "hashprice": 50.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleOptions:
    """The options of a throttled run (simulated or live); None: not given.

    Attributes:
        policy / carbon_cap / hashprice / price_ceiling: the policy (:func:`make_policy`).
        interpolation: between a trace's rows (None: the file's, else linear).
        model / bench_seconds: the power model's file, else a benchmark this long.
        actuator: ``duty`` or ``dvfs``.
        battery_*: a site battery (none without ``battery_kwh``).
        budget_source / grid_intensity / contract_gco2 / share_difficulty: the carbon
            account (:class:`~hashcore.report.account.AccountSettings`).
        powercap_root / tdp_watts_per_core: the meters of a benchmark.
    """

    policy: str | None = None
    carbon_cap: float | None = None
    hashprice: float | None = None
    price_ceiling: float | None = None
    interpolation: str | None = None
    model: str | None = None
    bench_seconds: float = 1.0
    actuator: str = "duty"
    battery_kwh: float | None = None
    battery_kw: float | None = None
    battery_efficiency: float = 0.92
    battery_soc_min: float = 0.10
    battery_soc_max: float = 0.95
    battery_soc_start: float = 0.50
    budget_source: str = "auto"
    grid_intensity: float | None = None
    contract_gco2: float | None = None
    share_difficulty: float = 65_536.0
    powercap_root: str | None = None
    tdp_watts_per_core: float | None = None


def option(options: Any, name: str, settings: Mapping[str, Any] | None = None) -> Any:
    """An option's value, else the config file's, else the default."""
    value = getattr(options, name, None)
    if value is None and settings:
        value = settings.get(name)
    return DEFAULTS.get(name) if value is None else value


def policy_for(options: ThrottleOptions, signal: Signal, settings: Mapping[str, Any] | None = None) -> Policy:
    return make_policy(
        str(option(options, "policy", settings)),
        signal,
        carbon_cap=option(options, "carbon_cap", settings),
        hashprice=float(option(options, "hashprice", settings)),
        price_ceiling=option(options, "price_ceiling", settings),
    )


def listed_backends(text: str) -> list[str]:
    """Backend names from a comma-separated list, as given (``auto`` kept)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--backend needs at least one name")
    return names


def backend_names(text: str) -> list[str]:
    """Backend names from a comma-separated list, ``auto`` resolved."""
    return resolve_names(listed_backends(text))


def fleet_for(options: ThrottleOptions, names: list[str], threads: int | None) -> FleetModel:
    """The model file's fleet, else one benchmarked now (about ``bench_seconds`` a backend)."""
    if options.model:
        return load_fleet(options.model)
    settings = MeterSettings(options.powercap_root, options.tdp_watts_per_core)
    return measure_fleet(names, threads, options.bench_seconds, meter_settings=settings)


def battery_config(options: ThrottleOptions) -> BatteryConfig | None:
    if options.battery_kwh is None:
        if options.battery_kw is not None:
            raise ConfigError("--battery-kw needs --battery-kwh")
        return None
    power = options.battery_kw if options.battery_kw is not None else options.battery_kwh / 2
    return BatteryConfig(options.battery_kwh, power, options.battery_efficiency, options.battery_soc_min,
                         options.battery_soc_max, options.battery_soc_start)


def account_settings(options: ThrottleOptions, signal: Signal) -> AccountSettings:
    source = options.budget_source
    if source == "auto":
        source = "grid" if signal.has_carbon else "surplus"
    return AccountSettings(source, options.grid_intensity, options.contract_gco2, options.share_difficulty)
