"""The nonce-independent part of scanning a header, shared by the Numba and OpenCL kernels.

For header bytes 64-80 (the second SHA-256 block, whose word 3 is the nonce) everything
before the nonce enters is the same for every nonce of a Work, so it is computed here
once per Work and handed to the kernels as one array of uint32 words:

======== ===== ==============================================================
offset   words what
======== ===== ==============================================================
P_MID    8     the midstate a..h (state after the header's first 64 bytes)
P_TAIL   3     message words 0-2 of the second block (header bytes 64-76, big-endian)
P_STATE3 8     a..h after rounds 0-2 of the second block (they do not read the nonce)
P_W16    2     message words 16 and 17 (their inputs are words 0-2, 9, 10, 14, 15)
P_STATE2 8     a..h after rounds 0-1 (SHA-NI does rounds in pairs, so starts at 2)
P_TARGET 8     the target as little-endian words, the most significant last
======== ===== ==============================================================

The OpenCL kernels receive these offsets as ``-D`` options, so the layout is defined
once, here.
"""

from __future__ import annotations

from hashcore.sha256 import K
from hashcore.work import Work

MASK32 = 0xFFFFFFFF

P_MID = 0
P_TAIL = 8
P_STATE3 = 11
P_W16 = 19
P_STATE2 = 21
P_TARGET = 29
P_SIZE = 37

OFFSETS = {"P_MID": P_MID, "P_TAIL": P_TAIL, "P_STATE3": P_STATE3, "P_W16": P_W16, "P_STATE2": P_STATE2,
           "P_TARGET": P_TARGET, "P_SIZE": P_SIZE}  # fmt: skip


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & MASK32


def _round(state: list[int], kw: int) -> list[int]:
    a, b, c, d, e, f, g, h = state
    t1 = (h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + kw) & MASK32
    t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & MASK32
    return [(t1 + t2) & MASK32, a, b, c, (d + t1) & MASK32, e, f, g]


def _ssig0(x: int) -> int:
    return _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)


def _ssig1(x: int) -> int:
    return _rotr(x, 17) ^ _rotr(x, 19) ^ (x >> 10)


def precompute(work: Work) -> list[int]:
    """The words described in the module docstring, in that order (``P_SIZE`` of them)."""
    tail = [int.from_bytes(work.tail[i : i + 4], "big") for i in range(0, 12, 4)]
    state = list(work.midstate)
    states = []
    for i in range(3):
        state = _round(state, (K[i] + tail[i]) & MASK32)
        states.append(state)
    # The second block is tail0 tail1 tail2 nonce 0x80000000 0 ... 0 640.
    w16 = (_ssig1(0) + 0 + _ssig0(tail[1]) + tail[0]) & MASK32
    w17 = (_ssig1(640) + 0 + _ssig0(tail[2]) + tail[1]) & MASK32
    target = [(work.target >> (32 * i)) & MASK32 for i in range(8)]
    words = [*work.midstate, *tail, *states[2], w16, w17, *states[1], *target]
    assert len(words) == P_SIZE
    return words
