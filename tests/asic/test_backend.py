"""The ``asic`` backend through the registry: open, scan, versions, hashes done, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from hashcore.backends.asic import AsicBackend, Faults, known_answer
from hashcore.backends.base import Backend, ScanResult, open_backend, probe
from hashcore.errors import BackendUnavailable, ConfigError, DeviceError
from hashcore.work import DEFAULT_VERSION_MASK, Work, difficulty_to_target, verify_nonce


def _work(difficulty: float, *, mask: int = DEFAULT_VERSION_MASK, ntime_offset: int = 0, prev: int = 0) -> Work:
    header = bytearray(known_answer.work().header76)
    header[68] = (header[68] + ntime_offset) & 0xFF
    header[4] ^= prev
    return Work(bytes(header), difficulty_to_target(difficulty), version_mask=mask)


@pytest.fixture
def open_asic() -> Iterator[Any]:
    opened: list[AsicBackend] = []

    def make(**options: Any) -> AsicBackend:
        options.setdefault("port", "emulator")
        options.setdefault("emulator_hashrate", 100_000.0)
        backend = open_backend("asic", **options)
        assert isinstance(backend, AsicBackend)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


def _scan_until(backend: AsicBackend, work: Work, wanted: int, seconds: float = 6.0) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    deadline = time.monotonic() + seconds
    while len(found) < wanted and time.monotonic() < deadline:
        result = backend.scan(work, 0, 20_000, 64)
        assert result.versions is not None and len(result.versions) == len(result.nonces)
        found += zip(result.nonces, result.versions, strict=True)
    return found


def test_the_emulator_port_opens_a_backend(open_asic: Any) -> None:
    backend = open_asic(chip="bm1366")
    contract: Backend = backend  # mypy checks the protocol, isinstance its run-time shape
    assert isinstance(contract, Backend)
    assert backend.name == "asic" and backend.releases_gil and backend.rolls_versions
    assert backend.stats.driver.known_answer_passed
    assert backend.hashrate == pytest.approx(100_000.0)


def test_scans_return_shares_with_their_rolled_versions(open_asic: Any) -> None:
    backend = open_asic()
    work = _work(2.0**-17)  # about 3 shares a second at 100 kH/s
    found = _scan_until(backend, work, wanted=4)
    assert len(found) >= 4
    for nonce, version in found:
        assert verify_nonce(work.with_version(version), nonce).meets_target
    rolled = [v for _, v in found if v != work.version]
    assert rolled, "small cores 1-7 roll the version; most shares carry rolled bits"
    assert backend.stats.returned == len(found)


def test_hashes_done_is_the_nominal_rate_over_the_wait(open_asic: Any) -> None:
    backend = open_asic(max_wait_s=0.2)
    work = _work(2.0**-10)
    result = backend.scan(work, 0, 10_000, 8)
    assert result.hashes_done == 10_000  # 0.1 s at 100 kH/s
    started = time.monotonic()
    result = backend.scan(work, 0, 1 << 30, 8)
    waited = time.monotonic() - started
    assert waited >= 0.2 and 20_000 <= result.hashes_done <= 100_000 * waited + 1


def test_max_results_stops_early_and_keeps_the_rest(open_asic: Any) -> None:
    backend = open_asic()
    work = _work(2.0**-22)
    backend.scan(work, 0, 50_000, 64)  # the job is running
    time.sleep(0.2)
    result = backend.scan(work, 0, 1_000_000, 2)
    assert len(result.nonces) == 2 and result.hashes_done < 1_000_000
    assert backend.scan(work, 0, 0, 1000).nonces, "what did not fit is kept for the next call"


def test_nonces_for_another_live_work_wait_for_it(open_asic: Any) -> None:
    backend = open_asic(emulator_faults=Faults(late_s=0.3))
    first, second = _work(2.0**-20), _work(2.0**-20, ntime_offset=1)
    backend.scan(first, 0, 30_000, 1000)  # 0.3 s: its nonces arrive late
    backend.scan(second, 0, 40_000, 1000)
    result = backend.scan(first, 0, 0, 1000)
    assert result.nonces
    for nonce, version in zip(result.nonces, result.versions or [], strict=True):
        assert verify_nonce(first.with_version(version), nonce).meets_target


def test_a_new_block_drops_nonces_of_the_old_one(open_asic: Any) -> None:
    backend = open_asic(emulator_faults=Faults(late_s=0.3))
    old, new = _work(2.0**-20), _work(2.0**-20, prev=1)
    backend.scan(old, 0, 30_000, 1000)
    backend.scan(new, 0, 50_000, 1000)
    assert backend.stats.driver.stale > 0


def test_a_work_sent_again_never_repeats_a_share(open_asic: Any) -> None:
    backend = open_asic()
    first, second = _work(2.0**-20), _work(2.0**-20, ntime_offset=1)
    seen: list[tuple[int, int]] = []
    for work in (first, second, first):  # the third call resends ``first`` from its start
        result = backend.scan(work, 0, 50_000, 1000)
        if work is first:
            seen += zip(result.nonces, result.versions or [], strict=True)
    assert seen and len(seen) == len(set(seen))
    assert backend.stats.repeats > 0  # the chain found the first shares again


def test_without_a_mask_every_share_keeps_the_work_version(open_asic: Any) -> None:
    backend = open_asic()
    work = _work(2.0**-16, mask=0)
    found = _scan_until(backend, work, wanted=2)
    assert found and all(version == work.version for _, version in found)


def test_a_bm1397_chain_works_through_the_backend(open_asic: Any) -> None:
    backend = open_asic(chip="bm1397", emulator_hashrate=3000.0)
    work = _work(2.0**-25)
    found = _scan_until(backend, work, wanted=2)
    assert found
    for nonce, version in found:
        assert version in (0x20000000, 0x20002000, 0x20004000, 0x20006000)
        assert verify_nonce(work.with_version(version), nonce).meets_target


def test_the_emulated_board_reports_power(open_asic: Any) -> None:
    backend = open_asic()
    backend.scan(_work(2.0**-10), 0, 20_000, 8)
    assert backend.board_watts is not None and backend.board_joules is not None
    assert backend.board_watts() > 0 and backend.board_joules() > 0
    power = backend.board_power()
    assert power is not None and power.joules > 0


def test_a_vanished_board_stops_the_scan_with_a_device_error(open_asic: Any) -> None:
    backend = open_asic()
    work = _work(2.0**-16)
    backend.scan(work, 0, 1000, 8)
    assert backend.emulator is not None
    backend.emulator.vanish()
    with pytest.raises(DeviceError):
        for _ in range(20):
            backend.scan(work, 0, 20_000, 8)
    backend.close()


def test_scan_checks_its_arguments(open_asic: Any) -> None:
    backend = open_asic()
    with pytest.raises(ValueError):
        backend.scan(_work(1.0), 0, 1 << 33, 1)
    result = backend.scan(_work(1.0), 0, 0, 1)
    assert result == ScanResult([], 0, [])


def test_no_port_is_unavailable_with_the_fix() -> None:
    with pytest.raises(BackendUnavailable, match="--asic-port emulator"):
        open_backend("asic")


def test_a_missing_device_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="cannot open ASIC port"):
        open_backend("asic", port="/dev/does-not-exist-asic")


def test_unknown_options_and_chips_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="prot"):
        open_backend("asic", prot="emulator")
    with pytest.raises(ConfigError, match="bm1370"):
        open_backend("asic", port="emulator", chip="bm1370")


def test_the_probe_lists_the_emulator() -> None:
    info = probe("asic")
    assert info.available and "emulator" in info.detail
