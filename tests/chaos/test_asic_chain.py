"""ASIC chains on a hostile link, over the emulator's real pseudo-terminal: a noisy line
never kills a live chip, an unplugged board comes back when plugged in again, and a
board that never returns is reported, scan after scan, without a hang."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends.asic import AsicBackend, ChainError, known_answer, parse_faults
from hashcore.backends.asic.chips import chip_model
from hashcore.backends.asic.driver import AsicDriver, DriverConfig
from hashcore.backends.asic.emulator import ChainEmulator, EmulatorConfig
from hashcore.backends.asic.faults import Faults
from hashcore.errors import BackendError, ConfigError
from hashcore.work import DEFAULT_VERSION_MASK, Work, difficulty_to_target, verify_nonce

#: Emulated chains report every hash at ticket 1 (see the emulator's docstring).
BASE = 2.0**-32
#: A noisy line: garbage before half the replies, a fifth lose a byte, a tenth a bad CRC,
#: on register replies (census, init reads) as on nonce replies.
NOISE = Faults(garbage=0.5, drop_byte=0.2, corrupt_crc=0.1, register_faults=True)
#: Longest a scan may take while the chain is up or its port is gone: the scan's wait
#: plus slack for a loaded machine (no reopen runs: the port is missing).
SCAN_DEADLINE_S = 0.2 + 2.0


def _work(difficulty: float = 2.0**-22) -> Work:
    return Work(known_answer.work().header76, difficulty_to_target(difficulty), version_mask=DEFAULT_VERSION_MASK)


def _config(emulator: ChainEmulator) -> DriverConfig:
    """A census every 0.1 s, so a short run holds many of them."""
    return DriverConfig(
        ramp_delay_s=0.0,
        detect_silence_s=0.1,
        census_interval_s=0.1,
        census_window_s=0.3,  # a loaded machine may delay a reply past 0.1 s
        census_retry_s=0.2,
        # Four misses in a row over 0.2 + 0.4 + 0.8 s: a loaded CI machine's scheduling
        # must not look like a dead chip, while the noise still costs census replies.
        census_misses=4,
        known_answer_timeout_s=4.0,
        known_answer_retry_s=0.3,
        hashrate_per_chip_mhz=emulator.hashrate_per_chip_mhz,
        base_difficulty=BASE,
    )


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Any]:
    """Start emulated boards behind a stable link (like /dev/serial/by-id); stop them after."""
    started: list[ChainEmulator] = []
    opened: list[AsicBackend] = []

    def start(faults: Faults | None = None, **config: Any) -> tuple[ChainEmulator, AsicBackend]:
        config.setdefault("hashrate", 100_000.0)
        config.setdefault("base_difficulty", BASE)
        config.setdefault("link", str(tmp_path / f"ttyASIC{len(started)}"))
        emulator = ChainEmulator(EmulatorConfig(**config), faults).start()
        started.append(emulator)
        # Opened by path like any device: the backend knows nothing of the emulator.
        driver = AsicDriver(emulator.port, chip_model(emulator.config.chip), _config(emulator))
        driver.open()
        backend = AsicBackend(driver, max_wait_s=0.2)
        opened.append(backend)
        return emulator, backend

    yield start
    for backend in opened:
        backend.close()
    for emulator in started:
        emulator.stop()


def _valid(work: Work, nonces: list[int], versions: list[int] | None) -> bool:
    return all(
        verify_nonce(work.with_version(v), n).meets_target for n, v in zip(nonces, versions or [], strict=True)
    )


@pytest.mark.parametrize("seed", range(20))
def test_a_noisy_link_never_declares_a_live_chip_dead(board: Any, seed: int) -> None:
    _, backend = board(NOISE, chips=1, seed=seed)
    work = _work(2.0**-24)  # hundreds of nonce replies a second around each census
    shares = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        result = backend.scan(work, 0, 20_000, 256)
        assert _valid(work, result.nonces, result.versions)
        shares += len(result.nonces)
        assert backend.driver.chips_answering == 1, backend.state
        assert backend.state in ("mining", "retrying census: 1 of 1 chips silent")
    stats = backend.stats
    assert shares > 0 and stats.failures == 0 and stats.reopens == 0
    assert stats.driver.dropped_bytes > 0, "the noise reached the driver"


def test_the_noise_really_costs_census_replies(board: Any) -> None:
    # What the seeded runs above survive: chip-id replies lost one at a time, each of
    # which used to count the only chip as dead and stop the chain for good.
    # About one miss every two seconds: up to 8 boards of 3 s each, until one is seen.
    misses = 0
    for seed in range(8):
        _, backend = board(NOISE, chips=1, seed=100 + seed)
        work = _work(2.0**-24)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and backend.stats.driver.census_misses == 0:
            backend.scan(work, 0, 20_000, 256)
        misses += backend.stats.driver.census_misses
        assert backend.driver.chips_answering == 1 and backend.stats.failures == 0
        if misses:
            break
    assert misses > 0


def test_a_silent_chip_is_counted_dead_only_after_several_misses(board: Any) -> None:
    emulator, backend = board(chips=2)
    work = _work()
    emulator.faults = Faults(dead_chips=frozenset({1}))
    seen: list[str] = []
    deadline = time.monotonic() + 5.0
    while backend.driver.chips_answering == 2 and time.monotonic() < deadline:
        backend.scan(work, 0, 10_000, 64)
        seen.append(backend.state)
    assert "retrying census: 1 of 2 chips silent" in seen
    assert backend.driver.chips_answering == 1 and backend.state == "mining on 1 of 2 chips"
    assert backend.stats.driver.census_misses >= 3
    emulator.faults = Faults()  # it answers again: counted alive again
    deadline = time.monotonic() + 5.0
    while backend.driver.chips_answering == 1 and time.monotonic() < deadline:
        backend.scan(work, 0, 10_000, 64)
    assert backend.driver.chips_answering == 2 and backend.state == "mining"


def _scan_timed(backend: AsicBackend, work: Work) -> tuple[float, Exception | None]:
    started = time.monotonic()
    try:
        backend.scan(work, 0, 20_000, 64)
    except BackendError as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_an_unplugged_board_comes_back_when_plugged_in_again(board: Any) -> None:
    emulator, backend = board(chips=2)
    link = emulator.port
    work = _work()
    assert backend.scan(work, 0, 20_000, 64).hashes_done > 0 and backend.state == "mining"

    emulator.vanish()
    errors = [exc for _, exc in (_scan_timed(backend, work) for _ in range(3)) if exc is not None]
    assert errors and all(isinstance(exc, ChainError) for exc in errors)
    assert backend.state == f"port gone: {link}"

    emulator.replug()  # a new pty behind the same name, chips power-cycled
    _, error = _scan_timed(backend, work)
    assert error is None, error
    assert backend.state == "mining" and backend.stats.reopens == 1 and backend.stats.failures == 1
    assert backend.driver.chips_answering == 2
    found: list[int] = []
    deadline = time.monotonic() + 5.0
    while not found and time.monotonic() < deadline:
        result = backend.scan(work, 0, 20_000, 64)
        assert _valid(work, result.nonces, result.versions)
        found += result.nonces
    assert found, "hashing resumed on the board plugged back in"
    assert backend.stats.driver.known_answer_passed


def test_a_board_that_never_returns_is_reported_each_scan_without_a_hang(board: Any) -> None:
    emulator, backend = board()
    link = emulator.port
    work = _work()
    backend.scan(work, 0, 20_000, 64)
    emulator.vanish()
    outcomes = [_scan_timed(backend, work) for _ in range(10)]
    for elapsed, _ in outcomes:
        assert elapsed < SCAN_DEADLINE_S
    errors = [exc for _, exc in outcomes]
    assert all(isinstance(exc, ChainError) for exc in errors[1:])  # the first may return what it had
    assert all(link in str(exc) and "gone" in str(exc) for exc in errors[1:])
    assert backend.state == f"port gone: {link}"
    backend.close()
    assert backend.state == "closed"
    with pytest.raises(ChainError, match="closed"):
        backend.scan(work, 0, 1000, 1)


def test_an_operating_point_survives_a_reopen(board: Any) -> None:
    emulator, backend = board()
    backend.set_frequency(300)
    emulator.vanish()
    _scan_timed(backend, _work())
    emulator.replug()
    _, error = _scan_timed(backend, _work())
    assert error is None, error
    assert backend.driver.frequency_mhz == pytest.approx(300, abs=7)
    assert emulator.chain is not None and emulator.chain.chips[0].frequency_mhz == pytest.approx(300, abs=7)


# --- the emulator's faults from the command line ---------------------------------------


def test_fault_text_parses_strictly() -> None:
    assert parse_faults("garbage=0.5,drop=0.2") == Faults(garbage=0.5, drop_byte=0.2)
    assert parse_faults("crc=0.1, late=0.3,registers=1") == Faults(corrupt_crc=0.1, late_s=0.3, register_faults=True)
    assert parse_faults("corrupt_crc=1,drop_byte=0") == Faults(corrupt_crc=1.0)
    for text, needle in [
        ("garbage=1.5", "garbage=1.5 is out of range"),
        ("drop=-0.1", "drop=-0.1 is out of range"),
        ("noise=0.1", "unknown emulator fault 'noise'"),
        ("garbage", "needs a value"),
        ("crc=abc", "not a number"),
        ("drop=nan", "out of range"),
        ("registers=0.5", "0 or 1"),
        ("garbage=0.1,garbage=0.2", "twice"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            parse_faults(text)


def _hashcore(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hashcore.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(
    ("faults", "needle"),
    [("garbage=2", "garbage=2 is out of range"), ("hum=0.1", "unknown emulator fault 'hum'")],
)
def test_a_bad_fault_flag_is_one_argparse_error_naming_it(faults: str, needle: str) -> None:
    done = _hashcore("mine", "--embedded", "--backend", "asic", "--asic-port", "emulator",
                     "--asic-emulator-faults", faults, "--duration", "1")
    assert done.returncode == 2
    assert "--asic-emulator-faults" in done.stderr and needle in done.stderr
    assert "Traceback" not in done.stderr


def test_the_emulator_mines_with_faults_from_the_command_line() -> None:
    done = _hashcore("mine", "--embedded", "--backend", "asic", "--asic-port", "emulator",
                     "--asic-emulator-faults", "garbage=0.5,drop=0.2", "--difficulty", "0.00001",
                     "--duration", "6", "--api-listen", "off", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["accepted"] > 0 and summary["rejected"] == 0
    asic = summary["backends"]["asic"]
    assert asic["hashes"] > 0 and asic["errors"] == 0
