"""The Backend contract's optional members, read through base's functions: each gives
its default for a backend without the member and the backend's own value where it has it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hashcore.backends import base
from hashcore.backends.base import ScanResult
from hashcore.backends.reference import ReferenceBackend
from hashcore.work import Work


@dataclass(frozen=True)
class _Device:
    kind: str
    compute_units: int


class _Everything:
    """A backend with every optional member."""

    name = "stub"
    releases_gil = True
    path = "x86sha"
    energy_kind = "gpu"
    close_interrupts_scan = True
    state = "port gone: /dev/ttyUSB0"

    def __init__(self) -> None:
        self.devices = [_Device("GPU", 132), _Device("GPU", 108)]
        self.points: list[tuple[float, float | None]] = []

    def energy_options(self) -> dict[str, Any]:
        return {"gpu": "00000000:3B:00.0"}

    def set_operating_point(self, mhz: float, mv: float | None = None) -> tuple[float, float | None]:
        self.points.append((mhz, mv))
        return mhz, mv

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        return ScanResult([], count)

    def close(self) -> None:
        pass


def test_a_backend_without_the_optional_members_gets_the_defaults() -> None:
    plain = ReferenceBackend()
    assert base.backend_path(plain) is None
    assert base.energy_kind(plain) == "cpu"
    assert base.energy_options(plain) == {}
    assert base.driven_devices(plain) is None
    assert base.operating_point_control(plain) is None
    assert base.device_state(plain) is None
    assert base.closes_mid_scan(plain) is False


def test_a_backend_with_every_optional_member_is_read_as_it_says() -> None:
    full = _Everything()
    assert base.backend_path(full) == "x86sha"
    assert base.energy_kind(full) == "gpu"
    assert base.energy_options(full) == {"gpu": "00000000:3B:00.0"}
    devices = base.driven_devices(full)
    assert devices is not None and [d.compute_units for d in devices] == [132, 108]
    control = base.operating_point_control(full)
    assert control is full
    assert control.set_operating_point(400.0, 1150.0) == (400.0, 1150.0)
    assert full.points == [(400.0, 1150.0)]
    assert base.device_state(full) == "port gone: /dev/ttyUSB0"
    assert base.closes_mid_scan(full) is True


def test_members_of_the_wrong_type_read_as_absent() -> None:
    odd = _Everything()
    odd.path = None  # type: ignore[assignment]
    odd.state = 3  # type: ignore[assignment]
    odd.devices = "0:0"  # type: ignore[assignment]
    assert base.backend_path(odd) is None
    assert base.device_state(odd) is None
    assert base.driven_devices(odd) is None
