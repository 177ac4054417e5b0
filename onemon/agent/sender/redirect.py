"""A sharded collector's answer for a host whose shard another collector leads.

The codes are the collector's (``onemon/collector/sharding/codes.py``; the agent may not import
it, a test keeps both the same). The message they answer is kept in the spool, never dropped:

- ``moved:<host:port>``: connect there next (its name resolved then); datagrams follow the
  connection. At most ``MAX_REDIRECTS`` in a row without an ``ok``, or it is a failure.
- ``no_leader``: a takeover is under way; the next collector in the list is tried, and this one
  again after the first back-off step (1 s), its back-off not growing: it is alive, and will
  know the new leader within a lease.
"""

from __future__ import annotations

from typing import Final

from onemon.agent.sender.address import Address, parse_address

MOVED: Final = "moved:"
NO_LEADER: Final = "no_leader"
MAX_REDIRECTS: Final = 4


class NoLeader(Exception):
    """The collector answered, but nobody leads this host's shard right now."""


class Redirected(Exception):
    """The collector sent this host elsewhere."""

    def __init__(self, address: Address) -> None:
        super().__init__(f"redirected to {address}")
        self.address = address


def redirect_target(code: str) -> Address | None:
    """The address in a ``moved:`` code (None for any other code or a malformed address)."""
    if not code.startswith(MOVED):
        return None
    try:
        return parse_address(code[len(MOVED) :])
    except ValueError:
        return None
