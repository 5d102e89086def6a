"""Efficiency curves and the DVFS actuator: the operating point with the most hashes per
joule that fits, duty cycling only below the most efficient one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashcore.app.devices import device_curve
from hashcore.app.inputs import load_curve, load_fleet
from hashcore.errors import ConfigError
from hashcore.throttle.actuators import DutyActuator, DvfsActuator, apply_chain, make_chain
from hashcore.throttle.devices import DEVICE_MODELS, EfficiencyCurve, OperatingPoint
from hashcore.throttle.model import BackendModel, FleetModel
from hashcore.throttle.plant import SimulatedMiner
from hashcore.throttle.policies import make_policy
from hashcore.throttle.simulation import simulate

from .conftest import steps


def asic_fleet(watts: float = 6000.0, paused: float = 0.0) -> FleetModel:
    backend = BackendModel.from_curve("asic", device_curve("asic-bm1366"))
    return FleetModel((backend,)).scaled(watts, paused_watts=paused or None)


def test_the_envelope_starts_at_the_most_efficient_point_and_drops_points_under_it():
    curve = EfficiencyCurve("toy", (
        OperatingPoint(100, None, 100.0, 50.0),   # 2.0 J/H: beaten by duty-cycling the next point
        OperatingPoint(200, None, 300.0, 100.0),  # 0.33 J/H: the most efficient
        OperatingPoint(300, None, 380.0, 200.0),  # under the line from 200 to 400 MHz
        OperatingPoint(400, None, 500.0, 300.0),
    ))
    assert [p.freq_mhz for p in curve.envelope()] == [200, 400]
    mix, duty = curve.for_power(50.0)
    assert (mix.low.freq_mhz, duty) == (200, 0.5)  # duty only below the most efficient point
    mix, duty = curve.for_power(200.0)
    assert duty == 1.0 and mix.share == pytest.approx(0.5) and mix.hashrate_hs == pytest.approx(400.0)
    assert curve.hashrate_at(200.0) > 380.0  # more than the 300 MHz point gives for the same power
    assert curve.for_power(1000.0)[0].high.freq_mhz == 400


def test_the_device_models_run_from_slow_and_cheap_to_stock():
    for name in DEVICE_MODELS:
        curve = device_curve(name)
        assert curve.top.j_per_th == max(p.j_per_th for p in curve.envelope())
        assert curve.best.j_per_th < 0.85 * curve.top.j_per_th
    asic = device_curve("asic-bm1366")
    assert (asic.top.freq_mhz, asic.top.voltage_mv, round(asic.top.j_per_th, 2)) == (485.0, 1200.0, 21.5)
    assert asic.envelope()[0].freq_mhz == 250.0
    with pytest.raises(ConfigError):
        device_curve("fpga")


def test_scaling_a_curve_keeps_its_shape():
    curve = device_curve("asic-bm1366").scaled(6000.0, 17.0)
    assert curve.top.watts == pytest.approx(6000.0) and curve.top.j_per_th == pytest.approx(17.0)
    ratios = [p.j_per_th / curve.top.j_per_th for p in curve.points]
    base = device_curve("asic-bm1366")
    assert ratios == pytest.approx([p.j_per_th / base.top.j_per_th for p in base.points])
    fleet = asic_fleet(6000.0).scaled(j_per_th=17.0)
    assert fleet.backends[0].curve is not None and fleet.backends[0].curve.top.j_per_th == pytest.approx(17.0)


def test_a_sweep_file_models_a_fleet_with_its_curve(tmp_path):
    rows = [{"backend": "asic", "freq_mhz": f, "voltage_mv": v, "hashrate_hs": f * 1e9, "watts": w,
             "energy_source": "asic"} for f, v, w in ((250, 850, 3.0), (485, 1200, 9.0))]
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(rows))
    fleet = load_fleet(path)
    backend = fleet.backends[0]
    assert backend.kind == "asic" and backend.full_watts == 9.0 and backend.curve is not None
    assert load_curve(path).points[0].voltage_mv == 850
    assert fleet.to_json()[0]["operating_points"][1]["freq_mhz"] == 485


def test_dvfs_sets_the_point_that_draws_the_fraction_and_leaves_duty_at_one():
    fleet = asic_fleet()
    backend = fleet.backends[0]
    plant = SimulatedMiner(fleet)
    chain = make_chain(backend, plant, "dvfs")
    assert [a.name for a in chain] == ["dvfs", "duty"]
    realised = apply_chain(chain, "asic", 0.6)
    assert realised == pytest.approx(0.6) and plant.duty("asic") == 1.0
    mix = plant.points["asic"]
    assert mix is not None and mix.watts == pytest.approx(3600.0)
    assert backend.curve is not None
    assert mix.hashrate_hs == pytest.approx(backend.curve.hashrate_at(3600.0))
    assert mix.hashrate_hs > 0.6 * backend.hashrate_hs * 1.1  # at least 10% more than 60% duty gives


def test_below_the_most_efficient_point_dvfs_holds_it_and_duty_cycles():
    fleet = asic_fleet()
    plant = SimulatedMiner(fleet)
    chain = make_chain(fleet.backends[0], plant, "dvfs")
    realised = apply_chain(chain, "asic", 0.2)
    mix = plant.points["asic"]
    assert mix is not None and mix.low.freq_mhz == 250.0 and mix.share == 0.0
    assert realised == pytest.approx(0.2) and plant.duty("asic") == pytest.approx(0.2 / (mix.watts / 6000.0))


def test_where_the_knobs_cannot_set_a_point_dvfs_says_why_and_duty_does_it_all():
    fleet = asic_fleet()

    class DutyOnly:
        min_duty = 0.0

        def __init__(self) -> None:
            self.value = 1.0

        def set_duty(self, backend: str, duty: float) -> None:
            self.value = duty

    knobs = DutyOnly()
    dvfs = DvfsActuator(knobs, fleet.backends[0])
    assert apply_chain([dvfs, DutyActuator(knobs)], "asic", 0.4) == pytest.approx(0.4)
    assert knobs.value == pytest.approx(0.4)
    assert not dvfs.describe()["active"] and "duty" in dvfs.describe()["reason"]
    with pytest.raises(ConfigError, match="operating points"):
        make_chain(BackendModel("c", 10.0, 1e8), SimulatedMiner(FleetModel((BackendModel("c", 10.0, 1e8),))), "dvfs")


def test_the_dvfs_controller_settles_on_a_step_within_two_ticks():
    fleet = asic_fleet()
    trace = steps([(0, 5000.0), (600, 2000.0), (1200, 4000.0), (1800, 4000.0)])
    report = simulate(trace, fleet, make_policy("follow", trace), start=0, end=1800, tick_s=2.0,
                      plant=SimulatedMiner(fleet), actuator="dvfs")
    f = report.figures
    assert f.steps == 2 and f.settle_time_s is not None and f.settle_time_s <= 4.0
    assert f.energy_over_budget_j <= 0.002 * f.energy_j
    s = report.series
    assert np.nanmin(s.freq_mhz) >= 250.0 and np.nanmax(s.freq_mhz) <= 485.0


def test_dvfs_mines_more_hashes_than_duty_for_the_same_energy():
    fleet = asic_fleet(6000.0)
    ramp = steps([(0, 0.0), (3600, 5300.0), (7200, 0.0)], "linear")
    results = {}
    for actuator in ("duty", "dvfs"):
        results[actuator] = simulate(ramp, fleet, make_policy("follow", ramp), start=0, end=7200, tick_s=10.0,
                                     plant=SimulatedMiner(fleet), actuator=actuator).figures
    duty, dvfs = results["duty"], results["dvfs"]
    assert dvfs.energy_j == pytest.approx(duty.energy_j, rel=1e-3)
    assert dvfs.hashes >= 1.15 * duty.hashes
