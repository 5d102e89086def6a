"""bench/gpu_check.py, the one command for a machine with an NVIDIA GPU.

No GPU is here, so its run is checked end to end on what is: PoCL's CPU device named
with ``--device`` (the kernels' build, known answer, tune and a timed bench, for real)
and NVML from the stand-in shaped like ``pynvml``. What only a GPU can show (an energy
figure from NVML for the device that hashed) is the one step this cannot reach; the
script then says so and exits non-zero, as it would on a GPU whose counter is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hashcore.backends import opencl
from hashcore.errors import BackendUnavailable
from tests.telemetry.fake_nvml import FakeGpu, FakeNvml

SCRIPT = Path(__file__).parents[1] / "bench" / "gpu_check.py"

try:
    DEVICES = opencl.list_devices()
except BackendUnavailable as exc:
    if os.environ.get("CI") or os.environ.get("HASHCORE_REQUIRE_OPENCL"):
        raise RuntimeError(f"OpenCL tests required here, but: {exc}") from exc
    pytest.skip(f"NO OPENCL PLATFORM: the GPU check's run is not tried ({exc})", allow_module_level=True)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_an_nvidia_gpu_it_stops_with_one_line_naming_what_it_found() -> None:
    if any(ref.is_nvidia_gpu for ref, _ in DEVICES):
        pytest.skip("this machine has an NVIDIA GPU: run the check itself")
    done = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "1"], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no NVIDIA GPU among the OpenCL devices here (")
    assert DEVICES[0][0].name in lines[0]


def test_a_run_on_an_opencl_device_writes_every_figure_but_the_missing_nvml_energy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nvml = FakeNvml([FakeGpu("NVIDIA H200", "00000000:19:00.0", energy_mj=5_000_000, power_mw=90_000)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    out = tmp_path / "gpu-check.json"
    device = DEVICES[0][0].id

    rc = _script().main(["--device", device, "--seconds", "1", "--out", str(out)])

    printed = capsys.readouterr()
    assert rc == 1  # the hashing device has no NVML counter: no J/TH to vouch for
    assert "the energy figure is not from NVML" in printed.err
    result = json.loads(out.read_text())
    assert result["check"] == "gpu" and result["known_answer"] == "passed"
    assert [d["id"] for d in result["opencl_devices"]] == [device]
    assert result["nvml"]["driver"] == "550.54.15"
    assert result["nvml"]["gpus"][0]["name"] == "NVIDIA H200"
    assert result["nvml"]["gpus"][0]["power_limit_w"] == 700 and result["nvml"]["gpus"][0]["temperature_c"] == 34
    assert result["settings"][0]["device"] == device and result["settings"][0]["tuned"]
    assert result["hashrate_hs"] > 0 and result["bench"]["hashrate_hs"] == result["hashrate_hs"]
    assert result["energy_source"] != "nvml"
    assert Path(result["tune_cache"]).is_file()
    assert f"{DEVICES[0][0].name}: known answer passed" in printed.out and str(out) in printed.out


def test_an_nvml_that_cannot_start_is_one_line_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([], init_error=9))  # driver not loaded
    out = tmp_path / "gpu-check.json"
    rc = _script().main(["--device", DEVICES[0][0].id, "--seconds", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and not out.exists()
    assert len(err) == 1 and err[0].startswith("gpu-check: NVML cannot be used (")
    assert "nvidia-smi" in err[0]
