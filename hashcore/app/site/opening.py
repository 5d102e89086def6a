"""The link a ``[[miners]]`` entry names: the cgminer API for hashcore and cgminer,
pyasic for the firmwares it knows (see :mod:`hashcore.app.site.links`)."""

from __future__ import annotations

from hashcore.app.site.config import CGMINER_KINDS, MinerEntry
from hashcore.app.site.links import MinerLink


def open_link(entry: MinerEntry) -> MinerLink:
    """The link for one ``[[miners]]`` entry (pyasic is imported only for its kinds)."""
    if entry.kind in CGMINER_KINDS:
        from hashcore.app.site.cgminer import CgminerLink

        return CgminerLink(entry.address, entry.kind, timeout_s=entry.timeout_s)
    from hashcore.app.site.pyasic_link import PyasicLink

    return PyasicLink(entry.address, entry.kind, username=entry.username, password=entry.password,
                      timeout_s=entry.timeout_s)
