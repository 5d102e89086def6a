"""The Backend contract and the registry of backends.

A backend scans nonce ranges of a :class:`~hashcore.work.Work` and returns every nonce
whose hash meets ``work.target`` (no false negatives; false positives are allowed and
the engine re-checks each result with hashlib before it submits anything).

Rules every backend keeps:

* ``scan(work, nonce_start, count, max_results)`` covers ``[nonce_start, nonce_start +
  count)``, never wrapping past ``2**32 - 1``; it may stop early once ``max_results``
  nonces are found, and ``hashes_done`` then says how far it got.
* A backend that cannot run here raises :class:`BackendUnavailable` from its factory,
  with the reason and the fix, at open time and never mid-mining.
* ``releases_gil`` tells the engine whether worker threads scale (C, Numba ``nogil``,
  OpenCL waits); a backend that holds the GIL is run in worker processes instead.

Backends register a factory under their name; importing a backend module must be cheap
and must not fail when its optional dependency is missing (the factory checks that).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hashcore.errors import BackendUnavailable, ConfigError, HashcoreError
from hashcore.work import MAX_NONCE, Work

log = logging.getLogger("hashcore.backends")


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one scan found.

    Attributes:
        nonces: candidate nonces (may include false positives; never misses one).
        hashes_done: nonces actually hashed, counted from the start of the range.
        versions: for backends that roll version bits themselves (ASICs), the header
            version each nonce was found with, parallel to ``nonces``; None means every
            nonce belongs to the work's own version.
    """

    nonces: list[int]
    hashes_done: int
    versions: list[int] | None = None


@runtime_checkable
class Backend(Protocol):
    """A nonce scanner. See the module docstring for the rules."""

    name: str
    releases_gil: bool

    def scan(self, work: Work, nonce_start: int, count: int, max_results: int) -> ScanResult: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """A backend's entry in ``hashcore devices``."""

    name: str
    available: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)


Factory = Callable[..., Backend]
Probe = Callable[[], BackendInfo]
#: How fast a backend runs here with its auto path (``pathchoice.BackendRate``),
#: measured once per machine and cached.
Rate = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class _Entry:
    factory: Factory
    probe: Probe
    summary: str
    rate: Rate | None = None


_REGISTRY: dict[str, _Entry] = {}

#: Modules that register backends, imported on first use of the registry. ``auto`` takes
#: the fastest by measurement (see ``fastest_available``); ``FASTEST_FIRST`` is the
#: order tried where nothing can be measured.
_BACKEND_MODULES = (
    "hashcore.backends.reference",
    "hashcore.backends.cffi_c",
    "hashcore.backends.numba_cpu",
    "hashcore.backends.opencl",
    "hashcore.backends.asic",
)
FASTEST_FIRST = ("c", "opencl", "numba", "reference")
_loaded = False


def register(name: str, factory: Factory, probe: Probe, summary: str, rate: Rate | None = None) -> None:
    """Register a backend factory and a cheap probe that says whether it can run here;
    ``rate`` (for backends ``auto`` may pick) says how fast it runs here."""
    _REGISTRY[name] = _Entry(factory, probe, summary, rate)


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BACKEND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # A backend module not written yet or not shipped in this build; other
            # import errors are bugs and must surface.
            if exc.name != module:
                raise


def names() -> list[str]:
    """Every registered backend name."""
    _load_all()
    return sorted(_REGISTRY)


def open_backend(name: str, **options: Any) -> Backend:
    """Open a backend by name; raises BackendUnavailable when it cannot run here."""
    _load_all()
    entry = _REGISTRY.get(name)
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown backend {name!r} (known: {known})")
    return entry.factory(**options)


def probe(name: str) -> BackendInfo:
    """Whether backend ``name`` can run here, and why not when it cannot."""
    _load_all()
    entry = _REGISTRY.get(name)
    if entry is None:
        return BackendInfo(name, False, "not registered")
    try:
        return entry.probe()
    except BackendUnavailable as exc:
        return BackendInfo(name, False, str(exc))


def probe_all() -> list[BackendInfo]:
    return [probe(name) for name in names()]


def measured_rates() -> dict[str, Any]:
    """Each available backend's rate here (``pathchoice.BackendRate``) with its auto path;
    measured once per machine and cached, so only the first call takes seconds."""
    _load_all()
    rates: dict[str, Any] = {}
    for name in FASTEST_FIRST:
        entry = _REGISTRY.get(name)
        if entry is None or entry.rate is None or not probe(name).available:
            continue
        try:
            rates[name] = entry.rate()
        except HashcoreError as exc:  # unusable after all: auto takes another
            log.info("backend %s left out of the measured choice: %s", name, exc)
    return rates


def fastest_available() -> str:
    """The fastest backend on this machine, by measurement on all cores (each CPU
    backend one thread per core; OpenCL on every device ``auto`` selects)."""
    from hashcore.backends import pathchoice

    rates = measured_rates()
    if rates:
        return pathchoice.fastest(rates)
    for name in FASTEST_FIRST:
        if name in _REGISTRY and probe(name).available:
            return name
    return "reference"


def resolve_names(names: Sequence[str] | None) -> list[str]:
    """Backend names with ``auto`` (or none at all) replaced by the fastest available."""
    return [fastest_available() if name == "auto" else name for name in (names or ["auto"])]


def check_range(nonce_start: int, count: int, max_results: int) -> None:
    """Validate scan arguments the same way for every backend."""
    if not 0 <= nonce_start <= MAX_NONCE:
        raise ValueError(f"nonce_start {nonce_start} is outside 0..2**32-1")
    if count < 0 or nonce_start + count > MAX_NONCE + 1:
        raise ValueError(f"range [{nonce_start}, {nonce_start}+{count}) runs past 2**32-1")
    if max_results < 1:
        raise ValueError("max_results must be at least 1")
