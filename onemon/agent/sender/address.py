"""Collector addresses ``host:port`` (``[v6]:port``), resolved again at every use."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

DEFAULT_PORT: Final = 4124

SockAddr: TypeAlias = tuple[Any, ...]
Target: TypeAlias = tuple[int, SockAddr]
"""(address family, socket address) of one resolved endpoint."""


@dataclass(frozen=True, slots=True)
class Address:
    """A collector's name (or literal IP) and port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """Parse ``host:port``, ``[v6]:port``, a bare host or a bare IPv6 literal."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and text[end + 1] != ":"):
            raise ValueError(f"bad collector address {text!r}")
        host, port_text = text[1:end], text[end + 2 :]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"bad collector address {text!r}")
    if not port_text:
        return Address(host, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in collector address {text!r}")
    return Address(host, int(port_text))


async def resolve(address: Address, kind: int = socket.SOCK_DGRAM) -> Target:
    """The first endpoint ``address`` resolves to now (IPv4 or IPv6)."""
    return (await resolve_all(address, kind))[0]


async def resolve_all(address: Address, kind: int = socket.SOCK_STREAM) -> list[Target]:
    """Every endpoint ``address`` resolves to now, in the resolver's order, each once."""
    loop = asyncio.get_running_loop()
    host = address.host
    # getaddrinfo passes a str through the idna codec, which imports stringprep and unicodedata
    # into the daemon for good; an ASCII name or literal IP is those same bytes.
    query: str | bytes = host.encode("ascii") if host.isascii() else host
    infos = await loop.getaddrinfo(query, address.port, type=kind)
    targets: list[Target] = []
    for family, _, _, _, sockaddr in infos:
        target = (int(family), tuple(sockaddr))
        if target not in targets:
            targets.append(target)
    if not targets:
        raise OSError(f"{address} resolves to nothing")
    return targets


class Resolver:
    """Datagram targets by address, looked up again once ``ttl`` seconds have passed."""

    def __init__(self, ttl: float = 30.0) -> None:
        self._ttl = ttl
        self._cache: dict[Address, tuple[float, Target]] = {}

    async def target(self, address: Address) -> Target:
        """Where datagrams for ``address`` go now; raises OSError when it does not resolve."""
        now = asyncio.get_running_loop().time()
        cached = self._cache.get(address)
        if cached is not None and cached[0] > now:
            return cached[1]
        target = await resolve(address)
        self._cache[address] = (now + self._ttl, target)
        return target

    def forget(self, address: Address) -> None:
        """Drop a cached lookup (after a send error)."""
        self._cache.pop(address, None)
