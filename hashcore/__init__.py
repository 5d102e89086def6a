"""hashcore: a Stratum V1 Bitcoin (SHA-256d) miner core with interchangeable backends.

The public surface::

    import hashcore
    backend = hashcore.open_backend("c")                  # or "reference", "numba", ...
    work = hashcore.Work.from_header(header76, target)
    result = backend.scan(work, nonce_start=0, count=1 << 24, max_results=8)
    share = hashcore.verify_nonce(work, result.nonces[0])  # exact, with hashlib
    report = hashcore.bench("c", seconds=5)               # hashrate, baselines, energy
    async with hashcore.EmbeddedPool(difficulty=0.001) as pool:
        async with hashcore.Miner([pool.url], user="me", backends=["c"]) as miner:
            await miner.run(duration=60)
            miner.stats().to_json()

Errors all derive from :class:`HashcoreError` (see :mod:`hashcore.errors` for the tree).
Everything not listed in ``__all__`` is private and may change.
"""

from hashcore._version import __version__
from hashcore.backends.base import Backend, BackendInfo, ScanResult, open_backend
from hashcore.backends.base import names as backend_names
from hashcore.backends.base import probe_all as probe_backends
from hashcore.bench import BenchReport, bench
from hashcore.control import MinerStats
from hashcore.engine import Miner
from hashcore.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    DeviceError,
    HashcoreError,
    PoolError,
    TelemetryError,
    WorkError,
)
from hashcore.stratum.pool import EmbeddedPool
from hashcore.work import (
    Job,
    Share,
    Work,
    WorkOrigin,
    difficulty_to_target,
    nbits_to_target,
    target_to_difficulty,
    verify_nonce,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendInfo",
    "BackendUnavailable",
    "BenchReport",
    "ConfigError",
    "DeviceError",
    "EmbeddedPool",
    "HashcoreError",
    "Job",
    "Miner",
    "MinerStats",
    "PoolError",
    "ScanResult",
    "Share",
    "TelemetryError",
    "Work",
    "WorkError",
    "WorkOrigin",
    "__version__",
    "backend_names",
    "bench",
    "difficulty_to_target",
    "nbits_to_target",
    "open_backend",
    "probe_backends",
    "target_to_difficulty",
    "verify_nonce",
]
