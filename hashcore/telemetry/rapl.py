"""RAPL energy counters through the Linux powercap sysfs tree (Intel, and AMD Zen).

Layout (``/sys/class/powercap`` or the root given by argument or ``HASHCORE_POWERCAP_ROOT``)::

    intel-rapl:0/             name=package-0  energy_uj  max_energy_range_uj
    intel-rapl:0/intel-rapl:0:0/   name=core       (also linked as intel-rapl:0:0)
    intel-rapl:0/intel-rapl:0:1/   name=dram
    intel-rapl:1/             name=package-1 (second socket) or psys (whole platform)

``energy_uj`` counts microjoules and wraps to zero after ``max_energy_range_uj``; a meter
must read it at least once per wrap (under load that can be about a minute), so
:class:`RaplMeter` polls in the background. The meter's figure is the sum of the package
domains: core and dram lie inside a package, and psys covers the packages too, so they
are reported by :meth:`RaplMeter.detail` and never added to the total.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hashcore.errors import TelemetryError
from hashcore.telemetry.base import UJ_PER_J
from hashcore.telemetry.poll import Clock, CountingMeter, Poller

DEFAULT_ROOT = Path("/sys/class/powercap")
ROOT_ENV = "HASHCORE_POWERCAP_ROOT"

_ZONE = re.compile(r"intel-rapl:(\d+)(?::(\d+))?")

#: energy_uj has been root-only since the 2020 fix for CVE-2020-8694 (the PLATYPUS attack).
PERMISSION_FIX = (
    "fix: run as root, or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (until reboot), "
    'or a udev rule in /etc/udev/rules.d: `SUBSYSTEM=="powercap", ACTION=="add", '
    'RUN+="/bin/chgrp power /sys%p/energy_uj", RUN+="/bin/chmod g+r /sys%p/energy_uj"` '
    "with your user in group power"
)


def powercap_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The powercap tree to read: ``root`` if given, else ``$HASHCORE_POWERCAP_ROOT``, else sysfs."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else DEFAULT_ROOT


@dataclass(frozen=True, slots=True)
class RaplDomain:
    """One powercap zone.

    Attributes:
        key: the zone's directory name (``intel-rapl:0:1``).
        name: the content of its ``name`` file (``package-0``, ``core``, ``dram``, ``psys``).
        label: the name, qualified by the package for a sub-domain (``package-0/dram``).
        path: the zone's directory.
        max_energy_range_uj: the counter's largest value in microjoules, or None when the
            file is missing (a wrap then cannot be measured exactly).
        parent: the key of the package holding a sub-domain, None for a top-level zone.
    """

    key: str
    name: str
    label: str
    path: Path
    max_energy_range_uj: int | None
    parent: str | None

    @property
    def is_package(self) -> bool:
        return self.parent is None and self.name.startswith("package")


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _read_uj(path: Path) -> int:
    """Read an integer microjoule file, translating OS errors into TelemetryError."""
    try:
        return int(_read_text(path))
    except PermissionError as exc:
        raise TelemetryError(
            f"cannot read {path}: permission denied (root-only since the CVE-2020-8694 fix); {PERMISSION_FIX}"
        ) from exc
    except OSError as exc:
        raise TelemetryError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise TelemetryError(f"{path} does not hold an integer") from exc


def read_energy_uj(domain: RaplDomain) -> int:
    """The domain's raw counter in microjoules (it wraps; see :class:`RaplMeter`)."""
    return _read_uj(domain.path / "energy_uj")


def _zone_dirs(root: Path) -> dict[str, Path]:
    """Every RAPL zone directory by name: top-level entries and sub-zones nested in them.

    sysfs lists sub-zones both at the top (as links) and inside their package; a tree
    built by hand may have either, so both are looked at and the name deduplicates.
    """
    zones: dict[str, Path] = {}
    for entry in sorted(root.glob("intel-rapl:*")):
        if _ZONE.fullmatch(entry.name) and entry.is_dir():
            zones.setdefault(entry.name, entry)
            for sub in sorted(entry.glob("intel-rapl:*")):
                if _ZONE.fullmatch(sub.name) and sub.is_dir():
                    zones.setdefault(sub.name, sub)
    return zones


def find_domains(root: str | os.PathLike[str] | None = None) -> list[RaplDomain]:
    """Every RAPL domain under the powercap root in zone order (each package, then its parts).

    Raises TelemetryError (saying why) when the tree or its RAPL zones are missing.
    """
    base = powercap_root(root)
    if not base.is_dir():
        why = " (a VM, or no intel_rapl powercap driver loaded)" if base == DEFAULT_ROOT else ""
        raise TelemetryError(f"no RAPL: {base} missing{why}")
    zones = _zone_dirs(base)
    if not zones:
        raise TelemetryError(f"no RAPL: no intel-rapl:* zones under {base}")

    names: dict[str, str] = {}
    for key, path in zones.items():
        try:
            names[key] = _read_text(path / "name")
        except OSError:
            names[key] = key

    def order(key: str) -> tuple[int, int]:
        m = _ZONE.fullmatch(key)
        assert m is not None
        return int(m.group(1)), int(m.group(2) or -1)

    domains: list[RaplDomain] = []
    labels: set[str] = set()
    for key in sorted(zones, key=order):
        m = _ZONE.fullmatch(key)
        assert m is not None
        parent = f"intel-rapl:{m.group(1)}" if m.group(2) is not None else None
        label = names[key] if parent is None else f"{names.get(parent, parent)}/{names[key]}"
        if label in labels:
            label = f"{label} ({key})"
        labels.add(label)
        max_path = zones[key] / "max_energy_range_uj"
        max_uj = _read_uj(max_path) if max_path.exists() else None
        domains.append(RaplDomain(key, names[key], label, zones[key], max_uj, parent))
    return domains


class _Counter:
    """One domain's counter unwrapped: microjoules since the meter opened."""

    __slots__ = ("domain", "last_raw", "lossy", "total_uj")

    def __init__(self, domain: RaplDomain, raw: int) -> None:
        self.domain = domain
        self.last_raw = raw
        self.total_uj = 0
        self.lossy = False

    def advance(self, raw: int) -> None:
        """Account for a new raw reading (microjoules), across at most one wrap."""
        limit = self.domain.max_energy_range_uj
        if raw >= self.last_raw:
            delta = raw - self.last_raw
        elif limit is None:
            # The range is unknown: count only what came after the restart.
            delta = raw
            self.lossy = True
        else:
            # The counter runs 0..limit and restarts at 0 (exact to one energy unit, the
            # counter's step of 15-61 µJ, per wrap: sysfs does not give the unit).
            delta = raw + limit + 1 - self.last_raw
            if delta < 0:  # the previous reading lay above the stated range
                delta = raw
                self.lossy = True
        self.total_uj += delta
        self.last_raw = raw


class RaplMeter(CountingMeter):
    """Energy of the CPU packages from RAPL: the sum of every package domain.

    Sub-domains (core, dram) and psys are read too and reported by :meth:`detail`, never
    added to the total. ``exact`` turns False, and ``note`` says why, if a package counter
    wraps while its ``max_energy_range_uj`` is unknown (the energy before the wrap is
    then lost, so the figure is a lower bound).
    """

    source = "rapl"

    def __init__(
        self,
        domains: Sequence[RaplDomain],
        *,
        clock: Clock = time.monotonic_ns,
        poll_s: float | None = 1.0,
    ) -> None:
        packages = [d for d in domains if d.is_package]
        if not packages:
            found = ", ".join(d.label for d in domains) or "nothing"
            raise TelemetryError(f"no RAPL package domain (found: {found})")
        super().__init__(clock)
        self.skipped: list[str] = []
        self._counters: list[_Counter] = []
        for domain in domains:
            try:
                raw = read_energy_uj(domain)
            except TelemetryError as exc:
                if domain.is_package:
                    raise
                self.skipped.append(f"{domain.label}: {exc}")
                continue
            self._counters.append(_Counter(domain, raw))
        self._packages = [c for c in self._counters if c.domain.is_package]
        self._start_rate()
        self._poller = Poller(poll_s, self._update, "rapl-poll") if poll_s else None

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str] | None = None,
        *,
        clock: Clock = time.monotonic_ns,
        poll_s: float | None = 1.0,
    ) -> RaplMeter:
        """A meter over every package under the powercap root (see :func:`powercap_root`)."""
        return cls(find_domains(root), clock=clock, poll_s=poll_s)

    @property
    def domains(self) -> list[RaplDomain]:
        """The domains read (packages, sub-domains, psys), in sysfs order."""
        return [c.domain for c in self._counters]

    @property
    def exact(self) -> bool:
        return not any(c.lossy for c in self._packages)

    @property
    def note(self) -> str:
        names = "+".join(c.domain.label for c in self._packages)
        parts = [f"RAPL {names}"]
        unknown = [c.domain.label for c in self._counters if c.domain.max_energy_range_uj is None]
        if unknown:
            parts.append(f"max_energy_range_uj missing for {', '.join(unknown)}: a wrap there is counted from zero")
        lossy = [c.domain.label for c in self._counters if c.lossy]
        if lossy:
            parts.append(f"counter of {', '.join(lossy)} wrapped with no known range: energy is a lower bound")
        parts.extend(f"skipped {s}" for s in self.skipped)
        return "; ".join(parts)

    def _update(self) -> None:
        # Read under the lock: the poller and sample() must not interleave an older
        # reading after a newer one, which would look like a wrap.
        with self._lock:
            self._update_locked()

    def _update_locked(self) -> int:
        """Read every counter; return the package total in microjoules since open."""
        for counter in self._counters:
            counter.advance(read_energy_uj(counter.domain))
        return sum(c.total_uj for c in self._packages)

    def _energy_uj(self) -> int:
        return self._update_locked()

    def detail(self) -> dict[str, float]:
        """Joules per domain label since open, as of the latest reading."""
        with self._lock:
            return {c.domain.label: c.total_uj / UJ_PER_J for c in self._counters}

