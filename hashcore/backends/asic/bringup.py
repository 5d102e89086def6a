"""Bringing a chain up, per chip model: counting the chips (and telling a wrong
``--asic-chip`` from a silent chain), giving them addresses, and the register writes of
each model's init, in the order the open firmware uses.

The sequences drive the driver through :class:`ChainSetup` (ticket, clock and the
census's view of the addresses are the driver's) and write registers on its link.
"""

from __future__ import annotations

import logging
from typing import Protocol

from hashcore.backends.asic.chips import (
    BASE_BAUD,
    BM1366_FAST_BAUD,
    BM1366_FAST_UART_VALUE,
    CHIPS,
    REG_ANALOG_MUX,
    REG_CHIP_ID,
    REG_CLOCK_ORDER0,
    REG_CLOCK_ORDER1,
    REG_CORE_CONTROL,
    REG_FAST_UART,
    REG_HASH_COUNTING,
    REG_INIT_CONTROL,
    REG_IO_DRIVER,
    REG_MISC_CONTROL,
    REG_ORDERED_CLOCK_ENABLE,
    REG_PLL0_DIVIDER,
    REG_PLL3,
    REG_VERSION_MASK,
    ChipModel,
    encode_misc_control_baud,
    encode_version_mask,
)
from hashcore.backends.asic.framing import RegisterReply, ReplyDecoder, chain_inactive, encode_command, set_address
from hashcore.backends.asic.link import SerialLink
from hashcore.errors import ConfigError, DeviceError
from hashcore.work import DEFAULT_VERSION_MASK

log = logging.getLogger("hashcore.backends.asic.driver")

#: Chip addresses are one byte: a chain addresses at most this many chips.
MAX_CHIPS = 256


class ChainSetup(Protocol):
    """What an init sequence asks of the driver."""

    def detect(self) -> int:
        """Count the chips answering; DeviceError when none."""
        ...

    def assign_addresses(self, count: int) -> list[int]:
        """Give ``count`` chips their addresses; returns them."""
        ...

    def set_ticket(self, ticket: int) -> None: ...

    def set_frequency(self, mhz: float, *, ramp: bool = True) -> float: ...


def detect_chips(link: SerialLink, chip: ChipModel, *, silence_s: float, attempts: int) -> int:
    """Count the chips answering a chip-id read; DeviceError when none or the wrong model.

    A reply lost on the link would hide a chip, and a chip counted short never gets an
    address: so the chain is read until two reads agree (the largest count wins) or
    ``attempts`` run out, and a silent chain is asked again after a pause that doubles
    each time.
    """
    port = link.port
    best: list[RegisterReply] = []
    foreign: set[int] = set()
    pause = silence_s
    for attempt in range(attempts):
        replies = link.read_register(REG_CHIP_ID, silence_s=silence_s)
        ours = [reply for reply in replies if reply.value >> 16 == chip.chip_id]
        foreign |= {reply.value >> 16 for reply in replies} - {chip.chip_id}
        if ours and len(ours) == len(best):
            break
        if len(ours) > len(best):
            best = ours
        elif not best and attempt + 1 < attempts:
            log.info("%s: no chip-id reply, asking again in %.2f s", port, pause)
            # close() from another thread ends the pause at once.
            link.wait_closed(pause)
            link.raise_if_failed()
            pause *= 2
    if not best:
        if foreign:
            found = ", ".join(f"{i:04x}" for i in sorted(foreign))
            raise DeviceError(
                f"chips on {port} answered with id {found}, not {chip.chip_id:04x} "
                f"({chip.name}): pass the right --asic-chip"
            )
        other = other_model_answering(link.raw_tail(), chip)
        if other is not None:
            raise DeviceError(
                f"chips on {port} answered as {other.name} (id {other.chip_id:04x}), "
                f"not {chip.chip_id:04x} ({chip.name}): pass --asic-chip {other.name}"
            )
        raise DeviceError(
            f"no ASIC chip answered on {port}: check the board's power, the reset line, "
            f"the cable and that --asic-chip {chip.name} is right"
        )
    if foreign:
        # Among good replies a stray id is a frame the noise made, not a chip.
        log.warning("%s: ignored chip-id replies %s", port, ", ".join(f"{i:04x}" for i in sorted(foreign)))
    log.info("%d %s chip(s) on %s", len(best), chip.name, port)
    return len(best)


def other_model_answering(raw: bytes, chip: ChipModel) -> ChipModel | None:
    """Another model whose chip-id replies are in ``raw``, bytes that did not decode as ``chip``'s."""
    for model in CHIPS.values():
        if model.reply_length == chip.reply_length:
            continue
        for reply in ReplyDecoder(model.reply_length).feed(raw):
            if isinstance(reply, RegisterReply) and reply.value >> 16 == model.chip_id:
                return model
    return None


def address_chain(link: SerialLink, count: int) -> list[int]:
    """Reset every chip's address and give ``count`` chips addresses spread over the
    byte; returns them in chain order."""
    if count > MAX_CHIPS:
        raise DeviceError(f"{count} chips answered on {link.port}; a chain addresses at most {MAX_CHIPS}")
    link.send_frame(encode_command(chain_inactive()))
    interval = MAX_CHIPS // count
    addresses = [i * interval for i in range(count)]
    for address in addresses:
        link.send_frame(encode_command(set_address(address)))
    return addresses


def init_bm1366(link: SerialLink, chain: ChainSetup, mhz: float, baud: int | None) -> None:
    """A BM1366 chain from reset to hashing at ``mhz``, its link at ``baud`` (None: fast)."""
    # Order and values as the open Bitaxe firmware brings a BM1366 chain up.
    for _ in range(3):
        link.write_register(REG_VERSION_MASK, encode_version_mask(DEFAULT_VERSION_MASK))
    count = chain.detect()
    link.write_register(REG_INIT_CONTROL, 0x00070000)
    link.write_register(REG_MISC_CONTROL, 0xFF0FC100)
    addresses = chain.assign_addresses(count)
    link.write_register(REG_CORE_CONTROL, 0x80008540)
    link.write_register(REG_CORE_CONTROL, 0x80008020)
    chain.set_ticket(256)
    link.write_register(REG_ANALOG_MUX, 0x00000003)
    link.write_register(REG_IO_DRIVER, 0x02111111)
    for address in addresses:
        link.write_register(REG_INIT_CONTROL, 0x000701F0, address)
        link.write_register(REG_MISC_CONTROL, 0xF000C100, address)
        link.write_register(REG_CORE_CONTROL, 0x80008540, address)
        link.write_register(REG_CORE_CONTROL, 0x80008020, address)
        link.write_register(REG_CORE_CONTROL, 0x800082AA, address)
    chain.set_frequency(mhz)
    link.write_register(REG_HASH_COUNTING, 0x0000151C)
    link.write_register(REG_VERSION_MASK, encode_version_mask(DEFAULT_VERSION_MASK))
    if baud is None or baud == BM1366_FAST_BAUD:
        link.write_register(REG_FAST_UART, BM1366_FAST_UART_VALUE)
        link.switch_baud(BM1366_FAST_BAUD)
    elif baud != BASE_BAUD:
        raise ConfigError(f"a BM1366 link runs at {BASE_BAUD} or {BM1366_FAST_BAUD} baud, not {baud}")


def init_bm1397(link: SerialLink, chain: ChainSetup, mhz: float, baud: int | None) -> None:
    """A BM1397 chain from reset to hashing at ``mhz``, its link at ``baud`` (None: 115,200)."""
    count = chain.detect()
    chain.assign_addresses(count)
    link.write_register(REG_CLOCK_ORDER0, 0x00000000)
    link.write_register(REG_CLOCK_ORDER1, 0x00000000)
    link.write_register(REG_ORDERED_CLOCK_ENABLE, 0x00000001)
    link.write_register(REG_CORE_CONTROL, 0x80008074)
    chain.set_ticket(256)
    link.write_register(REG_PLL3, 0xC0700111)
    link.write_register(REG_FAST_UART, 0x0600000F)
    link.write_register(REG_MISC_CONTROL, encode_misc_control_baud(BASE_BAUD))
    link.write_register(REG_PLL0_DIVIDER, 0x0F0F0F00)
    chain.set_frequency(mhz)
    if baud is not None and baud != BASE_BAUD:
        link.write_register(REG_MISC_CONTROL, encode_misc_control_baud(baud))
        link.switch_baud(baud)
