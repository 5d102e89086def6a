"""Energy telemetry: RAPL, NVML, ASIC-reported power, or a labelled estimate."""

from hashcore.telemetry.base import EnergyMeter, EnergySample, NullMeter

__all__ = ["EnergyMeter", "EnergySample", "NullMeter"]
