"""Faults the chain emulator injects into its replies, as an operator writes them
(``--asic-emulator-faults garbage=0.5,drop=0.2``) and as they change a reply's bytes."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hashcore.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults the emulator injects into its nonce replies, and its register replies too
    with ``register_faults``.

    Attributes:
        corrupt_crc: probability that a reply's CRC is wrong.
        drop_byte: probability that a reply loses one byte.
        garbage: probability that 1-16 random bytes (never 0xAA, so they cannot fake a
            preamble) come before a reply.
        late_s: delay between finding a nonce and sending it.
        dead_chips: chain positions that stopped answering: they neither hash nor reply.
        register_faults: CRC errors, dropped bytes and garbage hit register replies as
            well (chip-id reads at init and in the census), as on a truly noisy link.
    """

    corrupt_crc: float = 0.0
    drop_byte: float = 0.0
    garbage: float = 0.0
    late_s: float = 0.0
    dead_chips: frozenset[int] = frozenset()
    register_faults: bool = False

    def __post_init__(self) -> None:
        for name in ("corrupt_crc", "drop_byte", "garbage"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"emulator fault {name} is a probability in [0, 1], not {value}")
        if not 0.0 <= self.late_s <= MAX_LATE_S:
            raise ConfigError(f"emulator fault late_s is 0..{MAX_LATE_S:g} seconds, not {self.late_s}")


#: The longest reply delay the emulator injects (longer ones only starve the known answer).
MAX_LATE_S = 1.0
#: Fault names an operator writes (``--asic-emulator-faults garbage=0.5,drop=0.2``), with
#: the :class:`Faults` field each sets; the field names are accepted too.
FAULT_NAMES = {
    "garbage": "garbage",
    "drop": "drop_byte",
    "drop_byte": "drop_byte",
    "crc": "corrupt_crc",
    "corrupt_crc": "corrupt_crc",
    "late": "late_s",
    "late_s": "late_s",
    "registers": "register_faults",
    "register_faults": "register_faults",
}


def parse_faults(text: str) -> Faults:
    """``garbage=0.5,drop=0.2,crc=0.1,late=0.2,registers=1`` as :class:`Faults`
    (probabilities in [0, 1], ``late`` in seconds up to 1, ``registers`` 0 or 1).
    ConfigError naming the first bad item."""
    settings: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ConfigError(f"emulator fault {item!r} needs a value: NAME=VALUE")
        if name not in FAULT_NAMES:
            raise ConfigError(f"unknown emulator fault {name!r}; known: garbage, drop, crc, late, registers")
        field_name = FAULT_NAMES[name]
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"emulator fault {name}={raw.strip()!r} is not a number") from None
        if not 0.0 <= value <= 1.0:  # NaN fails this too
            unit = " seconds" if field_name == "late_s" else ""
            raise ConfigError(f"emulator fault {name}={raw.strip()} is out of range: 0..1{unit}")
        if field_name == "register_faults" and value not in (0.0, 1.0):
            raise ConfigError(f"emulator fault {name}={raw.strip()} must be 0 or 1")
        if field_name in settings:
            raise ConfigError(f"emulator fault {name} is given twice")
        settings[field_name] = value
    return Faults(
        corrupt_crc=settings.get("corrupt_crc", 0.0),
        drop_byte=settings.get("drop_byte", 0.0),
        garbage=settings.get("garbage", 0.0),
        late_s=settings.get("late_s", 0.0),
        register_faults=settings.get("register_faults", 0.0) == 1.0,
    )


def inject(frame: bytes, faults: Faults, rng: random.Random) -> bytes:
    """``frame`` as a noisy link delivers it: a wrong CRC, a byte lost, garbage before it,
    each with its probability in ``faults``."""
    if faults.corrupt_crc and rng.random() < faults.corrupt_crc:
        frame = frame[:-1] + bytes((frame[-1] ^ 0x01,))
    if faults.drop_byte and rng.random() < faults.drop_byte:
        i = rng.randrange(len(frame))
        frame = frame[:i] + frame[i + 1 :]
    if faults.garbage and rng.random() < faults.garbage:
        junk = bytes(rng.choice([b for b in range(256) if b != 0xAA]) for _ in range(rng.randint(1, 16)))
        frame = junk + frame
    return frame
