"""The OpenCL backend against hashlib on every device here, and its failure modes.

These tests run for real wherever an OpenCL platform exists (CI installs PoCL, the CPU
implementation). Only a machine with no platform at all skips them, loudly; with
``CI`` or ``HASHCORE_REQUIRE_OPENCL`` set, that is a failure instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends import base, opencl, tuning
from hashcore.backends.opencl import devices as opencl_devices
from hashcore.backends.opencl import settings as opencl_settings
from hashcore.backends.opencl import tune as opencl_tune
from hashcore.backends.opencl.settings import grid_name
from hashcore.errors import BackendError, BackendUnavailable, ConfigError
from hashcore.work import MAX_NONCE, MAX_TARGET, Work, nbits_to_target
from tests.backends.scan_contract import ScanContract, expected, vectors

try:
    DEVICES = opencl.list_devices()
except BackendUnavailable as exc:
    if os.environ.get("CI") or os.environ.get("HASHCORE_REQUIRE_OPENCL"):
        raise RuntimeError(f"OpenCL tests required here, but: {exc}") from exc
    pytest.skip(
        f"NO OPENCL PLATFORM: every OpenCL test is skipped ({exc})",
        allow_module_level=True,
    )

import pyopencl as cl

X86SHA = [ref.id for ref, _ in DEVICES if opencl.x86sha_possible(ref)]


@pytest.fixture(autouse=True, scope="module")
def _tune_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Tuning results go to a directory of this test run, not the user's cache."""
    old = os.environ.get("HASHCORE_CACHE_DIR")
    os.environ["HASHCORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("hashcore-cache"))
    yield
    if old is None:
        os.environ.pop("HASHCORE_CACHE_DIR", None)
    else:
        os.environ["HASHCORE_CACHE_DIR"] = old


def _open(**options: Any) -> opencl.OpenCLBackend:
    backend = base.open_backend("opencl", **{"tune": False, **options})
    assert isinstance(backend, opencl.OpenCLBackend)
    return backend


@pytest.fixture(scope="module")
def portable() -> Any:
    # Launches of a few thousand nonces, so the contract's ranges span several
    # double-buffered launches.
    backend = _open(path="portable", launch_seconds=1e-4)
    assert all(s.launch_nonces < 20_000 for s in backend.settings)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def x86sha() -> Any:
    if not X86SHA:
        pytest.skip("no device here can take the x86sha path (PoCL on a CPU with the SHA extensions)")
    backend = _open(device=X86SHA[0], path="x86sha")
    yield backend
    backend.close()


class TestPortablePath(ScanContract):
    @pytest.fixture
    def backend(self, portable: opencl.OpenCLBackend) -> opencl.OpenCLBackend:
        return portable


class TestX86ShaPath(ScanContract):
    @pytest.fixture
    def backend(self, x86sha: opencl.OpenCLBackend) -> opencl.OpenCLBackend:
        return x86sha


# --- every device, several devices ---------------------------------------------------------


def _sample_results(backend: opencl.OpenCLBackend) -> list[list[int]]:
    results = []
    for i, shift in enumerate((1, 4, 8)):
        work = Work.from_header(bytes([i + 40]) * 76, MAX_TARGET >> shift)
        results.append(backend.scan(work, MAX_NONCE - 2999, 3000, 3000).nonces)
    vector = vectors()[1]
    header = bytes.fromhex(vector["expected_header_hex"])
    nonce = int.from_bytes(header[76:], "little")
    mainnet = Work.from_header(header[:76], nbits_to_target(int.from_bytes(header[72:76], "little")))
    results.append(backend.scan(mainnet, nonce - 2000, 4000, 16).nonces)
    return results


@pytest.mark.parametrize("device", [ref.id for ref, _ in DEVICES])
@pytest.mark.parametrize("path", ["portable", "x86sha"])
def test_results_are_identical_on_every_device_and_path(device: str, path: str) -> None:
    if path == "x86sha" and device not in X86SHA:
        pytest.skip(f"device {device} cannot take the x86sha path")
    backend = _open(device=device, path=path)
    try:
        got = _sample_results(backend)
    finally:
        backend.close()
    works = [Work.from_header(bytes([i + 40]) * 76, MAX_TARGET >> s) for i, s in enumerate((1, 4, 8))]
    assert got[:3] == [expected(w, MAX_NONCE - 2999, 3000) for w in works]
    assert len(got[3]) == 1


@pytest.mark.parametrize(("path", "width", "per_item"), [("x86sha", 3, 48), ("x86sha", 5, 50), ("x86sha", 6, 768),
                                                         ("portable", 1, 7), ("portable", 8, 64),
                                                         ("portable", 32, 40)])  # fmt: skip
def test_other_widths_and_item_sizes_match_hashlib(path: str, width: int, per_item: int) -> None:
    # Items whose nonce count is not a multiple of the width end inside a step.
    if path == "x86sha" and not X86SHA:
        pytest.skip("no device here can take the x86sha path")
    if width == 32 and "Portable Computing Language" not in DEVICES[0][0].platform:
        pytest.skip("32 lanes need clang's vector extension (PoCL)")
    device = X86SHA[0] if path == "x86sha" else DEVICES[0][0].id
    backend = _open(device=device, path=path, width=width, nonces_per_item=per_item, local_size=2)
    try:
        assert backend.settings[0].width == width
        work = Work.from_header(bytes([width]) * 76, MAX_TARGET >> 3)
        assert backend.scan(work, MAX_NONCE - 4999, 5000, 5000).nonces == expected(work, MAX_NONCE - 4999, 5000)
    finally:
        backend.close()


def test_several_devices_split_a_range_and_merge_in_nonce_order() -> None:
    # Two contexts on the same device stand in for two devices: the split, the
    # concurrent runs and the ordered merge are what is checked.
    ref, handle = DEVICES[0]
    source = opencl.load_source(opencl.default_kernel_dir())
    import numpy as np

    devices = [opencl.DeviceRunner(cl, np, ref, handle, source, ()) for _ in range(2)]
    settings = [
        opencl.Settings("portable", 4, 64, 4, rate_hs=rate, launch_nonces=2048, tuned=False) for rate in (1.0, 3.0)
    ]
    backend = opencl.OpenCLBackend(devices, settings)
    try:
        assert backend._shares(1000, 4000) == [(1000, 1000), (2000, 3000)]
        work = Work.from_header(b"\x09" * 76, MAX_TARGET >> 4)
        full = expected(work, 1000, 4000)
        assert backend.scan(work, 1000, 4000, 1000).nonces == full
        assert backend.scan(work, 1000, 4000, 1000).hashes_done == 4000
        early = backend.scan(work, 1000, 4000, 3)
        assert early.nonces == full[:3] and early.hashes_done == full[2] + 1 - 1000
        late = full[-1]  # the last one lies in the second device's share
        assert backend.scan(work, 1000, 4000, len(full)).hashes_done == late + 1 - 1000
    finally:
        backend.close()


# --- launches ------------------------------------------------------------------------------


def test_two_launches_are_queued_before_the_host_waits_for_the_first(
    portable: opencl.OpenCLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = portable._devices[0]
    events: list[str] = []
    enqueue, collect = dev.enqueue, dev._collect
    monkeypatch.setattr(dev, "enqueue", lambda *a: (events.append("launch"), enqueue(*a))[1])
    monkeypatch.setattr(dev, "_collect", lambda *a: (events.append("read"), collect(*a))[1])
    step = portable.settings[0].launch_nonces
    work = Work.from_header(b"\x0a" * 76, MAX_TARGET >> 6)
    assert portable.scan(work, 0, 5 * step, 1000).nonces == expected(work, 0, 5 * step)
    assert events[:3] == ["launch", "launch", "read"]
    assert events.count("launch") == 5 and events.count("read") == 5
    # After each read one more launch joins the queue while the other still runs.
    assert events[3:6] == ["launch", "read", "launch"]


def test_more_results_in_one_launch_than_slots_are_rescanned_not_lost() -> None:
    backend = _open(path="portable", launch_seconds=10)
    try:
        count = 3 * tuning.OPENCL_RESULT_SLOTS + 17
        assert backend.settings[0].launch_nonces > count  # one launch overflows the buffer
        work = Work.from_header(b"\x0b" * 76, MAX_TARGET)
        result = backend.scan(work, 11, count, count)
        assert result.nonces == list(range(11, 11 + count))
        # With few results wanted the rescan stops once they are known.
        few = backend.scan(work, 11, count, 5)
        assert few.nonces == [11, 12, 13, 14, 15] and few.hashes_done == 5
    finally:
        backend.close()


# --- build failures, known answer, missing platforms and lost devices ----------------------


def test_a_bad_build_option_is_unavailable_with_the_build_log() -> None:
    with pytest.raises(BackendUnavailable, match=r"do not build(.|\n)*HC_VECTOR_WIDTH must be 1, 2, 4, 8 or 16"):
        _open(path="portable", build_options=["-DHC_VECTOR_WIDTH=3"])


def test_a_broken_kernel_source_is_unavailable_with_the_build_log_naming_the_file(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    shutil.copytree(opencl.default_kernel_dir(), kernels)
    primitives = kernels / "hc_sha256.cl"
    primitives.write_text(
        primitives.read_text().replace("HC_INLINE void hc_first_hash", "HC_INLINE void hc_first_hash oops")
    )
    with pytest.raises(BackendUnavailable, match=r"(?s)build log:.*hc_sha256\.cl.*fix:"):
        _open(path="portable", kernel_dir=str(kernels))


def test_a_device_computing_wrong_hashes_fails_the_known_answer(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    shutil.copytree(opencl.default_kernel_dir(), kernels)
    primitives = kernels / "hc_sha256.cl"
    primitives.write_text(primitives.read_text().replace("0x3956C25Bu", "0x3956C25Cu"))  # one round constant off
    with pytest.raises(BackendUnavailable, match=r"known-answer test.*hash kernel wrong.*do not mine"):
        _open(path="portable", kernel_dir=str(kernels))


@pytest.mark.parametrize("failure", ["raises", "empty"])
def test_no_platform_is_unavailable_with_the_reason_and_the_fix(monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    def get_platforms() -> list[Any]:
        if failure == "raises":
            raise cl.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")
        return []

    monkeypatch.setattr(cl, "get_platforms", get_platforms)
    with pytest.raises(BackendUnavailable, match=r"no OpenCL platform is installed.*fix: .*pocl-opencl-icd"):
        base.open_backend("opencl")
    info = base.probe("opencl")
    assert not info.available and "pocl-opencl-icd" in info.detail


def test_a_platform_without_devices_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    class Empty:
        name = "Empty Platform"
        version = "OpenCL 3.0"

        def get_devices(self) -> list[Any]:
            raise cl.RuntimeError("clGetDeviceIDs failed: DEVICE_NOT_FOUND")

    monkeypatch.setattr(cl, "get_platforms", lambda: [Empty()])
    with pytest.raises(BackendUnavailable, match=r"Empty Platform.*offer no device.*fix"):
        base.open_backend("opencl")


def test_a_device_that_cannot_be_opened_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def lost(*_args: Any, **_kwargs: Any) -> Any:
        raise cl.RuntimeError("clCreateContext failed: DEVICE_NOT_AVAILABLE")

    monkeypatch.setattr(cl, "Context", lost)
    with pytest.raises(BackendUnavailable, match=r"cannot be used.*DEVICE_NOT_AVAILABLE.*fix"):
        base.open_backend("opencl")


def test_a_device_lost_mid_scan_is_a_backend_error(
    portable: opencl.OpenCLBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(*_args: Any) -> Any:
        raise cl.RuntimeError("clEnqueueNDRangeKernel failed: OUT_OF_RESOURCES")

    monkeypatch.setattr(portable._devices[0], "enqueue", lost)
    with pytest.raises(BackendError, match=r"failed mid-scan.*OUT_OF_RESOURCES"):
        portable.scan(Work.from_header(bytes(76), 1), 0, 1000, 1)


def test_missing_pyopencl_is_unavailable_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pyopencl", None)
    with pytest.raises(BackendUnavailable, match=r"cannot import pyopencl.*pip install pyopencl"):
        base.open_backend("opencl")


# --- options and device selection ----------------------------------------------------------


def test_unknown_device_lists_the_choices_and_bad_syntax_is_a_config_error() -> None:
    with pytest.raises(BackendUnavailable, match=r"no device 7:0 here; fix: choose from 0:0"):
        base.open_backend("opencl", device="7:0", tune=False)
    with pytest.raises(ConfigError, match="gpu0"):
        base.open_backend("opencl", device="gpu0")
    with pytest.raises(ConfigError, match="twice"):
        base.open_backend("opencl", device="0:0,0:0")


def test_auto_takes_every_gpu_else_the_first_cpu_device() -> None:
    ref = DEVICES[0][0]
    fake = [(opencl.DeviceRef(f"{i}:0", "P", "v", f"d{i}", "V", 0, "1", kind, 1, None), None)
            for i, kind in enumerate(("CPU", "GPU", "CPU", "GPU"))]  # fmt: skip
    assert [r.id for r, _ in opencl.select_devices("auto", fake)] == ["1:0", "3:0"]
    assert [r.id for r, _ in opencl.select_devices("auto", [fake[0], fake[2]])] == ["0:0"]
    assert [r.id for r, _ in opencl.select_devices("all", fake)] == ["0:0", "1:0", "2:0", "3:0"]
    assert [r.id for r, _ in opencl.select_devices(" 3:0, 0:0 ", fake)] == ["3:0", "0:0"]
    assert opencl.select_devices(ref.id, DEVICES)[0][0] == ref


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"path": "cuda"}, "cuda"),
        ({"path": "portable", "width": 3}, "width 3 is not one the portable kernels take"),
        ({"width": 64}, "width"),
        ({"nonces_per_item": 0}, "nonces_per_item"),
        ({"local_size": True}, "local_size"),
        ({"launch_seconds": 0}, "launch_seconds"),
        ({"build_options": "-DX"}, "build_options"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        base.open_backend("opencl", **options)


def test_x86sha_on_a_device_without_it_is_unavailable_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opencl_devices, "_host_has_sha_ni", lambda: False)
    with pytest.raises(BackendUnavailable, match=r"x86sha path needs.*fix: use path auto or portable"):
        base.open_backend("opencl", path="x86sha")


# --- tuning ---------------------------------------------------------------------------------


def test_the_tune_is_cached_per_device_and_source_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The caching, as on an idle machine (a tune beside busy programs is not cached: below).
    monkeypatch.setattr(opencl.DeviceRunner, "cpu_share", lambda self, since: 1.0)
    first = base.open_backend("opencl", nonces_per_item=None)
    assert isinstance(first, opencl.OpenCLBackend)
    first.close()
    settings = first.settings[0]
    assert settings.tuned and settings.rate_hs > 0
    grid = tuning.OPENCL_TUNE_GRID[grid_name(first.devices[0], settings.path)]
    assert settings.nonces_per_item in grid["nonces_per_item"] and settings.local_size in grid["local_sizes"]
    assert opencl.tune_file().is_file()

    def no_tune(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("tuned again although the cache holds this device")

    monkeypatch.setattr(opencl_tune, "autotune", no_tune)
    again = base.open_backend("opencl")
    assert isinstance(again, opencl.OpenCLBackend)
    again.close()
    assert again.settings[0] == settings
    info = base.probe("opencl")
    assert info.available and "tuned:" in info.detail
    assert info.extra["devices"][0]["tuned"]["nonces_per_item"] == settings.nonces_per_item
    # Another kernel source is another key: its tune is not taken for this one.
    ref = first.devices[0]
    assert opencl.cached_settings(ref, settings.path, "// another kernel") is None


@pytest.mark.parametrize(
    "bad",
    [{"width": 3}, {"width": "16"}, {"nonces_per_item": 0}, {"nonces_per_item": 100}, {"local_size": 4096},
     {"nonces_per_item": 1 << 20, "local_size": 2048}, {"rate_hs": float("inf")}, {"rate_hs": -1.0},
     {"path": "x86sha"}, {"tuned": "yes"}, {"tuned": False}, {"rate_hs": 1e300}, {"local_size": "grid+1"}],
)  # fmt: skip
def test_a_cached_tune_off_its_grid_is_tuned_over_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: dict[str, Any]
) -> None:
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    ref, source = DEVICES[0][0], "// the kernels"
    key = opencl_settings.tune_key(ref, "portable", source, ())
    good = dataclasses.replace(opencl.default_settings(ref, "portable"), rate_hs=1e8, tuned=True)
    opencl_settings.write_tune_cache(key, ref, good)
    assert opencl.cached_settings(ref, "portable", source) == good
    if bad.get("local_size") == "grid+1":  # between two grid work groups: no tune takes it
        bad = {"local_size": min(tuning.OPENCL_TUNE_GRID[grid_name(ref, "portable")]["local_sizes"]) + 1}
    opencl_settings.write_tune_cache(key, ref, dataclasses.replace(good, **bad))
    with caplog.at_level(logging.WARNING, logger="hashcore.backends"):
        assert opencl.cached_settings(ref, "portable", source) is None
    assert any(f"tune of OpenCL device {ref.id}" in r.message and str(opencl.tune_file()) in r.message
               for r in caplog.records)  # fmt: skip


@pytest.mark.parametrize("missing", ["tuned", "rate_hs", "launch_nonces"])
def test_a_cached_tune_missing_a_field_is_tuned_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, missing: str
) -> None:
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    ref, source = DEVICES[0][0], "// the kernels"
    key = opencl_settings.tune_key(ref, "portable", source, ())
    opencl_settings.write_tune_cache(key, ref, dataclasses.replace(opencl.default_settings(ref, "portable"),
                                                                   rate_hs=1e8, tuned=True))  # fmt: skip
    data = json.loads(opencl.tune_file().read_text())
    del data[key]["settings"][missing]
    opencl.tune_file().write_text(json.dumps(data))
    assert opencl.cached_settings(ref, "portable", source) is None


@pytest.mark.parametrize("plant", ["nested", "fifo", "endless"])
def test_a_tune_cache_that_cannot_be_read_safely_is_named_and_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, plant: str
) -> None:
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    cache = opencl.tune_file()
    if plant == "nested":
        cache.write_text("{" * 100_000)
    elif plant == "fifo":
        os.mkfifo(cache)
    else:
        cache.symlink_to("/dev/zero")
    with caplog.at_level(logging.WARNING):
        assert opencl.cached_settings(DEVICES[0][0], "portable", "// the kernels") is None
    assert any("OpenCL tune cache" in r.message and str(cache) in r.message for r in caplog.records)


def test_a_tune_while_other_programs_hold_the_cores_is_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every candidate ran slow and uneven, so the tune is used for this run only."""
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HASHCORE_BUSY_SHARE", "0.85")  # the suite itself caches whatever it measures
    monkeypatch.setattr(opencl.DeviceRunner, "cpu_share", lambda self, since: 0.55)
    with caplog.at_level(logging.WARNING, logger="hashcore.backends.opencl"):
        backend = base.open_backend("opencl", path="portable")
    assert isinstance(backend, opencl.OpenCLBackend)
    backend.close()
    settings = backend.settings[0]
    assert settings.tuned and settings.rate_hs > 0
    assert any("the tune got 55% of the device's" in r.message for r in caplog.records)
    source = opencl.load_source(opencl.default_kernel_dir())
    assert opencl.cached_settings(backend.devices[0], "portable", source) is None


def test_a_width_the_compiler_does_not_build_is_left_out_of_the_tune(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An OpenCL compiler other than clang refuses 32 lanes (#error): the tune goes on
    without that width instead of losing the portable path."""
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    real = opencl.DeviceRunner.kernels

    def no_wide_lanes(self: Any, path: str, width: int) -> Any:
        if path == "portable" and width == 32:
            raise BackendUnavailable("OpenCL backend: the kernels do not build (HC_VECTOR_WIDTH 32)\nbuild log")
        return real(self, path, width)

    monkeypatch.setattr(opencl.DeviceRunner, "kernels", no_wide_lanes)
    with caplog.at_level(logging.INFO, logger="hashcore.backends.opencl"):
        backend = base.open_backend("opencl", path="portable")
    assert isinstance(backend, opencl.OpenCLBackend)
    backend.close()
    assert backend.settings[0].tuned and backend.settings[0].width != 32
    assert any("width 32 left out" in r.message for r in caplog.records)
    with pytest.raises(BackendUnavailable, match="HC_VECTOR_WIDTH 32"):  # asked for, it is the answer
        base.open_backend("opencl", path="portable", width=32)


def test_the_cpu_share_of_timed_launches_is_read_from_the_process_clock() -> None:
    """PoCL's workers run in this process: its CPU time over the launches' wall time is
    the share of the device's cores they got (about 1 when idle). A GPU has none."""
    import dataclasses

    import numpy as np

    ref, handle = DEVICES[0]
    source = opencl.load_source(opencl.default_kernel_dir())
    dev = opencl.DeviceRunner(cl, np, ref, handle, source, ())
    try:
        since = (dev.timed_wall, dev.timed_cpu)
        assert dev.cpu_share(since) is None  # nothing timed yet
        dev.rate(opencl.Settings("portable", 4, 64, 4), 0.2)
        assert dev.timed_wall > 0
        share = dev.cpu_share(since)
        if ref.kind == "CPU":
            assert share is not None and 0.2 < share < 1.3
        dev.ref = dataclasses.replace(ref, kind="GPU")
        assert dev.cpu_share(since) is None
    finally:
        dev.close()


def test_the_launch_size_follows_the_tuned_rate() -> None:
    settings = opencl.Settings("portable", 8, 64, 4, rate_hs=8_000_000.0)
    launch = opencl.launch_nonces(settings, 0.25)
    assert launch % settings.granule == 0
    assert 2_000_000 <= launch < 2_000_000 + settings.granule


# --- energy ---------------------------------------------------------------------------------


def test_pocl_is_metered_as_cpu_and_an_nvidia_gpu_by_its_pci_bus_id() -> None:
    backend = _open(path="portable")
    try:
        assert backend.energy_kind == ("gpu" if backend.devices[0].kind == "GPU" else "cpu")
    finally:
        backend.close()

    class NvidiaDevice:
        extensions = "cl_khr_fp64 cl_nv_device_attribute_query"

        def get_info(self, what: int) -> int:
            return {cl.device_info.PCI_BUS_ID_NV: 0x3B, cl.device_info.PCI_SLOT_ID_NV: 0x00,
                    cl.device_info.PCI_DOMAIN_ID_NV: 0}[what]  # fmt: skip

    bus = opencl_devices._pci_bus_id(cl, NvidiaDevice())
    assert bus == "00000000:3B:00.0"
    ref = opencl.DeviceRef("1:0", "NVIDIA CUDA", "OpenCL 3.0 CUDA", "NVIDIA H100", "NVIDIA Corporation",
                           0x10DE, "550.54", "GPU", 132, bus)  # fmt: skip

    class Stub:
        def __init__(self) -> None:
            self.ref = ref

    gpu = opencl.OpenCLBackend([Stub()], [opencl.Settings("portable", 1, 64, 128)])  # type: ignore[list-item]
    assert ref.is_nvidia_gpu
    assert gpu.energy_kind == "gpu"
    assert gpu.energy_options() == {"gpu": "00000000:3B:00.0"}
