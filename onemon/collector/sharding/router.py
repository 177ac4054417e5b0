"""What the collector does with a message for a shard it does not lead (docs/sharding.md).

- A native TCP frame (acknowledged: VM states, SYSTEM_HOST) is answered with a redirect,
  ``moved:<leader>``, which the agent follows with its whole connection (its datagrams go where
  its connection goes), or ``no_leader`` during a takeover; the agent keeps the message either
  way and sends it again to the right collector.
- Whatever cannot be told to go elsewhere (a datagram that arrived before the agent's connection
  moved, an OpenNebula agent's legacy line) is relayed as is to the leader: one ``sendto`` or
  one short connection, nothing waited for. With no leader known it is dropped and counted
  (``no_leader``), as a lost datagram would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from onemon.collector.metrics.health import Health
from onemon.collector.sharding.codes import NO_LEADER, moved
from onemon.collector.sharding.shardmap import ShardMap
from onemon.wire.stream import Ack

log = logging.getLogger("onemon.collector.sharding")

MAX_LEGACY_RELAYS = 64
"""Legacy TCP messages being relayed at once; beyond, they are dropped and counted."""
RELAY_TIMEOUT = 5.0

Target = tuple[int, tuple[Any, ...]]
"""(address family, socket address) of a leader's listener."""


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad address {address!r}: host:port expected")
    return host.strip("[]"), int(port)


class Router:
    """Applies here (``leads``) or sends elsewhere (``elsewhere``); fed by the coordinator."""

    def __init__(self, shard_map: ShardMap, health: Health) -> None:
        self.map = shard_map
        self.health = health
        self.led: frozenset[int] = frozenset()
        """Shards applied here now (the coordinator replaces the set, never changes it)."""
        self.targets: dict[int, str] = {}
        """Where each shard's agents go: its leader's advertised address (replaced whole)."""
        self.resolved: dict[str, Target] = {}
        """Leaders' addresses resolved for relays (replaced whole by the coordinator)."""
        self._udp: dict[int, socket.socket] = {}
        self._relays: set[asyncio.Task[None]] = set()

    # --- the ingest hook ----------------------------------------------------------------------

    def leads(self, host_id: int) -> bool:
        """True when this collector applies ``host_id``'s messages now."""
        return self.map.shard_of(host_id) in self.led

    def elsewhere(
        self, host_id: int, seq: int | None, data: bytes, transport: str, fmt: str
    ) -> Ack | None:
        """A message for a shard led elsewhere: the redirect to answer, or relayed (None)."""
        shard = self.map.shard_of(host_id)
        target = self.targets.get(shard)
        if seq is not None and transport == "tcp" and fmt == "native":
            if target is None:
                self.health.reject(NO_LEADER)
                return Ack(seq, NO_LEADER)
            self.health.shard_redirects += 1
            return Ack(seq, moved(target))
        resolved = self.resolved.get(target) if target is not None else None
        if resolved is None:
            self.health.reject(NO_LEADER)
            return None
        if transport == "udp":
            self._relay_datagram(data, resolved)
        else:
            self._relay_legacy(data, resolved)
        return None

    # --- relays -------------------------------------------------------------------------------

    def _relay_datagram(self, data: bytes, target: Target) -> None:
        family, sockaddr = target
        sock = self._udp.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._udp[family] = sock
        try:
            sock.sendto(data, sockaddr)
        except OSError as exc:  # a full buffer or no route: as a datagram lost on the way
            self.health.reject("relay_failed")
            log.debug("relay to %s failed: %s", sockaddr, exc)
            return
        self.health.shard_relayed += 1

    def _relay_legacy(self, data: bytes, target: Target) -> None:
        if len(self._relays) >= MAX_LEGACY_RELAYS:
            self.health.reject("relay_failed")
            return
        task = asyncio.get_running_loop().create_task(self._send_legacy(data, target))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _send_legacy(self, data: bytes, target: Target) -> None:
        """OpenNebula's TCP message: one connection, the bytes, close."""
        _, sockaddr = target
        try:
            async with asyncio.timeout(RELAY_TIMEOUT):
                _, writer = await asyncio.open_connection(sockaddr[0], sockaddr[1])
                try:
                    writer.write(data)
                    await writer.drain()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            self.health.reject("relay_failed")
            log.debug("legacy relay to %s failed: %s", sockaddr, exc)
            return
        self.health.shard_relayed += 1

    def close(self) -> None:
        """Close the relay sockets (relays under way are cancelled)."""
        for task in self._relays:
            task.cancel()
        for sock in self._udp.values():
            sock.close()
        self._udp.clear()


def resolve(address: str) -> Target:
    """Resolve a leader's ``host:port`` for relays (blocking: call it off the event loop)."""
    host, port = split_address(address)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"{address} resolves to nothing")
    family, _, _, _, sockaddr = infos[0]
    return int(family), tuple(sockaddr)
