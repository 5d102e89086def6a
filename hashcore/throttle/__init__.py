"""Renewable-aware throttling: follow a power budget, replay a day on a virtual clock.

::

    trace = load_trace("traces/solar-sunny.csv")              # or ConstantSignal, LiveSource
    fleet = FleetModel((BackendModel("c", 8.0, 3.6e7, threads=2),)).scaled(miner_watts=5000)
    report = simulate(trace, fleet, make_policy("follow", trace), start=trace.start, end=trace.end)
    report.figures.absorbed_fraction

    plan = LivePlan(trace, make_policy("follow", trace), fleet)
    throttle = LiveThrottle(miner, plan)   # after miner.start()
    throttle.start(); ...; throttle.status(); await throttle.stop()

    asic = FleetModel((BackendModel.from_curve("asic", device_curve("asic-bm1366")),)).scaled(3000)
    clock = VirtualClock(trace.start)
    simulate(trace, asic, policy, start=trace.start, end=trace.end, actuator="dvfs", clock=clock,
             forecast=make_forecast("clearsky", trace, clock, start=trace.start, end=trace.end),
             battery=Battery(BatteryConfig(10, 3))).account.to_json()

Modules: :mod:`clock` (real, scaled, virtual), :mod:`signals` (trace, constant, live
source), :mod:`traces` (the CSV format), :mod:`generate` (pvlib and windpowerlib),
:mod:`policies`, :mod:`devices` (efficiency curves), :mod:`model` (watts versus duty,
and operating points), :mod:`actuators` (duty, threads, GPU power limit, DVFS),
:mod:`controller`, :mod:`forecast`, :mod:`battery`, :mod:`dispatch` (the budget from
the surplus, a forecast and a battery), :mod:`figures`, :mod:`plant` (the simulated
fleet), :mod:`simulation`, :mod:`plot`, :mod:`live`, :mod:`commands` (for the CLI).
The carbon account lives in :mod:`hashcore.report`.
"""

from hashcore.throttle.actuators import (
    DutyActuator,
    DvfsActuator,
    EngineKnobs,
    GpuPowerLimit,
    Knobs,
    ThreadsActuator,
    make_chain,
)
from hashcore.throttle.battery import Battery, BatteryConfig, LiveBatteryState
from hashcore.throttle.clock import Clock, RealClock, ScaledClock, VirtualClock
from hashcore.throttle.controller import Command, Controller, ControllerConfig
from hashcore.throttle.devices import EfficiencyCurve, OperatingPoint, device_curve, load_curve
from hashcore.throttle.dispatch import DispatchConfig, Dispatcher
from hashcore.throttle.figures import FigureBook, Figures
from hashcore.throttle.forecast import (
    ClearSky,
    Forecast,
    FutureReadError,
    PastOnly,
    Perfect,
    Persistence,
    make_forecast,
)
from hashcore.throttle.live import LivePlan, LiveThrottle
from hashcore.throttle.model import BackendModel, FleetModel, load_fleet, measure_fleet
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import CarbonCap, FollowBudget, Policy, PriceCeiling, breakeven_price, make_policy
from hashcore.throttle.signals import ConstantSignal, LiveSource, Signal, SignalPoint, Trace
from hashcore.throttle.simulation import Series, SimulationReport, simulate
from hashcore.throttle.traces import load_trace, parse_trace, write_trace

__all__ = [
    "BackendModel",
    "Battery",
    "BatteryConfig",
    "CarbonCap",
    "ClearSky",
    "Clock",
    "Command",
    "ConstantSignal",
    "Controller",
    "ControllerConfig",
    "DispatchConfig",
    "Dispatcher",
    "DutyActuator",
    "DvfsActuator",
    "EfficiencyCurve",
    "EngineKnobs",
    "FigureBook",
    "Figures",
    "FleetModel",
    "FollowBudget",
    "Forecast",
    "FutureReadError",
    "GpuPowerLimit",
    "Knobs",
    "LiveBatteryState",
    "LivePlan",
    "LiveSource",
    "LiveThrottle",
    "OperatingPoint",
    "PastOnly",
    "Perfect",
    "Persistence",
    "Policy",
    "PriceCeiling",
    "RealClock",
    "ScaledClock",
    "Series",
    "Signal",
    "SignalPoint",
    "SimulatedMiner",
    "SimulationReport",
    "ThreadsActuator",
    "Trace",
    "VirtualClock",
    "breakeven_price",
    "device_curve",
    "load_curve",
    "load_fleet",
    "load_trace",
    "make_chain",
    "make_forecast",
    "make_policy",
    "measure_fleet",
    "parse_trace",
    "simulate",
    "write_trace",
]
