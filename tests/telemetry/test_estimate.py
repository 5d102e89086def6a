from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hashcore.errors import ConfigError
from hashcore.telemetry import EstimateMeter, choose_meter, lookup_tdp, process_tree_cpu_us, threads_cpu_us
from hashcore.telemetry.estimate import DEFAULT_TDP, cpu_model

from .conftest import FakeClock


def test_labelled_estimate_never_exact(clock: FakeClock) -> None:
    cpu = {"us": 5_000_000}
    meter = EstimateMeter(4.0, reason="no RAPL: /sys/class/powercap missing", cpu_us=lambda: cpu["us"], clock=clock)
    cpu["us"] += 2_500_000  # 2.5 CPU-seconds over 1 s: 2.5 cores busy
    clock.advance(1.0)
    s = meter.sample()
    assert (s.joules, s.watts, s.source, s.exact) == (10.0, 10.0, "estimate", False)
    assert meter.note.startswith("estimate, not measured: CPU time of this process × 4 W/core (configured)")
    assert meter.note.endswith("; used because no RAPL: /sys/class/powercap missing")
    cpu["us"] -= 1_000_000  # an unreaped worker's time vanished: energy never goes back
    assert meter.sample().joules == 10.0


def test_tdp_table() -> None:
    zen3 = lookup_tdp("AMD EPYC 7763 64-Core Processor")
    assert zen3.watts_per_core == 280 / 64 and "Zen 3" in zen3.basis
    assert lookup_tdp("AMD EPYC 9965 192-Core Processor").watts_per_core == 500 / 192
    assert lookup_tdp("Intel(R) Xeon(R) Platinum 8480+").watts_per_core == 350 / 56
    assert "exact model unknown" in lookup_tdp("AMD EPYC").basis  # a VM hiding the model
    assert lookup_tdp("Some RISC-V board") is DEFAULT_TDP


def test_table_used_when_not_configured() -> None:
    meter = EstimateMeter(model="AMD EPYC 7763 64-Core Processor", cpu_us=lambda: 0)
    assert meter.watts_per_core == 4.375
    assert "EPYC 7763 (Zen 3): 280 W TDP / 64 cores" in meter.note


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_configured_watts_must_be_positive(bad: float) -> None:
    with pytest.raises(ConfigError):
        EstimateMeter(bad)


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654 96-Core Processor\n")
    assert cpu_model(info) == "AMD EPYC 9654 96-Core Processor"


def test_no_rapl_falls_back_to_estimate_with_reason(tmp_path: Path) -> None:
    choice = choose_meter("cpu", powercap_root=tmp_path / "absent", tdp_watts_per_core=3.0)
    assert choice.fallback and choice.reason.startswith("no RAPL:")
    assert (choice.meter.source, choice.meter.exact) == ("estimate", False)
    assert choice.reason in choice.meter.note  # type: ignore[attr-defined]


def test_this_machine_without_powercap() -> None:
    if Path("/sys/class/powercap").exists():
        pytest.skip("this machine has a powercap tree")
    choice = choose_meter("cpu")
    assert choice.meter.source == "estimate"
    assert "no RAPL: /sys/class/powercap missing" in choice.reason


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_real_cpu_time_of_process_and_threads() -> None:
    before = process_tree_cpu_us()
    ids: list[int] = []

    def work() -> None:
        ids.append(threading.get_native_id())
        _burn(0.05)
        done.wait()

    done = threading.Event()
    thread = threading.Thread(target=work)
    thread.start()
    while thread.is_alive() and (not ids or threads_cpu_us(ids) < 40_000):
        time.sleep(0.005)
    assert threads_cpu_us(ids) >= 40_000
    done.set()
    thread.join()
    assert process_tree_cpu_us() - before >= 40_000


def test_a_tracked_worker_process_counts_while_it_runs_and_once_reaped():
    import subprocess
    import sys

    from hashcore.telemetry.cputime import track_child, untrack_child

    before = process_tree_cpu_us()
    # A child that burns CPU for a while, so it is alive when measured.
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 20: pass"])
    track_child(child.pid)
    try:
        deadline = time.monotonic() + 10
        while process_tree_cpu_us() - before < 200_000:  # 0.2 s of the child's CPU seen live
            assert time.monotonic() < deadline, "the live worker's CPU time was not counted"
            time.sleep(0.05)
        live = process_tree_cpu_us()
    finally:
        child.terminate()
        child.wait()
        untrack_child(child.pid)
    assert process_tree_cpu_us() >= live  # reaped: its time moves to the children's total, none lost
