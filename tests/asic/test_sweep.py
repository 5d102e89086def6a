"""``bench --sweep`` on the emulated chain: the PLL and the core voltage move together over
the real ptys, and each point's J/TH is what the chip's model says."""

from __future__ import annotations

from typing import Any

import pytest

from hashcore.app.sweep import SweepOptions, emulated_asic, measure_backend, run_sweep, sweep_asic
from hashcore.backends.asic.chips import BM1366
from hashcore.errors import ConfigError


def test_the_emulated_chain_is_swept_along_its_vf_table():
    backends = []

    def factory() -> Any:
        backend = emulated_asic("bm1366", hashrate=100_000.0)
        backends.append(backend)
        return backend

    report = sweep_asic(factory, [250.0, 400.0, 485.0], 0.3, measure_backend)
    assert [p.freq_mhz for p in report.points] == [250.0, 400.0, 485.0]
    assert [p.knob for p in report.points] == ["asic-pll+vout"] * 3
    for point in report.points:
        assert point.voltage_mv == pytest.approx(BM1366.voltage_for(point.freq_mhz), abs=2.0)
        model = 21.5 * BM1366.power_ratio(point.freq_mhz, point.voltage_mv or 0.0) / (point.freq_mhz / 485.0)
        assert point.j_per_th == pytest.approx(model, rel=0.02)
        assert point.energy_source == "asic-board (emulated)"
    rates = [p.hashrate_hs for p in report.points]
    assert rates == sorted(rates) and rates[0] == pytest.approx(100_000 * 250 / 485, rel=0.1)
    chain = backends[0].emulator.chain
    assert chain.unstable_events == 0  # the voltage never fell below what the clock needed
    assert report.to_json()[0]["voltage_mv"] == report.points[0].voltage_mv


def test_an_asic_sweep_needs_a_port():
    with pytest.raises(ConfigError, match="asic-port"):
        run_sweep(SweepOptions(backend="asic"))
    with pytest.raises(ConfigError, match="sweep-mhz"):
        run_sweep(SweepOptions(backend="asic", asic_port="emulator", sweep_mhz="x"))
