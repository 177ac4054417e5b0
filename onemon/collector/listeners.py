"""UDP and TCP listeners on one address and port, both wire formats on each."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from onemon.collector.ingest import Ingest
from onemon.wire.errors import WireError
from onemon.wire.limits import MAX_TCP_MESSAGE
from onemon.wire.stream import FrameReader, encode_ack

log = logging.getLogger("onemon.collector.listeners")

LEGACY_READ_CHUNK = 65536
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
"""Linux: set SO_RCVBUF beyond net.core.rmem_max (needs CAP_NET_ADMIN)."""


@dataclass(frozen=True)
class ListenerLimits:
    """How much a peer may take from the collector."""

    max_connections: int = 4096
    read_timeout: float = 30.0
    """Seconds a legacy connection or a native frame in progress may stall."""
    idle_timeout: float = 900.0
    """Seconds a native connection may sit idle between frames."""
    rcvbuf: int = 16 * 1024 * 1024


def bind_udp(address: str, port: int, rcvbuf: int) -> socket.socket:
    """A UDP socket (dual-stack for ``::``) with a large receive buffer."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except OSError:  # not root: the kernel caps SO_RCVBUF at net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock


def bind_tcp(address: str, port: int) -> socket.socket:
    """A listening TCP socket (dual-stack for ``::``)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def bind_pair(address: str, port: int, rcvbuf: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on the same port; with port 0, one free for both (retried)."""
    for _ in range(20):
        udp = bind_udp(address, port, rcvbuf)
        try:
            return udp, bind_tcp(address, udp.getsockname()[1])
        except OSError as exc:
            udp.close()
            if port or exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")


class UdpReceiver(asyncio.DatagramProtocol):
    """Hands every datagram to the pipeline; nothing a peer sends can stop it."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def datagram_received(self, data: bytes, addr: object) -> None:
        """Process one datagram."""
        try:
            self.ingest.datagram(data)
        except Exception:  # a bug must not kill the listener; count and log it
            self.ingest.counters.reject("internal_error")
            log.exception("datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors and the like: logged, never fatal."""
        log.debug("udp error: %s", exc)


class TcpServer:
    """Accepts agent connections: native framed streams with acks, or legacy one-shot lines."""

    def __init__(
        self,
        ingest: Ingest,
        persisted: Callable[[], Awaitable[None]],
        backlog_full: Callable[[], bool],
        limits: ListenerLimits,
    ) -> None:
        self.ingest = ingest
        self.persisted = persisted
        self.backlog_full = backlog_full
        self.limits = limits
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until it closes, errs or stalls."""
        if self.connections >= self.limits.max_connections:
            self.ingest.counters.reject("too_many_connections")
            writer.close()
            return
        self.connections += 1
        try:
            first = await asyncio.wait_for(reader.read(1), self.limits.read_timeout)
            if not first:
                return
            if first == b"\x00":
                await self._native(first, reader, writer)
            else:
                await self._legacy(first, reader)
        except TimeoutError:
            self.ingest.counters.reject("read_timeout")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except WireError as exc:
            self.ingest.counters.reject(exc.reason)
        except Exception:
            self.ingest.counters.reject("internal_error")
            log.exception("tcp connection")
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # also at shutdown
                await writer.wait_closed()

    async def _legacy(self, first: bytes, reader: asyncio.StreamReader) -> None:
        """OpenNebula: one message per connection, read until the peer closes (bounded)."""
        data = bytearray(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.read_timeout
        while True:
            chunk = await asyncio.wait_for(
                reader.read(LEGACY_READ_CHUNK), max(0.0, deadline - loop.time())
            )
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_TCP_MESSAGE:
                raise WireError("too_large", "legacy TCP message")
        self.ingest.legacy_message(bytes(data))

    async def _native(
        self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Frames in, acknowledgements out once each message is persisted."""
        frames = FrameReader(MAX_TCP_MESSAGE)
        pending = first
        while True:
            for frame in frames.feed(pending):
                ack = self.ingest.native_frame(frame)
                if ack is None:
                    continue  # undecodable: no seq to acknowledge; counted by the pipeline
                if ack.accepted:
                    await self.persisted()
                writer.write(encode_ack(ack))
            await writer.drain()
            if frames.error is not None:  # frames before an oversize header were served
                raise frames.error
            while self.backlog_full():  # backpressure: stop reading until the store catches up
                await asyncio.sleep(0.05)
            timeout = self.limits.read_timeout if frames.pending else self.limits.idle_timeout
            pending = await asyncio.wait_for(reader.read(65536), timeout)
            if not pending:
                if frames.pending:  # the peer hung up inside a frame
                    self.ingest.counters.reject("truncated")
                return
