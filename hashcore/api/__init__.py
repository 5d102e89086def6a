"""The cgminer-compatible RPC API (TCP, JSON and text forms), for farm tools.

``ApiServer(miner, host, port, allow, on_quit=None, throttle=None)`` serves it;
:mod:`hashcore.api.protocol` is the wire format, :mod:`hashcore.api.commands` the
commands and their fields, :mod:`hashcore.api.sections` the reply sections drawn from a
snapshot, :mod:`hashcore.api.access` cgminer's ``--api-allow``.
"""

from hashcore.api.access import Access, AllowList
from hashcore.api.commands import COMMANDS, Dispatcher
from hashcore.api.server import DEFAULT_PORT, ApiServer
from hashcore.control import MinerControl, ThrottleControl

__all__ = [
    "COMMANDS",
    "DEFAULT_PORT",
    "Access",
    "AllowList",
    "ApiServer",
    "Dispatcher",
    "MinerControl",
    "ThrottleControl",
]
