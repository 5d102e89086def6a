"""The exception tree of hashcore.

::

    HashcoreError                 every error hashcore raises on purpose
    ├── ConfigError               a bad flag, option, config value or trace file
    ├── WorkError                 a job or header that cannot be turned into work
    ├── BackendError              a backend failed while running
    │   └── BackendUnavailable    a backend cannot run here (with the reason and the fix)
    ├── PoolError                 a pool cannot be reached or misbehaves beyond recovery
    ├── DeviceError               a serial/ASIC device misbehaved or vanished
    └── TelemetryError            an energy counter could not be read

Errors that come from lower layers (OSError, ssl.SSLError, vendor libraries) are
translated at the boundary of the module that talks to them and raised ``from`` the
original, so callers only need to catch ``HashcoreError``.
"""

from __future__ import annotations


class HashcoreError(Exception):
    """Base class of every error hashcore raises on purpose."""


class ConfigError(HashcoreError):
    """A flag, option, config value or input file is wrong; the message names it."""


class WorkError(HashcoreError):
    """A job, header or target cannot be turned into work."""


class BackendError(HashcoreError):
    """A backend failed while it was running."""


class BackendUnavailable(BackendError):
    """A backend cannot run on this machine; the message says why and how to fix it."""


class PoolError(HashcoreError):
    """A pool could not be reached, or it misbehaved beyond what reconnecting can fix."""


class DeviceError(HashcoreError):
    """A serial device or ASIC chain misbehaved, timed out or vanished."""


class TelemetryError(HashcoreError):
    """An energy or power counter could not be read."""
