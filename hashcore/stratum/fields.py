"""The pool's hex fields read strictly, and ``mining.notify`` params to a Job and back.

Hex text is converted here, at the Stratum edge: what comes out is bytes and ints. Only
hex digits in pairs are taken (``bytes.fromhex`` alone would take spaces), each field at
its exact size; anything else is a :class:`BadMessage` naming the field.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from hashcore.errors import HashcoreError
from hashcore.stratum.jsonrpc import printable
from hashcore.work import Job, swap_words

_HEX_TEXT = re.compile(r"[0-9a-fA-F]*")


class BadMessage(Exception):
    """A message from the pool had the wrong shape (the text says how); the protocol
    turns it into a :class:`~hashcore.stratum.events.ProtocolError`."""


def job_from_notify(params: list[Any]) -> Job:
    """A Job from ``mining.notify`` params, checking every field's type and size."""
    if not isinstance(params, list) or len(params) < 9:
        raise BadMessage(f"needs 9 params, got {len(params) if isinstance(params, list) else params!r}")
    job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, clean = params[:9]
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        job_id = str(job_id)
    if not isinstance(job_id, str) or not job_id or len(job_id) > 128 or not job_id.isprintable():
        raise BadMessage(f"job_id {printable(job_id, 80)!r} is not a short printable string")
    if not isinstance(branch, list):
        raise BadMessage(f"merkle_branch is {type(branch).__name__}, not a list")
    if not isinstance(clean, bool):
        raise BadMessage(f"clean_jobs {clean!r} is not true or false")
    try:
        job = Job(
            job_id=job_id,
            prev_hash=swap_words(hex_bytes(prevhash, "prevhash", 32)),
            coinb1=hex_bytes(coinb1, "coinb1"),
            coinb2=hex_bytes(coinb2, "coinb2"),
            merkle_branch=tuple(hex_bytes(node, f"merkle_branch[{i}]", 32) for i, node in enumerate(branch)),
            version=hex_u32(version, "version"),
            nbits=hex_u32(nbits, "nbits"),
            ntime=hex_u32(ntime, "ntime"),
            clean_jobs=clean,
        )
        job.block_target  # noqa: B018 - refuse an nbits that encodes no target now, not mid-mining
    except HashcoreError as exc:
        raise BadMessage(str(exc)) from exc
    return job


def notify_params(job: Job) -> list[Any]:
    """``mining.notify`` params for a Job (the pool's side of :func:`job_from_notify`)."""
    return [
        job.job_id,
        swap_words(job.prev_hash).hex(),
        job.coinb1.hex(),
        job.coinb2.hex(),
        [node.hex() for node in job.merkle_branch],
        f"{job.version:08x}",
        f"{job.nbits:08x}",
        f"{job.ntime:08x}",
        job.clean_jobs,
    ]


def hex_bytes(value: Any, name: str, size: int | None = None) -> bytes:
    """``value`` as bytes when it is hex text (of ``size`` bytes, when given)."""
    if not isinstance(value, str):
        raise BadMessage(f"{name} is {type(value).__name__}, not hex text")
    # bytes.fromhex alone would take spaces ("00 00 00 01"): only hex digits, in pairs.
    if len(value) % 2 or not _HEX_TEXT.fullmatch(value):
        raise BadMessage(f"{name} {value[:80]!r} is not hex")
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise BadMessage(f"{name} is {len(data)} bytes, expected {size}")
    return data


def hex_u32(value: Any, name: str) -> int:
    """A 32-bit number written as 8 hex digits, big-endian (version, nbits, ntime, masks)."""
    return int(struct.unpack(">I", hex_bytes(value, name, 4))[0])
