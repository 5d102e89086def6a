"""The chips' clock: PLL0 moved to a new frequency in small steps, with a pause after
each, so the chain's current draw changes gradually (the way the open firmware ramps)."""

from __future__ import annotations

import logging
import time

from hashcore.backends.asic.chips import REG_PLL0, ChipModel
from hashcore.backends.asic.link import SerialLink

log = logging.getLogger("hashcore.backends.asic.driver")


def ramp_steps(chip: ChipModel, from_mhz: float, to_mhz: float, step_mhz: float) -> list[float]:
    """The frequencies a ramp from ``from_mhz`` writes on its way, ending with ``to_mhz``;
    only ``to_mhz`` where ``step_mhz`` is 0."""
    target = chip.encode_pll(to_mhz)
    steps: list[float] = []
    current = from_mhz
    if step_mhz > 0:
        while abs(target.mhz - current) > step_mhz:
            current += step_mhz if target.mhz > current else -step_mhz
            steps.append(current)
    return [*steps, to_mhz]


class ChainClock:
    """The clock of every chip on a chain, as last written to PLL0.

    Attributes:
        mhz: the frequency the chips were last set to (the chip's start frequency after
            reset, until the first ramp).
    """

    def __init__(self, link: SerialLink, chip: ChipModel, *, step_mhz: float, delay_s: float) -> None:
        self._link = link
        self._chip = chip
        self._step_mhz = step_mhz
        self._delay_s = delay_s
        self.mhz = chip.start_mhz

    def ramp_to(self, mhz: float, ramp: bool = True) -> float:
        """Move the clock to ``mhz`` (in steps where ``ramp``); returns the MHz reached."""
        for f in ramp_steps(self._chip, self.mhz, mhz, self._step_mhz if ramp else 0.0):
            setting = self._chip.encode_pll(f)
            self._link.write_register(REG_PLL0, setting.value)
            self.mhz = setting.mhz
            if self._delay_s > 0 and f != mhz:
                time.sleep(self._delay_s)
        log.info("%s clock at %.2f MHz", self._link.port, self.mhz)
        return self.mhz
