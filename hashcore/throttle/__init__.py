"""Renewable-aware throttling: follow a power budget, replay a day on a virtual clock.

::

    trace = load_trace("traces/solar-sunny.csv")              # or ConstantSignal, LiveSource
    fleet = FleetModel((BackendModel("c", 8.0, 3.6e7, threads=2),)).scaled(miner_watts=5000)
    report = simulate(trace, fleet, make_policy("follow", trace), start=trace.start, end=trace.end)
    report.figures.absorbed_fraction

    plan = LivePlan(trace, make_policy("follow", trace), fleet)
    throttle = LiveThrottle(miner, plan)   # after miner.start()
    throttle.start(); ...; throttle.status(); await throttle.stop()

Modules: :mod:`clock` (real, scaled, virtual), :mod:`signals` (trace, constant, live
source), :mod:`traces` (the CSV format), :mod:`generate` (pvlib and windpowerlib),
:mod:`policies`, :mod:`model` (watts versus duty), :mod:`actuators`,
:mod:`controller`, :mod:`figures`, :mod:`plant` (the simulated fleet),
:mod:`simulation`, :mod:`plot`, :mod:`live`, :mod:`commands` (for the CLI).
"""

from hashcore.throttle.actuators import DutyActuator, EngineKnobs, GpuPowerLimit, Knobs, ThreadsActuator
from hashcore.throttle.clock import Clock, RealClock, ScaledClock, VirtualClock
from hashcore.throttle.controller import Command, Controller, ControllerConfig
from hashcore.throttle.figures import FigureBook, Figures
from hashcore.throttle.live import LivePlan, LiveThrottle
from hashcore.throttle.model import BackendModel, FleetModel, load_fleet, measure_fleet
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import CarbonCap, FollowBudget, Policy, PriceCeiling, breakeven_price, make_policy
from hashcore.throttle.signals import ConstantSignal, LiveSource, Signal, SignalPoint, Trace
from hashcore.throttle.simulation import Series, SimulationReport, simulate
from hashcore.throttle.traces import load_trace, parse_trace, write_trace

__all__ = [
    "BackendModel",
    "CarbonCap",
    "Clock",
    "Command",
    "ConstantSignal",
    "Controller",
    "ControllerConfig",
    "DutyActuator",
    "EngineKnobs",
    "FigureBook",
    "Figures",
    "FleetModel",
    "FollowBudget",
    "GpuPowerLimit",
    "Knobs",
    "LivePlan",
    "LiveSource",
    "LiveThrottle",
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
    "load_fleet",
    "load_trace",
    "make_policy",
    "measure_fleet",
    "parse_trace",
    "simulate",
    "write_trace",
]
