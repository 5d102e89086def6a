"""Limits of the API's pool commands (the miner's knobs and snapshot: :mod:`hashcore.control`)."""

from __future__ import annotations

#: The most pools a miner takes (the command line's, the config's and those added through
#: the API together): each is a failover entry the client walks and a row in every reply.
MAX_POOLS = 16
