"""The measured choice of code paths: the measurement, its cache, and what ``auto`` takes.

Rates here are stubbed (a fake clock that each stub path advances at its own speed),
except one real measurement of the C backend on this machine, which checks only that
the choice is one of the paths it measured: speed is never asserted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends import backendrank, base, cachefile, cffi_c, cpushare, numba_cpu, pathchoice
from hashcore.errors import BackendUnavailable


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path))
    pathchoice.forget()
    yield tmp_path
    pathchoice.forget()


class FakeClock:
    """perf_counter for pathchoice: advanced only by the stub paths, at their own rates."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.now = 0.0
        self.rates = rates
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def run(self, path: str, count: int) -> int:
        self.calls.append(path)
        self.now += count / self.rates[path]
        return count


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock({"fast": 30e6, "slow": 10e6, "mid": 20e6})
    monkeypatch.setattr(pathchoice.time, "perf_counter", fake)
    monkeypatch.setattr(cpushare, "clock", lambda in_caller: fake)  # an idle machine: all of it on the CPU
    monkeypatch.setattr(pathchoice, "yardstick", lambda: 20e6)
    return fake


def _choose(clock: FakeClock, key: str = "k1", paths: tuple[str, ...] = ("slow", "fast", "mid")) -> pathchoice.Choice:
    return pathchoice.choose("stub", paths, lambda: clock.run, {"build": key})


def test_measure_gives_each_path_its_rate_interleaved_in_rotated_rounds(clock: FakeClock) -> None:
    rates, stick, share = pathchoice.measure(["slow", "fast"], clock.run, budget_seconds=1.0, rounds=4)
    assert rates == pytest.approx({"slow": 10e6, "fast": 30e6}, rel=1e-3)
    assert stick == 20e6
    assert share == pytest.approx(1.0)
    timed = clock.calls[-8:]  # after calibration: two paths per round, the order rotating
    assert timed == ["slow", "fast", "fast", "slow", "slow", "fast", "fast", "slow"]


def test_the_choice_is_the_fastest_of_the_measured_paths(clock: FakeClock) -> None:
    choice = _choose(clock)
    assert choice.chosen == "fast"
    assert choice.rates_hs == pytest.approx({"slow": 10e6, "fast": 30e6, "mid": 20e6}, rel=1e-3)
    assert choice.ratio == pytest.approx(1.5, rel=1e-3)
    assert not choice.cached
    assert choice.key["build"] == "k1" and choice.key["model_name"]  # the CPU is part of the key


def test_a_cached_choice_is_reused_without_measuring(clock: FakeClock, _own_cache: Path) -> None:
    first = _choose(clock)
    pathchoice.forget()  # a new process: only the file remains
    measured = len(clock.calls)
    again = _choose(clock)
    assert len(clock.calls) == measured
    assert again.cached and again.chosen == first.chosen and again.rates_hs == first.rates_hs
    entry = json.loads((_own_cache / pathchoice.CACHE_NAME).read_text())["entries"]["stub"]
    assert entry["chosen"] == "fast" and entry["key"]["build"] == "k1"


def test_a_measurement_on_a_busy_machine_holds_for_this_run_only(
    clock: FakeClock, _own_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Other programs held the core for 40% of the time: every rate reads low, so the
    choice is used now but not cached, and the next start measures again."""
    monkeypatch.setenv("HASHCORE_BUSY_SHARE", "0.85")  # the suite itself caches whatever it measures
    monkeypatch.setattr(cpushare, "clock", lambda in_caller: lambda: clock.now * 0.6)
    with caplog.at_level(logging.WARNING, logger="hashcore.backends.pathchoice"):
        choice = _choose(clock)
    assert choice.chosen == "fast" and choice.busy
    assert choice.cpu_share == pytest.approx(0.6)
    assert "measured while busy: 60% of the cores; not cached" in choice.describe()
    assert any("got 60% of its 1 core" in r.message for r in caplog.records)
    assert not (_own_cache / pathchoice.CACHE_NAME).exists()
    measured = len(clock.calls)
    assert _choose(clock) is choice  # the same process does not measure twice
    assert len(clock.calls) == measured

    pathchoice.forget()  # the next start, on an idle machine
    monkeypatch.setattr(cpushare, "clock", lambda in_caller: clock)
    again = _choose(clock)
    assert len(clock.calls) > measured and not again.busy and not again.cached
    entry = json.loads((_own_cache / pathchoice.CACHE_NAME).read_text())["entries"]["stub"]
    assert entry["cpu_share"] == pytest.approx(1.0)
    pathchoice.forget()
    assert _choose(clock).cached


def test_work_off_the_cpu_is_cached_without_a_share(clock: FakeClock, _own_cache: Path) -> None:
    """A GPU's work does not run on the CPU, so its measurement has no CPU share to check."""
    choice = pathchoice.choose("gpu", ("slow", "fast"), lambda: clock.run, {"build": "k"}, cores=132, threads=None)
    assert choice.cpu_share is None and not choice.busy
    pathchoice.forget()
    assert pathchoice.choose("gpu", ("slow", "fast"), lambda: clock.run, {"build": "k"}, threads=None).cached


def test_the_cpu_share_is_read_from_the_real_clocks() -> None:
    """No stand-ins: a path that computes keeps its thread on the CPU; one that waits as
    long again (as a thread does while other programs hold its core) gets about half."""

    def run(path: str, count: int) -> int:
        began = time.perf_counter()
        for _ in range(count):
            hashlib.sha256(b"\x00" * 64).digest()
        if path == "waits":
            time.sleep(time.perf_counter() - began)
        return count

    _, _, computes = pathchoice.measure(["computes"], run, budget_seconds=0.3, rounds=3)
    _, _, waits = pathchoice.measure(["waits"], run, budget_seconds=0.3, rounds=3)
    # Relative, so a machine busy with other tests does not decide it: waiting halves the share.
    assert computes is not None and waits is not None and computes > 0.2
    assert 0.3 < waits / computes < 0.75


def test_workers_of_the_process_are_timed_by_the_process_clock(clock: FakeClock, monkeypatch) -> None:
    """A PoCL device of one compute unit: its worker hashes while the caller waits, so the
    caller's own clock would read it as busy."""
    asked = []

    def which(in_caller: bool) -> FakeClock:
        asked.append(in_caller)
        return clock

    monkeypatch.setattr(cpushare, "clock", which)
    choice = pathchoice.choose("pocl", ("slow", "fast"), lambda: clock.run, {"b": "1"}, threads=1, in_caller=False)
    assert asked == [False] and not choice.busy


def test_a_changed_key_measures_again(clock: FakeClock) -> None:
    _choose(clock, key="k1")
    pathchoice.forget()
    measured = len(clock.calls)
    clock.rates["slow"] = 50e6  # the new build made "slow" the fastest
    choice = _choose(clock, key="k2")
    assert len(clock.calls) > measured
    assert choice.chosen == "slow" and not choice.cached


def test_other_paths_than_cached_measure_again(clock: FakeClock) -> None:
    _choose(clock)
    pathchoice.forget()
    measured = len(clock.calls)
    assert _choose(clock, paths=("slow", "mid")).chosen == "mid"
    assert len(clock.calls) > measured


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "entries": []}', "[]",
                                     '{"format": 1, "entries": {"stub": {"key": "x"}}}'])  # fmt: skip
def test_a_corrupt_cache_is_ignored_with_a_log_line_and_measured_over(
    clock: FakeClock, _own_cache: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    (_own_cache / pathchoice.CACHE_NAME).write_text(content)
    with caplog.at_level(logging.INFO, logger="hashcore.backends.pathchoice"):
        choice = _choose(clock)
    assert choice.chosen == "fast" and not choice.cached
    assert any("path-choice cache" in r.message or "measuring again" in r.message for r in caplog.records)
    data = json.loads((_own_cache / pathchoice.CACHE_NAME).read_text())
    assert data["entries"]["stub"]["chosen"] == "fast"


def test_a_cache_entry_with_bad_rates_is_ignored(clock: FakeClock, _own_cache: Path) -> None:
    first = _choose(clock)
    pathchoice.forget()
    path = _own_cache / pathchoice.CACHE_NAME
    data = json.loads(path.read_text())
    data["entries"]["stub"]["rates_hs"]["fast"] = "quick"
    path.write_text(json.dumps(data))
    again = _choose(clock)
    assert not again.cached and again.chosen == first.chosen


def _nested(cache: Path) -> None:
    cache.write_text("[" * 200_000 + "]" * 200_000)


def _fifo(cache: Path) -> None:
    os.mkfifo(cache)  # no writer ever comes: an open that blocks would hang the start


def _endless(cache: Path) -> None:
    cache.symlink_to("/dev/zero")


def _huge(cache: Path) -> None:
    cache.write_text('{"format": 2, "entries": {}, "pad": "' + "x" * (cachefile.MAX_BYTES + 1) + '"}')


@pytest.mark.parametrize("plant", [_nested, _fifo, _endless, _huge])
def test_a_cache_file_that_cannot_be_read_safely_is_named_and_measured_over(
    clock: FakeClock, _own_cache: Path, caplog: pytest.LogCaptureFixture, plant: Any
) -> None:
    cache = _own_cache / pathchoice.CACHE_NAME
    plant(cache)
    with caplog.at_level(logging.WARNING, logger="hashcore.backends"):
        choice = _choose(clock)
    assert choice.chosen == "fast" and not choice.cached
    assert any(r.message.startswith(f"path-choice cache {cache}") and "ignored" in r.message for r in caplog.records)
    # The measurement replaced it with a regular file.
    assert cache.is_file() and not cache.is_symlink()
    assert json.loads(cache.read_text())["entries"]["stub"]["chosen"] == "fast"


@pytest.mark.parametrize(
    ("field", "value"),
    [("rates_hs", {"slow": 1e6, "fast": 1e400, "mid": 2e6}), ("rates_hs", {"slow": 1, "fast": -5, "mid": 2}),
     ("rates_hs", {"slow": 1, "fast": True, "mid": 2}), ("cores", 0), ("cores", 1e400), ("cores", True),
     ("yardstick_hs", -1), ("cpu_share", 7.5), ("cpu_share", 0.01), ("chosen", "nonesuch"), ("chosen", "slow"),
     ("chosen", ["fast"]), ("chosen", {}), ("rates_hs", {"slow": 1e6, "fast": 1e300, "mid": 2e6})],
)  # fmt: skip
def test_a_cache_entry_with_values_out_of_range_is_measured_over(
    clock: FakeClock, _own_cache: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    field: str, value: Any,
) -> None:
    monkeypatch.setenv("HASHCORE_BUSY_SHARE", "0.85")  # the default, which the tests otherwise lift
    _choose(clock)
    pathchoice.forget()
    path = _own_cache / pathchoice.CACHE_NAME
    text = path.read_text()
    data = json.loads(text)
    data["entries"]["stub"][field] = value
    path.write_text(json.dumps(data).replace("Infinity", "1e400"))
    with caplog.at_level(logging.WARNING, logger="hashcore.backends"):
        again = _choose(clock)
    assert not again.cached and again.chosen == "fast" and again.cores == 1
    assert any(f"the stub entry of the path-choice cache {path}" in r.message for r in caplog.records)


def test_a_share_a_hair_over_all_the_cores_is_cached_and_read_back(clock: FakeClock, _own_cache: Path) -> None:
    assert cpushare.share(1.00005, 1.0, 1) == 1.0  # the clocks tick apart; all of the cores is the most
    _choose(clock)
    pathchoice.forget()
    path = _own_cache / pathchoice.CACHE_NAME
    data = json.loads(path.read_text())
    data["entries"]["stub"]["cpu_share"] = 1.00005  # as a file written before the clamp holds it
    path.write_text(json.dumps(data))
    assert _choose(clock).cached


def test_remeasuring_goes_on_where_the_cache_cannot_be_removed(
    clock: FakeClock, _own_cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = _own_cache / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="hashcore.backends"):
        pathchoice.discard()
        choice = _choose(clock)  # measured, and not saved: logged
    assert choice.chosen == "fast" and not choice.cached
    assert any("cannot remove the path-choice cache" in r.message for r in caplog.records)
    assert any("cannot save the path-choice cache" in r.message for r in caplog.records)
    assert sorted(p.name for p in _own_cache.iterdir()) == ["not-a-folder"]  # no temporary file left


def test_the_cache_lives_under_xdg_cache_home_unless_pointed_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HASHCORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pathchoice.cache_file() == tmp_path / "xdg" / "hashcore" / pathchoice.CACHE_NAME
    monkeypatch.setenv("HASHCORE_CACHE_DIR", str(tmp_path / "mine"))
    assert pathchoice.cache_file() == tmp_path / "mine" / pathchoice.CACHE_NAME


def _no_measuring(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("an explicit path must not measure")


def test_an_explicit_c_path_bypasses_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        supported = cffi_c.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    monkeypatch.setattr(pathchoice, "measure", _no_measuring)
    for path in supported:
        assert base.open_backend("c", path=path).path == path  # type: ignore[attr-defined]


def test_an_explicit_numba_path_bypasses_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        supported = numba_cpu.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    monkeypatch.setattr(pathchoice, "measure", _no_measuring)
    for path in supported:
        backend = base.open_backend("numba", path=path, lanes=8)
        assert (backend.path, backend.lanes) == (path, 8)  # type: ignore[attr-defined]


def test_numba_lanes_without_a_count_takes_the_fastest_count_measured(
    monkeypatch: pytest.MonkeyPatch, _own_cache: Path
) -> None:
    try:
        numba_cpu.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    names = numba_cpu.candidates()
    # Shaped as a real measurement: the shani path fastest, then 8 lanes, then the rest.
    rates = {name: 30e6 if name == "shani" else 20e6 if name == "lanes8" else 10e6 for name in names}

    def measured(paths: list[str], *_args: object, **_kw: object) -> tuple[dict[str, float], float, float]:
        assert sorted(paths) == sorted(names)
        return {p: rates[p] for p in paths}, 1e6, 1.0

    monkeypatch.setattr(pathchoice, "measure", measured)
    auto = base.open_backend("numba")
    lanes = base.open_backend("numba", path="lanes")
    expected = ("shani", numba_cpu.DEFAULT_LANES) if "shani" in names else ("lanes", 8)
    assert (auto.path, auto.lanes) == expected  # type: ignore[attr-defined]
    assert (lanes.path, lanes.lanes) == ("lanes", 8)  # type: ignore[attr-defined]


def test_auto_backend_ranks_by_rate_over_the_yardstick_of_each_measurement() -> None:
    rates = {
        # Measured while a neighbour slowed the machine: fewer raw hashes, but more per yardstick.
        "c": backendrank.BackendRate("c", "avx512", 15e6, 30e6, "stub", yardstick_hs=10e6),
        "numba": backendrank.BackendRate("numba", "lanes", 20e6, 40e6, "stub", yardstick_hs=20e6),
        "opencl": backendrank.BackendRate("opencl", "portable", 12e6, 24e6, "stub", yardstick_hs=20e6),
    }
    assert backendrank.fastest(rates) == "c"
    assert backendrank.ranked(rates) == ["c", "numba", "opencl"] and backendrank.by_yardstick(rates)
    rates["gpu"] = backendrank.BackendRate("opencl", "portable", None, 5e9, "stub")  # no yardstick: raw rates decide
    assert backendrank.fastest(rates) == "gpu"
    assert backendrank.ranked(rates) == ["gpu", "numba", "c", "opencl"] and not backendrank.by_yardstick(rates)


def test_backends_within_the_tie_of_the_fastest_go_by_the_order_of_preference() -> None:
    # Rates as one Zen 5 machine measured them: all three within 1 %.
    rates = {
        "c": backendrank.BackendRate("c", "avx512", 50.13e6, 100.26e6, "stub", yardstick_hs=32.5e6),
        "opencl": backendrank.BackendRate("opencl", "portable", 50.54e6, 101.08e6, "stub", yardstick_hs=32.5e6),
        "numba": backendrank.BackendRate("numba", "lanes32", 50.51e6, 101.03e6, "stub", yardstick_hs=32.5e6),
    }
    assert backendrank.fastest(rates) == "c"
    assert backendrank.ranked(rates) == ["c", "opencl", "numba"]
    # Just past the tie with both others, the faster one is taken and listed first.
    faster = 101.08e6 / (1 - backendrank.TIE) * 1.001
    rates["numba"] = backendrank.BackendRate("numba", "lanes32", faster / 2, faster, "stub", yardstick_hs=32.5e6)
    assert backendrank.fastest(rates) == "numba"
    assert backendrank.ranked(rates) == ["numba", "opencl", "c"]
    # The order given is the preference: the same rates with opencl first take opencl.
    tied = {name: rates[name] for name in ("opencl", "c")}
    assert backendrank.fastest(tied) == "opencl"


def test_fastest_available_takes_the_best_measured_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = {
        "c": backendrank.BackendRate("c", "shani", 20e6, 40e6, "stub", 20e6),
        "numba": backendrank.BackendRate("numba", "lanes", 25e6, 50e6, "stub", 20e6),
    }
    monkeypatch.setattr(base, "measured_rates", lambda: stub)
    assert base.fastest_available() == "numba"


def test_a_real_measurement_here_chooses_one_of_the_measured_c_paths(_own_cache: Path) -> None:
    try:
        supported = cffi_c.supported_paths()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    choice = cffi_c.path_choice()
    assert sorted(choice.rates_hs) == sorted(supported)
    assert choice.chosen in choice.rates_hs and all(rate > 0 for rate in choice.rates_hs.values())
    assert choice.yardstick_hs > 0 and choice.key["build"] != "unknown"
    assert base.open_backend("c").path == choice.chosen  # type: ignore[attr-defined]
    info = base.probe("c")
    assert info.extra["path_choice"]["chosen"] == choice.chosen
    assert "c" in json.loads((_own_cache / pathchoice.CACHE_NAME).read_text())["entries"]


def test_opencl_auto_takes_the_measured_path_and_an_explicit_path_does_not_measure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opencl = pytest.importorskip("hashcore.backends.opencl")
    try:
        devices = [ref for ref, _ in opencl.list_devices() if opencl.x86sha_possible(ref)]
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    if not devices:
        pytest.skip("no device here can take both OpenCL paths (PoCL on a CPU with the SHA extensions)")
    seen: list[list[str]] = []

    def stub(dev: object, ready: dict[str, object]) -> pathchoice.Choice:
        seen.append(sorted(ready))
        return pathchoice.Choice("stub", "portable", {"x86sha": 1e6, "portable": 2e6}, 2, 0.0, 0.0)

    monkeypatch.setattr("hashcore.backends.opencl.tune.path_choice", stub)
    backend = opencl.open_opencl(device=devices[0].id, tune=False)
    try:
        assert backend.path == "portable" and backend.settings[0].rate_hs == 2e6
        assert seen == [["portable", "x86sha"]]
    finally:
        backend.close()
    backend = opencl.open_opencl(device=devices[0].id, path="x86sha", tune=False)
    backend.close()
    assert backend.path == "x86sha" and len(seen) == 1


def test_discard_forgets_every_choice_so_the_next_one_is_measured_again(clock: FakeClock) -> None:
    first = _choose(clock)
    assert pathchoice.cache_file().exists() and not first.cached
    pathchoice.forget()  # a new process: only the file remains
    measured = len(clock.calls)
    assert _choose(clock).cached and len(clock.calls) == measured
    pathchoice.discard()
    assert not pathchoice.cache_file().exists()
    again = _choose(clock)
    assert not again.cached and len(clock.calls) > measured
    pathchoice.discard()
    pathchoice.discard()  # nothing left to remove is no error
    assert not pathchoice.cache_file().exists()
