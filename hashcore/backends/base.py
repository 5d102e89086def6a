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

Optional members. Beyond ``scan`` and ``close`` a backend may have:

* ``path: str``: the code path it runs (``avx512``, ``x86sha``, ...), for reports;
* ``energy_kind``: what draws its power (:data:`EnergyKind`; ``cpu`` when absent), and
  ``energy_options()``: what that kind's meter needs to find the device (a GPU's PCI
  bus id, an ASIC board's power readers);
* ``devices``: the devices it drives itself (OpenCL), each a :class:`ComputeDevice`;
* ``set_operating_point(mhz, mv)``: clock and core-voltage knobs
  (:class:`OperatingPointControl`, an ASIC chain);
* ``state: str``: where its device is, in a few words, when not plainly mining;
* ``close_interrupts_scan``: true when ``close()`` from another thread ends a scan in
  progress, so a stuck scan may be closed under it.

Code outside a backend reads them only through :func:`backend_path`,
:func:`energy_kind`, :func:`energy_options`, :func:`driven_devices`,
:func:`operating_point_control`, :func:`device_state` and :func:`closes_mid_scan`,
which give the default where a backend lacks a member (worker-process proxies forward
only ``scan`` and ``close``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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


#: What draws a backend's power: the CPU cores (shared by every CPU backend's meter),
#: a GPU, or an ASIC board (each of the last two metered on its own).
EnergyKind = Literal["cpu", "gpu", "asic"]


class ComputeDevice(Protocol):
    """A device a backend drives itself (an OpenCL device)."""

    @property
    def kind(self) -> str:
        """GPU, CPU, accelerator or other."""
        ...

    @property
    def compute_units(self) -> int:
        """Cores (CPU) or multiprocessors (GPU)."""
        ...


@runtime_checkable
class OperatingPointControl(Protocol):
    """A backend whose devices have clock and core-voltage knobs (an ASIC chain)."""

    def set_operating_point(self, mhz: float, mv: float | None = None) -> tuple[float, float | None]:
        """Clock ``mhz`` at core voltage ``mv`` (None: the device's own choice); returns
        the (MHz, mV) reached."""
        ...


def backend_path(backend: object) -> str | None:
    """The code path ``backend`` runs, as reports name it (``path_label`` where a backend
    has one, such as numba's ``lanes32``); None where it has no choice of paths."""
    path = getattr(backend, "path_label", None) or getattr(backend, "path", None)
    return path if isinstance(path, str) else None


def energy_kind(backend: object) -> str:
    """What draws ``backend``'s power (:data:`EnergyKind`); ``cpu`` by default."""
    return str(getattr(backend, "energy_kind", "cpu"))


def energy_options(backend: object) -> dict[str, Any]:
    """What the meter of ``backend``'s energy kind needs to find its device; empty by default."""
    options = getattr(backend, "energy_options", None)
    return dict(options()) if callable(options) else {}


def driven_devices(backend: object) -> Sequence[ComputeDevice] | None:
    """The devices ``backend`` drives itself (OpenCL); None for a backend that runs on
    the threads it is called from."""
    devices = getattr(backend, "devices", None)
    return devices if isinstance(devices, Sequence) and not isinstance(devices, str) else None


def operating_point_control(backend: object) -> OperatingPointControl | None:
    """``backend`` where it has clock and voltage knobs, else None."""
    return backend if isinstance(backend, OperatingPointControl) else None


def device_state(backend: object) -> str | None:
    """Where ``backend``'s device is, in a few words ("mining", "port gone: ..."); None
    where a backend does not say."""
    state = getattr(backend, "state", None)
    return state if isinstance(state, str) else None


def closes_mid_scan(backend: object) -> bool:
    """Whether ``close()`` from another thread ends a scan of ``backend`` in progress."""
    return bool(getattr(backend, "close_interrupts_scan", False))


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """A backend's entry in ``hashcore devices``."""

    name: str
    available: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)


Factory = Callable[..., Backend]
Probe = Callable[[], BackendInfo]
#: How fast a backend runs here with its auto path (``backendrank.BackendRate``),
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
    """Each available backend's rate here (``backendrank.BackendRate``) with its auto path;
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
    from hashcore.backends import backendrank

    rates = measured_rates()
    if rates:
        return backendrank.fastest(rates)
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
