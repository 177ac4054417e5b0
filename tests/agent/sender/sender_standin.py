"""A tiny collector stand-in for sender tests: UDP + TCP on one loopback port.

Native mode decodes envelopes, applies TCP messages in seq order per (boot, type) (a seq at or
below the highest applied is a duplicate: acked ``ok``, not applied) and acks every frame.
Legacy mode just records datagrams and what each TCP connection carried until EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any

from onemon.wire import native
from onemon.wire.keys import KeyRing
from onemon.wire.native import Envelope
from onemon.wire.stream import ACK_OK, Ack, FrameReader, encode_ack


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (TCP and UDP)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
        return port


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, sink: list[bytes]) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sink.append(data)


@dataclass
class StandIn:
    """Collector stand-in; see the module docstring."""

    keys: KeyRing | None = None
    host: str = "127.0.0.1"
    port: int = 0
    legacy: bool = False
    ack: bool = True
    """False: never answer (an ack-timeout victim)."""
    reject: str | None = None
    """Answer every frame with this reject code instead of applying it."""
    ack_every: int = 1
    """Hold acks until this many are pending (or the line goes quiet for 50 ms)."""
    drop_after: int | None = None
    """On the first connection: apply this many frames, then close without acking the last."""
    datagrams: list[bytes] = field(default_factory=list)
    frames: list[Envelope] = field(default_factory=list)
    applied: list[Envelope] = field(default_factory=list)
    tcp_payloads: list[bytes] = field(default_factory=list)
    connections: int = 0
    max_outstanding: int = 0
    _highest: dict[tuple[bytes, int], int] = field(default_factory=dict)
    _boot: int = -1
    _server: asyncio.Server | None = None
    _transport: asyncio.DatagramTransport | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def address(self) -> str:
        """``host:port`` as the sender is configured with."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def udp_envelopes(self) -> list[Envelope]:
        """Every datagram, decoded and authenticated."""
        assert self.keys is not None
        return [native.decode(d, self.keys) for d in self.datagrams]

    async def start(self) -> StandIn:
        """Listen on TCP and UDP (the same port)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # bursts of 64 KB
        sock.bind((self.host, self.port))
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self.datagrams), sock=sock
        )
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            if self.legacy:
                self.tcp_payloads.append(await reader.read())
            else:
                await self._native(reader, writer, first=self.connections == 1)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _native(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool
    ) -> None:
        frames = FrameReader()
        held: list[Ack] = []
        outstanding = 0
        count = 0
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.05)
            except TimeoutError:
                data = None
            if data == b"":
                return
            for payload in frames.feed(data or b""):
                count += 1
                outstanding += 1
                self.max_outstanding = max(self.max_outstanding, outstanding)
                assert self.keys is not None
                envelope = native.decode(payload, self.keys)
                self.frames.append(envelope)
                code = self.reject or self._apply(envelope)
                if first and self.drop_after is not None and count >= self.drop_after:
                    return
                held.append(Ack(envelope.seq, code))
            if self.ack and held and (data is None or len(held) >= self.ack_every):
                writer.write(b"".join(encode_ack(a) for a in held))
                await writer.drain()
                outstanding -= len(held)
                held.clear()

    def _apply(self, envelope: Envelope) -> str:
        counter = int.from_bytes(envelope.boot_id[:8], "big")
        if counter < self._boot:
            return "replay"
        self._boot = counter
        stream = (envelope.boot_id, int(envelope.message.type))
        if envelope.seq <= self._highest.get(stream, -1):
            return ACK_OK  # duplicate: acknowledged, not applied again
        self._highest[stream] = envelope.seq
        self.applied.append(envelope)
        return ACK_OK


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail the test on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
