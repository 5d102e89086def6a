"""One command for a machine with an NVIDIA GPU: known answer, tune, hashrate, energy.

    python bench/gpu_check.py [--seconds 20] [--out gpu-check.json]

On each NVIDIA GPU that OpenCL offers (or the devices given with ``--device P:D,...``):
the kernels are built and checked against the genesis block and an every-nonce range
(the OpenCL backend's known answer), the launch settings are tuned, the hashrate is
measured over ``--seconds`` with ``hashcore.bench`` and the energy over the same
interval with NVML (the GPU's total-energy counter, else integrated power), giving
J/TH. Everything goes into one JSON file; a short summary is printed. Where there is
no GPU, no OpenCL or no NVML, it stops with one line saying which and exits non-zero.

Machines without internet: carry the wheels beside the checkout. On a machine with
internet and the same Python version and architecture:

    pip download --only-binary=:all: --dest wheels pyopencl nvidia-ml-py numpy platformdirs pytools
    # for another Python: add --python-version 3.11 --platform manylinux2014_x86_64
    pip download --dest wheels -e .          # hashcore's own dependencies, if not installed

and on the GPU machine (hashcore itself installed from the checkout as usual):

    pip install --no-index --find-links wheels pyopencl nvidia-ml-py
    python bench/gpu_check.py --out gpu-check.json

pyopencl's manylinux wheels bring an ICD loader; the NVIDIA driver brings the OpenCL
implementation (``/etc/OpenCL/vendors/nvidia.icd``, libnvidia-opencl) and NVML
(libnvidia-ml). ``clinfo`` and ``nvidia-smi`` should both list the GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from typing import Any


class CheckFailed(Exception):
    """A missing piece, in one line."""


def _gpus(spec: str | None) -> list[Any]:
    try:
        from hashcore.backends import opencl
    except ImportError as exc:
        raise CheckFailed(f"hashcore is not importable ({exc}); install it: pip install -e .") from exc
    from hashcore.errors import BackendUnavailable

    try:
        devices = opencl.list_devices()
        if spec:
            return [ref for ref, _ in opencl.select_devices(spec, devices)]
    except BackendUnavailable as exc:
        raise CheckFailed(f"no OpenCL GPU: {exc}") from exc
    gpus = [ref for ref, _ in devices if ref.is_nvidia_gpu]
    if not gpus:
        seen = "; ".join(ref.describe() for ref, _ in devices)
        raise CheckFailed(f"no NVIDIA GPU among the OpenCL devices here ({seen}); is the NVIDIA driver installed?")
    return gpus


def _nvml() -> dict[str, Any]:
    """Driver version and every GPU NVML sees (name, bus id, energy counter, power limit)."""
    try:
        import pynvml
    except ImportError as exc:
        raise CheckFailed(f"cannot import pynvml ({exc}); install nvidia-ml-py (see --help)") from exc
    from hashcore.telemetry import nvml

    try:
        gpus = [asdict(g) for g in nvml.list_gpus()]
        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            for gpu in gpus:
                handle = pynvml.nvmlDeviceGetHandleByIndex(gpu["index"])
                gpu["power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000
                gpu["temperature_c"] = pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # any NVML failure means the same here: no energy figures
        raise CheckFailed(f"NVML cannot be used ({exc}); is the NVIDIA driver loaded (nvidia-smi)?") from exc
    return {"driver": driver.decode() if isinstance(driver, bytes) else str(driver), "gpus": gpus}


def run(seconds: float, spec: str | None) -> dict[str, Any]:
    from hashcore import __version__
    from hashcore.backends import base, opencl
    from hashcore.bench import bench

    gpus = _gpus(spec)
    nvml_info = _nvml()
    ids = ",".join(ref.id for ref in gpus)
    began = time.perf_counter()
    # Opening builds the kernels, checks the known answer on every device (a wrong
    # answer raises BackendUnavailable) and tunes, cached per device and driver.
    backend = base.open_backend("opencl", device=ids)
    assert isinstance(backend, opencl.OpenCLBackend)
    try:
        settings = [{"device": ref.id, **asdict(s)} for ref, s in zip(backend.devices, backend.settings, strict=True)]
    finally:
        backend.close()
    ready_s = time.perf_counter() - began
    report = bench("opencl", seconds, 1, options={"device": ids})
    import pyopencl

    return {
        "check": "gpu",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hashcore": __version__,
        "python": platform.python_version(),
        "pyopencl": pyopencl.VERSION_TEXT,
        "host": platform.node(),
        "opencl_devices": [asdict(ref) for ref in gpus],
        "nvml": nvml_info,
        "known_answer": "passed",
        "open_and_tune_seconds": round(ready_s, 2),
        "tune_cache": str(opencl.tune_file()),
        "settings": settings,
        "bench": report.to_json(),
        "hashrate_hs": report.hashrate_hs,
        "j_per_th": report.j_per_th,
        "energy_source": report.energy_source,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of hashing (default 20)")
    parser.add_argument("--device", default=None, help="OpenCL devices P:D,... (default: every NVIDIA GPU)")
    parser.add_argument("--out", default="gpu-check.json", help="the JSON file to write (default gpu-check.json)")
    args = parser.parse_args(argv)
    from hashcore.errors import HashcoreError

    try:
        result = run(args.seconds, args.device)
    except (CheckFailed, HashcoreError) as exc:
        print(f"gpu-check: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)
    names = ", ".join(d["name"] for d in result["opencl_devices"])
    jth = f"{result['j_per_th']:.1f} J/TH" if result["j_per_th"] else "no J/TH"
    print(f"{names}: known answer passed; {result['hashrate_hs'] / 1e9:.3f} GH/s; {jth} "
          f"({result['energy_source']}); written to {args.out}")  # fmt: skip
    if result["energy_source"] != "nvml":
        print("gpu-check: the energy figure is not from NVML (see bench.energy_note in the file)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
