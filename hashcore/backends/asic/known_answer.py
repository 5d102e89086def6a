"""The known job and nonces a chain must reproduce at open (cgminer's detect step), and
the check itself.

From a real capture of an Antminer S19 XP board (BM1366): one job and five nonce replies,
each rebuilt into a header that hashes below difficulty 1. ``tests/vectors/
bm1366_capture.json`` holds the capture; a test checks these constants against it.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from hashcore.backends.asic.jobs import FoundNonce
from hashcore.errors import DeviceError
from hashcore.work import DEFAULT_VERSION_MASK, DIFF1_TARGET, Work

log = logging.getLogger("hashcore.backends.asic.driver")

#: Header bytes 4-76 of the captured job (prev hash, merkle root, ntime, nbits).
_HEADER_REST = bytes.fromhex(
    "c25721d4e8be8ef8ccfe036f478a5e7c5857dda2659049100c00000000000000"
    "322885c74474ede0bfba1b1d8d70ed9b7b42acc90fffdf3fcbdaf23ff3c00910"
    "e016af64f8952419"
)
VERSION = 0x20000000
#: The captured job id.
JOB_ID = 40

#: (nonce, header version) of every captured reply.
GOLDEN: frozenset[tuple[int, int]] = frozenset(
    {
        (0xA9283908, 0x20006000),
        (0xBE4E511A, 0x20000000),
        (0x0A1A7030, 0x20000000),
        (0xDFD27242, 0x20002000),
        (0x2B5FB356, 0x20002000),
    }
)

#: The check starts the chain's search a little below the lowest golden nonce, so a slow
#: (emulated) chain reaches it at once; a real chain sweeps the whole range in milliseconds.
START_NONCE = min(nonce for nonce, _ in GOLDEN) - 0x100

#: Every golden nonce has difficulty >= 1, so the check runs at difficulty 1.


def work() -> Work:
    """The captured job as Work at difficulty 1, with the version mask the board rolled under."""
    header76 = VERSION.to_bytes(4, "little") + _HEADER_REST
    return Work(header76, target=DIFF1_TARGET, version_mask=DEFAULT_VERSION_MASK)


class KnownAnswerFailed(DeviceError):
    """No captured nonce came back in time."""


class Chain(Protocol):
    """What the check drives: the driver of an initialised chain."""

    port: str

    def send_work(self, work: Work, *, clean: bool = False, starting_nonce: int = 0) -> int: ...

    def next_found(self, timeout: float) -> FoundNonce | None: ...

    def clear_jobs(self) -> None: ...


def check(chain: Chain, timeout_s: float, retry_s: float) -> None:
    """Send the captured job and wait for a captured nonce; KnownAnswerFailed when none
    comes within ``timeout_s``.

    The job goes out again after ``retry_s`` (doubling) without the nonce: the one reply
    that carries it may be lost on a noisy link, and the chain, searching on, would not
    find it again. The chain's jobs are cleared afterwards, pass or fail.
    """
    deadline = time.monotonic() + timeout_s
    others = sends = 0
    wait = retry_s
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            chain.send_work(work(), clean=True, starting_nonce=START_NONCE)
            sends += 1
            attempt_end = time.monotonic() + min(wait, remaining)
            wait *= 2
            while (left := attempt_end - time.monotonic()) > 0:
                found = chain.next_found(left)
                if found is None:
                    continue
                if (found.nonce, found.version) in GOLDEN:
                    log.info("%s: known answer %08x (version %08x) came back", chain.port, found.nonce, found.version)
                    return
                others += 1
        raise KnownAnswerFailed(
            f"known-answer check failed on {chain.port}: no known nonce within {timeout_s:g} s "
            f"({sends} tries, {others} other nonces); wrong chip model, clock or a damaged chain"
        )
    finally:
        chain.clear_jobs()
