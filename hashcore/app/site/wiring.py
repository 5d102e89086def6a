"""What a site file opens: each miner's link (the cgminer API for hashcore and cgminer,
pyasic for the firmwares it knows), the budget's signal, policy and carbon account, the
forecast and the battery. An error names the site file (and the key where one is to blame)."""

from __future__ import annotations

from hashcore.app.budget import BudgetOptions, budget_signal
from hashcore.app.plan import AccountSettings, account_settings, battery_config, policy_for
from hashcore.app.simulate import solar_site
from hashcore.app.site.config import CGMINER_KINDS, MinerEntry, SiteConfig
from hashcore.app.site.links import MinerLink
from hashcore.app.sources import LiveBatteryState
from hashcore.errors import ConfigError
from hashcore.throttle.battery import Battery
from hashcore.throttle.clock import Clock
from hashcore.throttle.forecast import Forecast, make_forecast
from hashcore.throttle.policies import Policy
from hashcore.throttle.signals import Signal


def open_link(entry: MinerEntry) -> MinerLink:
    """The link for one ``[[miners]]`` entry (pyasic is imported only for its kinds)."""
    if entry.kind in CGMINER_KINDS:
        from hashcore.app.site.cgminer import CgminerLink

        return CgminerLink(entry.address, entry.kind, timeout_s=entry.timeout_s)
    from hashcore.app.site.pyasic_link import PyasicLink

    return PyasicLink(entry.address, entry.kind, username=entry.username, password=entry.password,
                      timeout_s=entry.timeout_s)


def site_budget(config: SiteConfig) -> tuple[Signal, Policy, AccountSettings]:
    """The budget's signal (read once here: a trace that cannot be read fails now), its policy
    and the carbon account's settings."""
    options = BudgetOptions(power_budget=config.power_budget, budget_poll=config.budget_poll,
                            budget_align=config.budget_align, budget_scale=config.budget_scale,
                            policy=config.budget.policy, carbon_cap=config.budget.carbon_cap,
                            interpolation=config.budget.interpolation)
    try:
        signal = budget_signal(options)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: site.power_budget {config.power_budget!r}: {exc}") from None
    try:
        return signal, policy_for(config.budget, signal), account_settings(config.budget, signal)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: [site] {exc}") from None


def site_battery(config: SiteConfig) -> tuple[Battery | None, LiveBatteryState | None]:
    """The battery: modelled from its size, or read live from ``battery_state`` (None: none)."""
    try:
        settings = battery_config(config.budget)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: [site] {exc}") from None
    if config.battery_state:
        if settings is None:
            raise ConfigError(f"{config.source}: battery_state needs the battery's size: battery_kwh "
                              "(and battery_kw)")
        return None, LiveBatteryState(config.battery_state, settings, config.budget_poll or 10.0)
    return (Battery(settings) if settings is not None else None), None


def site_forecast(config: SiteConfig, signal: Signal, clock: Clock) -> Forecast | None:
    """The forecast the dispatcher plans the battery with (None: none), a week from now."""
    start = clock.now()
    try:
        site = solar_site(config.budget, getattr(signal, "utc_offset_s", 0.0))
        return make_forecast(config.budget.forecast, signal, clock, site=site, start=start, end=start + 7 * 86_400)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: [site] {exc}") from None
