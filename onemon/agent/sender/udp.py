"""Unconnected UDP sockets, one per address family, for fire-and-forget datagrams."""

from __future__ import annotations

import asyncio
import socket

from onemon.agent.sender.address import Target
from onemon.wire.limits import MAX_UDP_PAYLOAD


class UdpChannel:
    """Sends datagrams to any resolved target."""

    def __init__(self) -> None:
        self._sockets: dict[int, socket.socket] = {}

    async def send(self, data: bytes, target: Target) -> None:
        """Send one datagram; raises OSError on failure."""
        if len(data) > MAX_UDP_PAYLOAD:
            raise OSError(f"datagram of {len(data)} bytes exceeds {MAX_UDP_PAYLOAD}")
        family, sockaddr = target
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sockets[family] = sock
        await asyncio.get_running_loop().sock_sendto(sock, data, sockaddr)

    def close(self) -> None:
        """Close every socket."""
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
