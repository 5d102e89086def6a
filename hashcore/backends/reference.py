"""The reference backend: hashlib, one nonce at a time. Slow, exact, everywhere.

It holds the GIL (hashlib releases it only for large inputs), so the engine runs it in
worker processes when more than one thread is asked for.
"""

from __future__ import annotations

import hashlib
import struct

from hashcore.backends.base import BackendInfo, ScanResult, check_range, register
from hashcore.work import Work


class ReferenceBackend:
    """SHA-256d with hashlib; the first 64 header bytes are hashed once per scan."""

    name = "reference"
    releases_gil = False

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult:
        check_range(nonce_start, count, max_results)
        # hashlib's copy() of a state that has absorbed the first 64 bytes is the
        # midstate trick without leaving hashlib.
        first = hashlib.sha256(work.header76[:64])
        tail = work.header76[64:]
        sha256 = hashlib.sha256
        pack = struct.Struct("<I").pack
        target = work.target
        found: list[int] = []
        for nonce in range(nonce_start, nonce_start + count):
            inner = first.copy()
            inner.update(tail + pack(nonce))
            digest = sha256(inner.digest()).digest()
            if int.from_bytes(digest, "little") <= target:
                found.append(nonce)
                if len(found) >= max_results:
                    return ScanResult(found, nonce - nonce_start + 1)
        return ScanResult(found, count)

    def close(self) -> None:
        pass


def _open(**_options: object) -> ReferenceBackend:
    return ReferenceBackend()


def _probe() -> BackendInfo:
    return BackendInfo("reference", True, "hashlib, pure Python (always available)")


register("reference", _open, _probe, "hashlib in Python; slow but exact")
