"""Renewable-aware throttling, the control core: follow a power budget, replay a day on a
virtual clock. Pure logic: no files, devices, engine or network (the application,
:mod:`hashcore.app`, reads traces and live sources and drives real miners with it).

::

    trace = parse_trace(text.splitlines(), "solar-sunny")     # or ConstantSignal
    fleet = FleetModel((BackendModel("c", 8.0, 3.6e7, threads=2),)).scaled(miner_watts=5000)
    report = simulate(trace, fleet, make_policy("follow", trace), start=trace.start, end=trace.end)
    report.figures.absorbed_fraction

    gpu = FleetModel((BackendModel.from_curve("gpu", pstate_curve("gpu"), kind="gpu"),)).scaled(3000)
    clock = VirtualClock(trace.start)
    simulate(trace, gpu, policy, start=trace.start, end=trace.end, actuator="dvfs", clock=clock,
             forecast=make_forecast("clearsky", trace, clock, start=trace.start, end=trace.end),
             battery=Battery(BatteryConfig(10, 3))).account.to_json()

Modules: :mod:`clock` (real, scaled, virtual), :mod:`signals` (trace, constant),
:mod:`traces` (the CSV format, live readings' text), :mod:`generate`, :mod:`wind` and
:mod:`grid` (generated traces: pvlib and windpowerlib), :mod:`policies`, :mod:`devices`
(efficiency curves), :mod:`model` (watts versus duty, and operating points),
:mod:`actuators` (duty, threads, DVFS; chains), :mod:`controller`, :mod:`forecast`,
:mod:`battery`, :mod:`dispatch` (the budget from the surplus, a forecast and a battery),
:mod:`figures`, :mod:`plant` (the simulated fleet), :mod:`simulation`. The carbon
account lives in :mod:`hashcore.report`; the live loop, live sources, device actuators
and the commands in :mod:`hashcore.app`.
"""

from hashcore.throttle.actuators import DutyActuator, DvfsActuator, Knobs, ThreadsActuator, make_chain
from hashcore.throttle.battery import Battery, BatteryConfig
from hashcore.throttle.clock import Clock, RealClock, ScaledClock, VirtualClock
from hashcore.throttle.controller import Command, Controller, ControllerConfig
from hashcore.throttle.devices import EfficiencyCurve, OperatingPoint, pstate_curve
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
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import CarbonCap, FollowBudget, Policy, PriceCeiling, breakeven_price, make_policy
from hashcore.throttle.signals import ConstantSignal, Signal, SignalPoint, Trace
from hashcore.throttle.simulation import Series, SimulationReport, simulate
from hashcore.throttle.traces import parse_trace, trace_text

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
    "FigureBook",
    "Figures",
    "FleetModel",
    "FollowBudget",
    "Forecast",
    "FutureReadError",
    "Knobs",
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
    "make_chain",
    "make_forecast",
    "make_policy",
    "parse_trace",
    "pstate_curve",
    "simulate",
    "trace_text",
]
