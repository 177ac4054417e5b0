"""The sender's self-metrics: plain counters the agent reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SenderStats:
    """Counters since the sender started (spool figures are live)."""

    messages_sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Transmissions by (message type name, ``"udp"`` | ``"tcp"``); resends included."""
    datagrams_sent: int = 0
    bytes_sent: int = 0
    """Datagram bytes plus TCP frame bytes."""
    send_errors: int = 0
    """Failed datagram sends, connects, TCP writes and ack timeouts."""
    resent: int = 0
    """TCP frames sent again after a reconnect."""
    too_large: int = 0
    """Messages dropped because no transport can carry them."""
    spool_messages: int = 0
    spool_bytes: int = 0
    dropped_total: int = 0
    """Messages dropped unsent: oldest spool entries (or legacy queue entries) when full."""
    acks: Counter[str] = field(default_factory=Counter)
    """Acknowledgements by code (``"ok"`` or the reject reason)."""
    failovers: int = 0
    """Changes of collector."""
    redirects: int = 0
    """Redirects followed to the collector leading this host's shard (sharded collectors)."""
    collector_failures: int = 0
    """Dead-collector events (refused/timed-out connect, send error, ack timeout, closed)."""
    current_collector: str | None = None
    """``host:port`` of the collector in use; None while no connection is up (native)."""
