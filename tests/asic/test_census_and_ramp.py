"""The chip census and the clock ramp on their own, without a port: when a census read
goes out, when a chip counts as silent, dead and alive again, and which frequencies a
ramp writes."""

from __future__ import annotations

import itertools

import pytest

from hashcore.backends.asic.census import ChipCensus
from hashcore.backends.asic.chips import CHIPS
from hashcore.backends.asic.clock import ramp_steps


def _census() -> ChipCensus:
    census = ChipCensus("test", interval_s=30.0, window_s=1.0, retry_s=2.0, misses_to_dead=3)
    census.reset([0, 128])
    census.start(0.0)
    return census


def _run(census: ChipCensus, at: float, answering: list[int]) -> None:
    """One census sent at ``at`` and counted when its window is over."""
    assert census.step(at) == "send"
    for address in answering:
        assert census.answer(address)
    assert census.step(at + 0.5) == "collecting"
    assert census.step(at + 1.0) == "idle"


def test_a_census_goes_out_each_interval_and_answers_count_only_inside_it() -> None:
    census = _census()
    assert census.step(29.9) == "idle"
    assert not census.answer(0)  # no census collecting: the answer is not the census's
    _run(census, 30.0, [0, 128])
    assert (census.answering, census.silent, census.misses) == (2, 0, 0)
    assert census.step(59.9) == "idle"
    assert census.step(61.0) == "send"


def test_a_chip_counts_dead_after_misses_in_a_row_asked_sooner_each_time_and_comes_back() -> None:
    census = _census()
    _run(census, 30.0, [0])
    assert (census.answering, census.silent, census.misses) == (2, 1, 1)
    # Asked again after retry_s, then twice that: silent, not dead, until the third miss.
    assert census.step(32.9) == "idle"
    _run(census, 33.0, [0])
    assert census.step(37.9) == "idle"
    _run(census, 38.0, [0])
    assert (census.answering, census.silent, census.misses) == (1, 0, 3)
    # A dead chip is no reason to hurry: the next census comes a full interval later.
    assert census.step(68.9) == "idle"
    _run(census, 69.0, [0, 128])
    assert (census.answering, census.silent) == (2, 0)


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_a_ramp_writes_steps_toward_the_target_and_ends_on_it(name: str) -> None:
    chip = CHIPS[name]
    up = ramp_steps(chip, 50.0, 100.0, 6.25)
    assert up[-1] == 100.0 and all(b > a for a, b in itertools.pairwise(up))
    assert all(b - a <= 6.25 for a, b in zip([50.0, *up], up, strict=False))
    down = ramp_steps(chip, 100.0, 75.0, 6.25)
    assert down[-1] == 75.0 and all(b < a for a, b in itertools.pairwise(down))
    assert ramp_steps(chip, 50.0, 400.0, 0.0) == [400.0]
