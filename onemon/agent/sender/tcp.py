"""Native TCP: one persistent connection, pipelined frames fed from the spool, acks, failover."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from onemon.agent.sender.address import Address, Target, resolve_all
from onemon.agent.sender.failover import Failover
from onemon.agent.sender.redirect import NO_LEADER, NoLeader, Redirected, redirect_target
from onemon.agent.sender.spool import Spool, SpoolEntry
from onemon.agent.sender.stats import SenderStats
from onemon.wire.errors import WireError
from onemon.wire.model import MessageType
from onemon.wire.stream import MAX_ACK_BYTES, Ack, FrameReader, decode_ack, frame

log = logging.getLogger(__name__)

READ_CHUNK = 65536


class LinkDead(Exception):
    """The connection can no longer be trusted (closed, or an ack overdue)."""


@dataclass(slots=True)
class _InFlight:
    """A frame written and not yet acknowledged."""

    entry_id: int
    seq: int
    kind: MessageType
    sent_at: float


async def open_stream(
    address: Address, timeout: float, start: int = 0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``address``, its name resolved now: of several endpoints (a DNS name with
    several records), the ``start``-th (modulo their number) first, then the others in order;
    each attempt, and the lookup, bounded by ``timeout``."""
    # asyncio.timeout, never wait_for, in this package: on 3.11 wait_for can swallow a
    # cancellation arriving as the awaited operation completes, and the link would never stop.
    async with asyncio.timeout(timeout):
        targets = await resolve_all(address)
    first = start % len(targets)
    loop = asyncio.get_running_loop()
    error: OSError | TimeoutError | None = None
    for family, sockaddr in targets[first:] + targets[:first]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, sockaddr)
                return await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError) as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    assert error is not None
    raise error


def keep_alive(sock: socket.socket, ack_timeout: float) -> None:
    """Detect a collector that vanished (host down, network cut: no FIN, no RST) within about
    ``ack_timeout`` even while nothing is sent, so datagrams, which follow this connection, stop
    going into the void: TCP keepalives from half of it, and unacknowledged data bounded by it."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = max(1, int(ack_timeout / 2))
    interval = max(1, int(ack_timeout / 4))
    options = [(getattr(socket, "TCP_KEEPIDLE", None), idle),
               (getattr(socket, "TCP_KEEPINTVL", None), interval),
               (getattr(socket, "TCP_KEEPCNT", None), 2),
               (getattr(socket, "TCP_USER_TIMEOUT", None), int(ack_timeout * 1000))]  # fmt: skip
    for option, value in options:
        if option is not None:  # Linux has them all; elsewhere the ack timeout still applies
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def close_stream(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    """Close a stream without letting a misbehaving peer stall or fail the caller."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(timeout):
            await writer.wait_closed()


class AckLink:
    """Keeps a connection to the first usable collector and drains the spool over it."""

    def __init__(
        self,
        failover: Failover,
        spool: Spool,
        encode: Callable[[SpoolEntry], bytes],
        stats: SenderStats,
        on_drained: Callable[[], None],
        *,
        window: int = 64,
        ack_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        preferred_retry: float = 30.0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._failover = failover
        self._spool = spool
        self._encode = encode
        self._stats = stats
        self._on_drained = on_drained
        self._window = window
        self._ack_timeout = ack_timeout
        self._connect_timeout = connect_timeout
        self._preferred_retry = preferred_retry
        self._wake = asyncio.Event()
        self._switch = False
        self._high_water = 0
        self.peer: Target | None = None
        """Where the connection goes, for datagrams to follow; None while disconnected."""

    def wake(self) -> None:
        """Tell the link new entries are in the spool."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, send and fail over until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            index, delay = self._failover.choose()
            if delay > 0:
                await asyncio.sleep(delay)
            started = loop.time()
            try:
                await self._session(index)
            except Redirected as exc:
                self._follow(index, exc.address)
            except NoLeader:
                delay = self._failover.pause(index)
                log.info("collector %s: no leader for this host's shard yet (retry in %.3g s)",
                         self._failover.collectors[index].address, delay)  # fmt: skip
            except (OSError, TimeoutError, LinkDead, WireError) as exc:
                self._dead(index, loop.time() - started, str(exc) or type(exc).__name__)
            except Exception as exc:  # a bug must not stop the agent from sending
                log.exception("collector link failed")
                self._dead(index, loop.time() - started, repr(exc))

    def _dead(self, index: int, lived: float, reason: str) -> None:
        collector = self._failover.collectors[index]
        if lived > collector.backoff.longest:
            self._failover.succeeded(index)  # a long healthy connection: start back-off afresh
        delay = self._failover.failed(index)
        self._stats.send_errors += 1
        log.warning("collector %s: %s (retry in %.3g s)", collector.address, reason, delay)

    def _follow(self, index: int, address: Address) -> None:
        """Connect next to the collector leading this host's shard."""
        came_from = self._failover.collectors[index].address
        if self._failover.redirect_to(address) is None:
            self._dead(index, 0.0, f"redirected once too often (to {address})")
            return
        self._stats.redirects += 1
        log.info("collector %s: this host's shard is led by %s; going there", came_from, address)

    async def _session(self, index: int) -> None:
        collector = self._failover.collectors[index]
        address = collector.address
        reader, writer = await open_stream(address, self._connect_timeout, collector.endpoint)
        sock: socket.socket | None = writer.get_extra_info("socket")
        family = socket.AF_INET
        if sock is not None:
            keep_alive(sock, self._ack_timeout)
            family = sock.family
        self.peer = (int(family), tuple(writer.get_extra_info("peername")))
        self._failover.use(index)
        self._stats.current_collector = str(address)
        log.info("connected to collector %s (%s)", address, self.peer[1][0])
        self._switch = False
        inflight: deque[_InFlight] = deque()
        tasks = [asyncio.create_task(self._read_acks(reader, inflight, index))]
        if index > 0 and self._failover.listed(index) and index != self._failover.redirect:
            tasks.append(asyncio.create_task(self._probe_better(index)))
        try:
            await self._pump(writer, inflight, tasks[0])
        finally:
            self.peer = None
            self._stats.current_collector = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await close_stream(writer)

    async def _pump(
        self,
        writer: asyncio.StreamWriter,
        inflight: deque[_InFlight],
        reader_task: asyncio.Task[None],
    ) -> None:
        """Write spooled frames within the window; return once drained for a switch."""
        loop = asyncio.get_running_loop()
        cursor = 0
        while True:
            self._wake.clear()
            if reader_task.done():
                reader_task.result()
                raise LinkDead("connection closed by the collector")
            if not self._switch:
                cursor = self._fill(writer, inflight, cursor)
            elif not inflight:
                log.info("switching to a preferred collector")
                return
            async with asyncio.timeout(self._ack_timeout):
                await writer.drain()
            timeout = None
            if inflight:
                timeout = inflight[0].sent_at + self._ack_timeout - loop.time()
                if timeout <= 0:
                    raise LinkDead(f"no ack for seq {inflight[0].seq} in {self._ack_timeout:g} s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _fill(self, writer: asyncio.StreamWriter, inflight: deque[_InFlight], cursor: int) -> int:
        """Write the next spool entries after ``cursor`` while the window has room."""
        room = self._window - len(inflight)
        if room <= 0:
            return cursor
        now = asyncio.get_running_loop().time()
        for entry in self._spool.after(cursor, room):
            cursor = entry.id
            try:
                data = frame(self._encode(entry))
            except (ValueError, TypeError, OverflowError) as exc:
                log.error("spooled %s seq %d cannot be sent: %s", entry.message.type.name,
                          entry.seq, exc)  # fmt: skip
                self._spool.discard(entry.id)
                continue
            writer.write(data)
            inflight.append(_InFlight(entry.id, entry.seq, entry.message.type, now))
            if entry.id <= self._high_water:
                self._stats.resent += 1
            self._high_water = max(self._high_water, entry.id)
            self._stats.messages_sent[(entry.message.type.name, "tcp")] += 1
            self._stats.bytes_sent += len(data)
        return cursor

    async def _read_acks(
        self, reader: asyncio.StreamReader, inflight: deque[_InFlight], index: int
    ) -> None:
        frames = FrameReader(MAX_ACK_BYTES)
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    raise LinkDead("connection closed by the collector")
                for payload in frames.feed(data):
                    self._on_ack(decode_ack(payload), inflight, index)
        finally:
            self._wake.set()

    def _on_ack(self, ack: Ack, inflight: deque[_InFlight], index: int) -> None:
        """Match ``ack`` to the oldest frame in flight with its seq and drop it from the spool."""
        item = next((item for item in inflight if item.seq == ack.seq), None)
        if item is None:
            log.debug("ack for seq %d matches no frame in flight", ack.seq)
            return
        target = redirect_target(ack.code)  # sharding: kept in the spool, sent elsewhere
        if target is not None:
            raise Redirected(target)
        if ack.code == NO_LEADER:
            raise NoLeader
        inflight.remove(item)
        self._wake.set()  # room in the window
        self._spool.delete(item.entry_id)
        self._stats.acks[ack.code] += 1
        self._failover.succeeded(index)
        if not ack.accepted:
            log.warning("collector rejected %s seq %d: %s", item.kind.name, ack.seq, ack.code)
        if self._spool.count == 0:
            self._on_drained()

    async def _probe_better(self, current: int) -> None:
        """Periodically try collectors ahead of ``current``; flag a switch when one answers."""
        while True:
            await asyncio.sleep(self._preferred_retry)
            for index in range(current):
                if not self._failover.ready(index):
                    continue
                collector = self._failover.collectors[index]
                address = collector.address
                try:
                    _, writer = await open_stream(
                        address, self._connect_timeout, collector.endpoint
                    )
                except (OSError, TimeoutError) as exc:
                    delay = self._failover.failed(index)
                    log.debug("collector %s still down: %s (next try in %.3g s)", address, exc,
                              max(delay, self._preferred_retry))  # fmt: skip
                    continue
                await close_stream(writer)
                self._failover.succeeded(index)
                log.info("collector %s is back", address)
                self._switch = True
                self._wake.set()
                return
