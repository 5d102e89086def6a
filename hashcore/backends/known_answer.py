"""The genesis block (mainnet block 0): the known answer each hashing path must find
before it is used.

A path that scans a small range around the genesis nonce at the genesis target must
return exactly that nonce and count the whole range; anything else (a wrong kernel, a
miscompiled code path, a broken driver) means its hashes cannot be trusted. The C, Numba
and OpenCL backends run this check; the ASIC backend checks a captured job of its own
chips instead (:mod:`hashcore.backends.asic.known_answer`), since a chain mines whole
jobs rather than nonce ranges.
"""

from __future__ import annotations

from collections.abc import Callable

from hashcore.backends.base import ScanResult
from hashcore.errors import BackendError
from hashcore.work import Work, nbits_to_target

#: The genesis block's 80-byte header.
GENESIS_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd"
    "7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
#: Its nonce, and the block hash as it is usually displayed (bytes reversed).
GENESIS_NONCE = 0x7C2BAC1D
GENESIS_HASH_HEX = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
#: The target of its nbits (0x1d00ffff, difficulty 1).
GENESIS_TARGET = nbits_to_target(0x1D00FFFF)

#: Nonces scanned around the genesis nonce by default (half below, half from it on),
#: and the results asked for: more than one, so a path reporting extras is caught.
SPAN = 80
MAX_RESULTS = 4

#: ``scan(work, nonce_start, count, max_results)``, as :class:`~hashcore.backends.base.Backend` has it.
ScanFunction = Callable[[Work, int, int, int], ScanResult]


def genesis_work(target: int = GENESIS_TARGET) -> Work:
    """The genesis header (nonce excluded) as Work at ``target``."""
    return Work.from_header(GENESIS_HEADER[:76], target)


def wrong_answer(scan: ScanFunction, span: int = SPAN, max_results: int = MAX_RESULTS) -> ScanResult | None:
    """Scan ``span`` nonces centred on the genesis nonce at the genesis target: None when
    exactly the genesis nonce was found and the whole range counted, else the result."""
    result = scan(genesis_work(), GENESIS_NONCE - span // 2, span, max_results)
    if result.nonces == [GENESIS_NONCE] and result.hashes_done == span:
        return None
    return result


def known_answer_error(subject: str, fix: str) -> BackendError:
    """The error of a path that failed the check: ``subject`` names the backend and path."""
    return BackendError(
        f"{subject} failed its known-answer test (the genesis block); do not mine with it; {fix}"
    )


def check_known_answer(scan: ScanFunction, subject: str, fix: str) -> None:
    """Raise :func:`known_answer_error` unless ``scan`` finds exactly the genesis nonce."""
    if wrong_answer(scan) is not None:
        raise known_answer_error(subject, fix)
