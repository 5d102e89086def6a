from __future__ import annotations

from pathlib import Path

import pytest

from hashcore.telemetry.rapl import ROOT_ENV

from .powercap_tree import FakePowercap, standard_tree


class FakeClock:
    """A monotonic nanosecond clock that moves only when told to."""

    def __init__(self) -> None:
        self.ns = 10**12

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ROOT_ENV, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return standard_tree(tmp_path)
