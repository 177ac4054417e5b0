"""The agent's sender: picks the transport per message, numbers, signs and accounts for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal

from onemon.agent.sender.address import Resolver
from onemon.agent.sender.backoff import BACKOFF_SECONDS
from onemon.agent.sender.bootid import BootId
from onemon.agent.sender.failover import Failover
from onemon.agent.sender.legacy import LegacyTransport, line_encoder
from onemon.agent.sender.sequence import Sequencer
from onemon.agent.sender.spool import DEFAULT_MAX_BYTES, DEFAULT_MAX_COUNT, Spool
from onemon.agent.sender.stats import SenderStats
from onemon.agent.sender.tcp import AckLink
from onemon.agent.sender.udp import UdpChannel
from onemon.wire import native
from onemon.wire.keys import Key
from onemon.wire.limits import DEFAULT_DATAGRAM_BUDGET, MAX_TCP_MESSAGE, MAX_UDP_PAYLOAD
from onemon.wire.model import TCP_TYPES, Message, MessageType
from onemon.wire.split import split

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

SPOOL_FILE: Final = "spool.sqlite"
ACKED_TYPES: Final = TCP_TYPES | {MessageType.SYSTEM_HOST}
"""Native wire: VM states and the host's system report go over TCP, acknowledged and spooled.
SYSTEM_HOST is the only message that makes a host MONITORED: over UDP, an agent started before
its collector would leave the host in INIT for a whole system period (600 s)."""
MAX_SEQ: Final = 2**63 - 1
"""Datagram parts are sized with the largest seq, so the real (smaller) one always fits."""
_FLUSH_POLL: Final = 0.1

log = logging.getLogger(__name__)


class Sender:
    """Sends one agent's messages to the first usable collector of an ordered list."""

    def __init__(
        self,
        collectors: Sequence[str],
        state_dir: Path | str,
        key: Key | None = None,
        *,
        wire_format: Literal["native", "legacy"] = "native",
        budget: int = DEFAULT_DATAGRAM_BUDGET,
        ack_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        window: int = 64,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        spool_max_count: int = DEFAULT_MAX_COUNT,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        preferred_retry: float = 30.0,
        public_key: RSAPublicKey | None = None,
    ) -> None:
        if wire_format not in ("native", "legacy"):
            raise ValueError(f"wire_format must be 'native' or 'legacy', not {wire_format!r}")
        if wire_format == "native" and key is None:
            raise ValueError("the native wire needs a key")
        if not 0 < budget <= MAX_UDP_PAYLOAD:
            raise ValueError(f"budget must be 1..{MAX_UDP_PAYLOAD}")
        self.state_dir = Path(state_dir)
        self.wire_format = wire_format
        self._key = key
        self._budget = budget
        self._ack_timeout = ack_timeout
        self._connect_timeout = connect_timeout
        self._window = window
        self._spool_bounds = (spool_max_bytes, spool_max_count)
        self._preferred_retry = preferred_retry
        self._public_key = public_key
        self._failover = Failover(collectors, backoff)
        self._seqs = Sequencer()
        self._stats = SenderStats()
        self._udp = UdpChannel()
        self._resolver = Resolver()
        self._drained = asyncio.Event()
        self._boot: BootId | None = None
        self._spool: Spool | None = None
        self._link: AckLink | None = None
        self._legacy: LegacyTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Sender:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def boot_id(self) -> BootId:
        """This run's boot id (taken at start)."""
        if self._boot is None:
            raise RuntimeError("sender not started")
        return self._boot

    @property
    def pending(self) -> int:
        """TCP messages not yet acknowledged (native) or delivered (legacy)."""
        if self._spool is not None:
            return int(self._spool.count)
        return self._legacy.pending if self._legacy is not None else 0

    @property
    def stats(self) -> SenderStats:
        """Live self-metrics."""
        stats = self._stats
        stats.failovers = self._failover.failovers
        stats.collector_failures = self._failover.failures
        if self._spool is not None:
            stats.spool_messages = self._spool.count
            stats.spool_bytes = self._spool.bytes
            stats.dropped_total = self._spool.dropped
        if self._legacy is not None:
            stats.spool_messages = self._legacy.pending
            stats.dropped_total = self._legacy.dropped
            stats.current_collector = str(self._failover.address)
        return stats

    async def start(self) -> None:
        """Take the next boot id, open the spool (re-numbering what it holds) and connect."""
        if self._boot is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._boot = BootId.new(self.state_dir)
        if self.wire_format == "legacy":
            self._legacy = LegacyTransport(
                self._failover,
                self._udp,
                self._resolver,
                self._stats,
                line_encoder(self._public_key),
                timeout=self._connect_timeout,
                queue_max=self._spool_bounds[1],
            )
            self._task = asyncio.create_task(self._legacy.run(), name="sender-legacy")
            return
        self._spool = Spool(self.state_dir / SPOOL_FILE, *self._spool_bounds)
        replayed = self._spool.rebase(self._boot.raw, self._seqs.next)
        if replayed:
            log.info("%d spooled messages will be resent under boot %d", replayed,
                     self._boot.counter)  # fmt: skip
        if self._spool.count == 0:
            self._drained.set()
        self._link = AckLink(
            self._failover,
            self._spool,
            lambda entry: self._encode(entry.message, entry.seq),
            self._stats,
            self._drained.set,
            window=self._window,
            ack_timeout=self._ack_timeout,
            connect_timeout=self._connect_timeout,
            preferred_retry=self._preferred_retry,
        )
        self._task = asyncio.create_task(self._link.run(), name="sender-link")

    async def send(self, message: Message) -> None:
        """Send ``message``: datagrams at once, TCP messages (STATE_VM, oversize) via the spool."""
        await self.start()
        if self._closed:
            raise RuntimeError("sender is closed")
        if self._legacy is not None:
            await self._legacy.send(message)
            return
        if message.type in ACKED_TYPES:
            self._spool_message(message)
            return
        data = self._encode(message, self._seqs.peek(message.type))
        if len(data) <= self._budget:
            self._seqs.next(message.type)
            await self._datagram(data, message.type)
            return
        assert self._key is not None and self._boot is not None
        parts = split(message, native.DatagramSizer(self._key, self._boot.raw), self._budget)
        for part in parts.datagrams:
            await self._datagram(self._encode(part, self._seqs.next(part.type)), part.type)
        for part in parts.oversize:
            self._spool_message(part)

    async def flush(self, timeout: float) -> bool:
        """Wait until every TCP message is acknowledged (or delivered); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = self._legacy.drained if self._legacy is not None else self._drained
        while self.pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _FLUSH_POLL)):
                    await event.wait()
        return True

    async def close(self) -> None:
        """Stop sending; what is spooled stays on disk for the next start."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        if self._legacy is not None and self._legacy.pending:
            log.warning("%d legacy TCP messages not delivered", self._legacy.pending)
        self._udp.close()
        if self._spool is not None:
            self._spool.close()

    def _encode(self, message: Message, seq: int) -> bytes:
        assert self._key is not None and self._boot is not None
        return native.encode(message, self._key, self._boot.raw, seq)

    def _spool_message(self, message: Message) -> None:
        """Spool a TCP message under the next seq of its type and wake the link."""
        assert self._spool is not None and self._link is not None and self._boot is not None
        seq = self._seqs.peek(message.type)
        size = len(self._encode(message, seq))  # refuse what could never be sent, now
        try:
            if size > MAX_TCP_MESSAGE:
                raise ValueError(f"{size} bytes exceed the {MAX_TCP_MESSAGE}-byte TCP limit")
            self._spool.append(message, self._boot.raw, seq)
        except ValueError as exc:
            self._stats.too_large += 1
            log.error("%s from host %d dropped: %s", message.type.name, message.host_id, exc)
            return
        self._seqs.next(message.type)
        self._drained.clear()
        self._link.wake()

    async def _datagram(self, data: bytes, kind: MessageType) -> None:
        """Send one datagram to the collector the TCP side uses."""
        address = self._failover.address
        try:
            peer = self._link.peer if self._link is not None else None
            target = peer if peer is not None else await self._resolver.target(address)
            await self._udp.send(data, target)
        except OSError as exc:
            self._stats.send_errors += 1
            self._resolver.forget(address)
            log.debug("datagram to %s failed: %s", address, exc)
            return
        self._stats.datagrams_sent += 1
        self._stats.bytes_sent += len(data)
        self._stats.messages_sent[(kind.name, "udp")] += 1
