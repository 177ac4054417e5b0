"""Acknowledgement codes of a collector that does not lead the sender's shard.

They travel in the ``[seq, code]`` answer to a native TCP frame (``wire/stream.py``); the agent's
sender (``onemon/agent/sender/redirect.py`` holds the same strings, as the agent may not import
the collector) keeps the message and sends it again elsewhere instead of dropping it.
"""

from __future__ import annotations

from typing import Final

MOVED: Final = "moved:"
"""``moved:<host:port>``: that collector leads the host's shard; connect there."""
NO_LEADER: Final = "no_leader"
"""Nobody leads the host's shard right now (a takeover is under way): try the next collector."""
MAX_ADDRESS: Final = 200
"""Longest advertised address (an ack is at most 256 bytes)."""


def moved(address: str) -> str:
    """The redirect code for ``address``."""
    return MOVED + address
