"""OpenNebula's transport: one line per UDP datagram, STATE_VM over one TCP connection each.

No acknowledgement and no spool: TCP messages wait in a bounded in-memory queue and are
retried with the collector's back-off (reference §1.4, §4.5).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from onemon.agent.sender.address import Address, Resolver
from onemon.agent.sender.failover import Failover
from onemon.agent.sender.stats import SenderStats
from onemon.agent.sender.tcp import close_stream, open_stream
from onemon.agent.sender.udp import UdpChannel
from onemon.wire.limits import MAX_UDP_PAYLOAD
from onemon.wire.model import TCP_TYPES, Message, MessageType
from onemon.wire.split import split

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

log = logging.getLogger(__name__)


def line_encoder(public_key: RSAPublicKey | None = None) -> Callable[[Message], bytes]:
    """``onemon.wire.legacy.encode`` bound to the optional RSA public key."""
    from onemon.wire import legacy as codec  # noqa: PLC0415 - only legacy mode needs it

    def encode(message: Message) -> bytes:
        return codec.encode(message, public_key)

    return encode


class LegacyTransport:
    """Sends OpenNebula lines; TCP messages are retried in order from a bounded queue."""

    def __init__(
        self,
        failover: Failover,
        udp: UdpChannel,
        resolver: Resolver,
        stats: SenderStats,
        encode: Callable[[Message], bytes],
        *,
        timeout: float = 5.0,
        queue_max: int = 1000,
    ) -> None:
        self._failover = failover
        self._udp = udp
        self._resolver = resolver
        self._stats = stats
        self._encode = encode
        self._timeout = timeout
        self._queue_max = queue_max
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.dropped = 0

    @property
    def pending(self) -> int:
        """TCP messages not yet delivered."""
        return len(self._queue)

    async def send(self, message: Message) -> None:
        """Send a datagram now, or queue a TCP message (STATE_VM, or too large for UDP)."""
        if message.type in TCP_TYPES:
            self._enqueue(message)
            return
        line = self._encode(message)
        if len(line) <= MAX_UDP_PAYLOAD:
            await self._datagram(line, message.type)
            return
        parts = split(message, self._encode, MAX_UDP_PAYLOAD)
        for part in parts.datagrams:
            await self._datagram(self._encode(part), part.type)
        for part in parts.oversize:
            self._enqueue(part)

    def _enqueue(self, message: Message) -> None:
        if len(self._queue) >= self._queue_max:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self.drained.clear()
        self._wake.set()

    async def _datagram(self, line: bytes, kind: MessageType) -> None:
        """Send to the collector TCP last reached; on error back it off and try the next once."""
        index = self._failover.current
        for _ in range(2):
            address = self._failover.collectors[index].address
            try:
                await self._udp.send(line, await self._resolver.target(address))
            except OSError as exc:
                self._stats.send_errors += 1
                self._resolver.forget(address)
                self._failover.failed(index)
                log.warning("datagram to %s failed: %s", address, exc)
                index, _ = self._failover.choose()
                self._failover.use(index)
                continue
            self._stats.datagrams_sent += 1
            self._stats.bytes_sent += len(line)
            self._stats.messages_sent[(kind.name, "udp")] += 1
            return

    async def run(self) -> None:
        """Deliver queued TCP messages in order, one connection each, until cancelled."""
        while True:
            while not self._queue:
                self.drained.set()
                self._wake.clear()
                await self._wake.wait()
            index, delay = self._failover.choose()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # the queue or the best collector may have changed meanwhile
            message = self._queue[0]
            collector = self._failover.collectors[index]
            address = collector.address
            try:
                line = self._encode(message)
            except Exception as exc:  # a message the codec refuses would block the queue
                log.error("%s cannot be encoded: %s", message.type.name, exc)
                self._queue.popleft()
                self.dropped += 1
                continue
            try:
                await self._deliver(address, line, collector.endpoint)
            except (OSError, TimeoutError) as exc:
                self._stats.send_errors += 1
                delay = self._failover.failed(index)
                log.warning("collector %s: %s (retry in %.3g s)", address, exc, delay)
                continue
            if self._queue and self._queue[0] is message:
                self._queue.popleft()
            self._failover.succeeded(index)
            self._failover.use(index)
            self._stats.messages_sent[(message.type.name, "tcp")] += 1
            self._stats.bytes_sent += len(line)

    async def _deliver(self, address: Address, line: bytes, start: int) -> None:
        """Connect, send one line, close (OpenNebula's ``TCPSocket.new … send … close``)."""
        _, writer = await open_stream(address, self._timeout, start)
        try:
            writer.write(line)
            async with asyncio.timeout(self._timeout):
                await writer.drain()
        finally:
            await close_stream(writer, self._timeout)
