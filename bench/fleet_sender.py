"""The fleet's sender process: reports on their periods (or flat out) and STATE_VM over TCP.

One process (forked, optionally pinned to a CPU) holds the whole fleet. Its main thread sends
the UDP reports in the order of a virtual schedule (each kind at ``hosts / period`` reports per
second, hosts in a shuffled round-robin, as uniformly spread agents would) and makes the VM
state churn and the periodic full syncs; a TCP thread carries every native STATE_VM frame over
a pool of persistent connections (a host always uses the same one, so its frames stay in seq
order), matches the collector's acknowledgements and, like an agent, sends again in order what
was not acknowledged when a connection dies. Legacy hosts' STATE_VM go one message per
connection, as OpenNebula's agent sends them.

The parent talks to it through :class:`FleetSender`: commands over a pipe, live counters in
shared memory, latency samples (what was sent, when) on a queue.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import queue
import random
import selectors
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final

from bench.fleet_hosts import MARK_BASE, UDP_KINDS, Fleet, FleetSpec, SimHost
from onemon.wire.errors import WireError
from onemon.wire.model import MessageType
from onemon.wire.stream import MAX_ACK_BYTES, FrameReader, decode_ack, frame

T = MessageType
WINDOW: Final = 256
"""Frames in flight per connection before waiting for acks."""
STATES: Final = ("RUNNING", "SUSPENDED", "POWEROFF")
BUSY_SECONDS: Final = 30.0
"""A VM whose change is being timed is not changed again for this long."""

# Shared counters (indices into FleetSender.counters).
UDP_SENT, TCP_FRAMES, ACK_OK, ACK_REJECTED, SEND_ERRORS, LEGACY_TCP, RESENT, CHURN, SYNCS = range(9)
COUNTERS: Final = 9


@dataclass(slots=True)
class Frame:
    """A native STATE_VM frame on its way: which host, seq, what it changes, when first sent."""

    host: int
    seq: int
    data: bytes
    kind: str
    changes: tuple[tuple[int, str], ...]
    first_sent: float = 0.0


@dataclass(slots=True)
class Link:
    """One pooled TCP connection."""

    index: int
    sock: socket.socket | None = None
    pending: deque[Frame] = field(default_factory=deque)
    inflight: deque[Frame] = field(default_factory=deque)
    out: bytearray = field(default_factory=bytearray)
    reader: FrameReader = field(default_factory=lambda: FrameReader(MAX_ACK_BYTES))
    retry_at: float = 0.0
    failures: int = 0


class TcpPool(threading.Thread):
    """Sends frames over the pool and matches acks; resends the unacknowledged on reconnect."""

    def __init__(self, port: int, links: int, counters: Any, record: bool) -> None:
        super().__init__(name="tcp-pool", daemon=True)
        self.port = port
        self.links = [Link(i) for i in range(links)]
        self.counters = counters
        self.inbox: queue.SimpleQueue[tuple[int, Frame] | None] = queue.SimpleQueue()
        self.latency: dict[str, list[float]] = {"churn": [], "sync": [], "warm": [], "system": []}
        self.acks: Counter[str] = Counter()
        self.acked: list[tuple[int, int, tuple[tuple[int, str], ...]]] | None = (
            [] if record else None
        )
        self._selector = selectors.DefaultSelector()
        self._closing = False

    def put(self, link: int, item: Frame) -> None:
        """Queue a frame on a connection."""
        self.inbox.put((link, item))

    def busy(self) -> int:
        """Frames not yet acknowledged (queued, written or in flight)."""
        return self.inbox.qsize() + sum(len(x.pending) + len(x.inflight) for x in self.links)

    def close(self) -> None:
        """Stop the thread (what is unacknowledged stays unacknowledged)."""
        self._closing = True
        self.inbox.put(None)
        self.join(5)
        for link in self.links:
            self._drop(link, count=False)

    def run(self) -> None:
        """The pool's loop."""
        while not self._closing:
            self._take()
            now = time.monotonic()
            for link in self.links:
                if link.sock is None and (link.pending or link.inflight) and now >= link.retry_at:
                    self._connect(link)
                if link.sock is not None:
                    self._fill(link)
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.out else 0)
                    self._selector.modify(link.sock, events, link)
            if not self._selector.get_map():
                time.sleep(0.002)
                continue
            for key, mask in self._selector.select(0.002):
                link = key.data
                if mask & selectors.EVENT_READ:
                    self._read(link)
                if link.sock is not None and mask & selectors.EVENT_WRITE:
                    self._write(link)

    def _take(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                item = self.inbox.get_nowait()
                if item is None:
                    return
                self.links[item[0]].pending.append(item[1])

    def _connect(self, link: Link) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        except OSError:
            link.failures += 1
            link.retry_at = time.monotonic() + min(1.0, 0.1 * link.failures)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        link.sock, link.failures = sock, 0
        link.reader = FrameReader(MAX_ACK_BYTES)
        link.out.clear()
        if link.inflight:  # sent but never acknowledged: again, in order, before the rest
            self.counters[RESENT] += len(link.inflight)
            link.pending.extendleft(reversed(link.inflight))
            link.inflight.clear()
        self._selector.register(sock, selectors.EVENT_READ, link)

    def _fill(self, link: Link) -> None:
        now = time.monotonic()
        while link.pending and len(link.inflight) < WINDOW:
            item = link.pending.popleft()
            if not item.first_sent:
                item.first_sent = now
            link.out += item.data
            link.inflight.append(item)
            self.counters[TCP_FRAMES] += 1

    def _write(self, link: Link) -> None:
        assert link.sock is not None
        try:
            sent = link.sock.send(link.out)
        except BlockingIOError:
            return
        except OSError:
            self._drop(link)
            return
        del link.out[:sent]

    def _read(self, link: Link) -> None:
        assert link.sock is not None
        try:
            data = link.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(link)
            return
        try:
            payloads = link.reader.feed(data)
        except WireError:
            self._drop(link)
            return
        now = time.monotonic()
        for payload in payloads:
            ack = decode_ack(payload)
            item = next((i for i in link.inflight if i.seq == ack.seq), None)
            if item is None:
                continue
            link.inflight.remove(item)
            self.acks[ack.code] += 1
            self.latency[item.kind].append(now - item.first_sent)
            if ack.accepted:
                self.counters[ACK_OK] += 1
                if self.acked is not None and item.changes:
                    self.acked.append((item.host, item.seq, item.changes))
            else:
                self.counters[ACK_REJECTED] += 1

    def _drop(self, link: Link, count: bool = True) -> None:
        if link.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(link.sock)
        link.sock.close()
        link.sock = None
        link.out.clear()
        link.failures += 1
        link.retry_at = time.monotonic() + min(1.0, 0.1 * link.failures)
        if count:
            self.counters[SEND_ERRORS] += 1


class LegacyTcp(threading.Thread):
    """OpenNebula's way: one connection per STATE_VM message, in order."""

    def __init__(self, port: int, counters: Any) -> None:
        super().__init__(name="legacy-tcp", daemon=True)
        self.port = port
        self.counters = counters
        self.inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # written by the caller's thread only
        self._done = 0  # written by this thread only

    @property
    def pending(self) -> int:
        """Messages queued or being sent."""
        return self._queued - self._done

    def run(self) -> None:
        """Send queued lines until told to stop."""
        while True:
            line = self.inbox.get()
            if line is None:
                return
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(line)
                self.counters[LEGACY_TCP] += 1
            except OSError:
                self.counters[SEND_ERRORS] += 1
            finally:
                self._done += 1

    def put(self, line: bytes) -> None:
        """Queue one legacy message."""
        self._queued += 1
        self.inbox.put(line)


class Schedule:
    """UDP reports in virtual-time order: each kind evenly spread, hosts shuffled per kind."""

    def __init__(self, fleet: Fleet, rng: random.Random) -> None:
        spec = fleet.spec
        self.kinds: list[tuple[MessageType, list[SimHost], float]] = []
        for kind, mtype in UDP_KINDS.items():
            hosts = [h for h in fleet.hosts if mtype is not T.MONITOR_VM or len(h.vms)]
            rng.shuffle(hosts)
            if hosts:
                self.kinds.append((mtype, hosts, len(hosts) / spec.period(kind)))
        self.phase = [rng.random() for _ in self.kinds]
        self.heap = [(self.phase[i] / kind[2], i, 0) for i, kind in enumerate(self.kinds)]
        heapq.heapify(self.heap)
        self.offset = 0.0

    def __iter__(self) -> Iterator[tuple[float, MessageType, SimHost]]:
        while True:
            vt, index, k = self.heap[0]
            mtype, hosts, rate = self.kinds[index]
            heapq.heapreplace(self.heap, ((k + 1 + self.phase[index]) / rate, index, k + 1))
            yield vt - self.offset, mtype, hosts[k % len(hosts)]

    def rebase(self) -> None:
        """Make the next report's virtual time 0 (a new run continues the same order)."""
        self.offset = self.heap[0][0]


class Simulator:
    """Everything the sender process does."""

    def __init__(
        self,
        spec: FleetSpec,
        port: int,
        counters: Any,
        events: Any,
        stop: Any,
        record: bool,
    ) -> None:
        self.spec = spec
        self.counters = counters
        self.events = events
        self.stop = stop
        self.rng = random.Random(spec.seed + 1)
        natives = sum(1 for i in range(spec.hosts) if not spec.is_legacy(i))
        markers = min(natives, math.ceil(spec.marker_rate * spec.period("monitor_host")))
        self.fleet = Fleet(spec, markers)
        self.fleet.check()
        self.schedule = Schedule(self.fleet, self.rng)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.udp.connect(("127.0.0.1", port))
        self.pool = TcpPool(port, spec.tcp_connections, counters, record)
        self.pool.start()
        self.legacy = LegacyTcp(port, counters)
        self.legacy.start()
        self.sent: Counter[str] = Counter()
        self.marks = 0
        self.busy: dict[int, float] = {}
        self.churned: dict[int, str] = {}
        self.vm_ids = list(self.fleet.state)
        self.sync_hosts = [h for h in self.fleet.hosts if len(h.vms)]
        self.rng.shuffle(self.sync_hosts)
        self.sync_next = 0

    # --- sending ----------------------------------------------------------------------------

    def send_udp(self, host: SimHost, mtype: MessageType, markers: bool) -> None:
        """One report as datagrams (a latency marker for marker hosts' MONITOR_HOST); a native
        host's SYSTEM_HOST goes over acknowledged TCP, as the agent sends it."""
        if mtype is T.SYSTEM_HOST and not host.legacy:
            link = host.index % len(self.pool.links)
            for data in host.datagrams(mtype):
                item = Frame(host.index, host.seqs[mtype] - 1, frame(data), "system", ())
                self.pool.put(link, item)
            self.sent["SYSTEM_HOST/native-tcp"] += 1
            return
        if markers and host.marker and mtype is T.MONITOR_HOST:
            mark = MARK_BASE + self.marks
            self.marks += 1
            self.events.put(("host", host.host_id, mark, time.monotonic()))
            datagrams = [host.marker_report(mark, self.rng)]
        else:
            datagrams = host.datagrams(mtype)
        for data in datagrams:
            try:
                self.udp.send(data)
            except OSError:
                self.counters[SEND_ERRORS] += 1
                continue
            self.counters[UDP_SENT] += 1
        self.sent[f"{mtype.name}/{'legacy' if host.legacy else 'native'}"] += len(datagrams)

    def send_state(self, host: SimHost, states: dict[int, str], kind: str) -> None:
        """A STATE_VM report over TCP (acknowledged for native hosts)."""
        message = host.state_vm(states, sync=kind != "churn")
        if host.legacy:
            self.legacy.put(host.encode(message))
            return
        data = host.encode(message)
        seq = host.seqs[T.STATE_VM] - 1
        changes = tuple(states.items()) if kind == "churn" else ()
        link = host.index % len(self.pool.links)
        self.pool.put(link, Frame(host.index, seq, frame(data), kind, changes))

    def churn_one(self, now: float, sample: bool) -> None:
        """Change one random VM's state and report it."""
        vm = -1
        for _ in range(10):
            candidate = self.vm_ids[self.rng.randrange(len(self.vm_ids))]
            if self.busy.get(candidate, 0.0) <= now:
                vm = candidate
                break
        if vm < 0:
            return
        old = self.fleet.state[vm]
        new = self.rng.choice([s for s in STATES if s != old] if old == "RUNNING" else ["RUNNING"])
        self.fleet.state[vm] = new
        self.churned[vm] = new
        host = self.fleet.hosts[self.fleet.host_of[vm]]
        if sample:
            self.busy[vm] = now + BUSY_SECONDS
            self.events.put(("vm", vm, new, time.monotonic()))
        self.send_state(host, {vm: new}, "churn")
        self.counters[CHURN] += 1

    def sync_one(self) -> None:
        """The next host's full STATE_VM report."""
        host = self.sync_hosts[self.sync_next % len(self.sync_hosts)]
        self.sync_next += 1
        self.send_state(host, {vm: self.fleet.state[vm] for vm in host.vms}, "sync")
        self.counters[SYNCS] += 1

    # --- phases -----------------------------------------------------------------------------

    def warm(self, rate: float) -> dict[str, Any]:
        """Every host reports once (UDP), then sends its full VM state (TCP), paced at ``rate``."""
        started = time.monotonic()
        for count, (host, mtype) in enumerate(self.fleet.warm_up(), 1):
            if self.stop.is_set():
                break
            self._pace(started, count / rate)
            self.send_udp(host, mtype, markers=False)
        tcp_start = time.monotonic()
        for n, host in enumerate(self.sync_hosts):
            self._pace(tcp_start, n / rate)
            self.send_state(host, {vm: self.fleet.state[vm] for vm in host.vms}, "warm")
        self._drain(120)
        return {
            "datagrams": self.counters[UDP_SENT],
            "frames": self.counters[TCP_FRAMES] + self.counters[LEGACY_TCP],
            "seconds": time.monotonic() - started,
            "unacked": self.pool.busy(),
        }

    def run(self, seconds: float, flat: bool) -> dict[str, Any]:
        """Reports for ``seconds``, paced by the schedule or flat out; churn and syncs paced."""
        spec = self.spec
        before = list(self.counters)
        sent_before = Counter(self.sent)
        for values in self.pool.latency.values():
            values.clear()
        acks_before = Counter(self.pool.acks)
        self.schedule.rebase()
        churn_gap = 1.0 / spec.churn if spec.churn > 0 else math.inf
        sync_rate = len(self.sync_hosts) / spec.period("sync_state_vm")
        sync_gap = 1.0 / sync_rate if sync_rate > 0 else math.inf
        sample_gap = 1.0 / spec.marker_rate if spec.marker_rate > 0 else math.inf
        started = time.monotonic()
        end = started + seconds
        next_churn = started + churn_gap * self.rng.random()
        next_sync = started + sync_gap * self.rng.random()
        next_sample = started
        for batch, (vt, mtype, host) in enumerate(self.schedule):
            now = time.monotonic()
            if not flat:
                while started + vt > now:
                    time.sleep(min(started + vt - now, 0.002))
                    now = time.monotonic()
                    next_churn, next_sync, next_sample = self._tcp_due(
                        now, next_churn, churn_gap, next_sync, sync_gap, next_sample, sample_gap
                    )
            elif batch % 256 == 0:
                next_churn, next_sync, next_sample = self._tcp_due(
                    now, next_churn, churn_gap, next_sync, sync_gap, next_sample, sample_gap
                )
            if now >= end or self.stop.is_set():
                break
            self.send_udp(host, mtype, markers=not flat)
            if not flat:
                next_churn, next_sync, next_sample = self._tcp_due(
                    now, next_churn, churn_gap, next_sync, sync_gap, next_sample, sample_gap
                )
        elapsed = time.monotonic() - started
        drained = self._drain(60)
        after = list(self.counters)
        delta = {name: after[i] - before[i] for i, name in enumerate(_NAMES)}
        return {
            **delta,
            "seconds": elapsed,
            "drain_seconds": drained,
            "sent_by_kind": dict(self.sent - sent_before),
            "acks": dict(self.pool.acks - acks_before),
            "ack_latency": {k: list(v) for k, v in self.pool.latency.items()},
            "unacked": self.pool.busy(),
            "legacy_pending": self.legacy.pending,
        }

    def _tcp_due(
        self,
        now: float,
        next_churn: float,
        churn_gap: float,
        next_sync: float,
        sync_gap: float,
        next_sample: float,
        sample_gap: float,
    ) -> tuple[float, float, float]:
        while next_churn <= now:
            sample = next_sample <= now
            if sample:
                next_sample = now + sample_gap
            self.churn_one(now, sample)
            next_churn += churn_gap
        while next_sync <= now:
            self.sync_one()
            next_sync += sync_gap
        return next_churn, next_sync, next_sample

    def _pace(self, started: float, at: float) -> None:
        delay = started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _drain(self, timeout: float) -> float:
        """Wait until every frame is acknowledged (and legacy messages sent); seconds waited."""
        started = time.monotonic()
        while (self.pool.busy() or self.legacy.pending) and time.monotonic() < started + timeout:
            time.sleep(0.01)
        return time.monotonic() - started

    def truth(self, count: int) -> list[tuple[int, str]]:
        """Up to ``count`` churned VMs (random) with their current state."""
        churned = sorted(self.churned)
        picked = self.rng.sample(churned, min(count, len(churned)))
        return [(vm, self.fleet.state[vm]) for vm in sorted(picked)]

    def close(self) -> None:
        """Stop the threads and close the sockets."""
        self.pool.close()
        self.legacy.inbox.put(None)
        self.legacy.join(5)
        self.udp.close()


_NAMES: Final = (
    "udp_sent", "tcp_frames", "ack_ok", "ack_rejected", "send_errors", "legacy_tcp", "resent",
    "churn", "syncs",
)  # fmt: skip


def _main(
    conn: Connection,
    spec: FleetSpec,
    port: int,
    cpu: int | None,
    counters: Any,
    events: Any,
    stop: Any,
    record: bool,
) -> None:
    """The sender process."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    started = time.perf_counter()
    sim = Simulator(spec, port, counters, events, stop, record)
    markers = sum(1 for h in sim.fleet.hosts if h.marker)
    conn.send(("ready", time.perf_counter() - started, markers))
    try:
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                return
            if command == "stop":
                return
            if command == "warm":
                conn.send(sim.warm(*args))
            elif command == "run":
                conn.send(sim.run(*args))
            elif command == "truth":
                conn.send(sim.truth(*args))
            elif command == "acked":
                conn.send(list(sim.pool.acked or []))
            elif command == "state":
                conn.send(dict(sim.fleet.state))
    finally:
        sim.close()
        conn.close()


class FleetSender:
    """The parent's handle on the sender process."""

    def __init__(
        self, spec: FleetSpec, port: int, *, cpu: int | None = None, record_acks: bool = False
    ) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.events: Any = context.Queue()
        self.counters: Any = context.Array("q", COUNTERS, lock=False)
        self.stop_flag: Any = context.Event()
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_main,
            args=(child, spec, port, cpu, self.counters, self.events, self.stop_flag, record_acks),
            daemon=True,
            name="fleet-sender",
        )
        self.process.start()
        child.close()
        ready = self._recv(600)
        self.build_seconds: float = ready[1]
        self.marker_hosts: int = ready[2]

    def _recv(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"the sender did not answer in {timeout:.0f} s")
        return self._conn.recv()

    def call(self, *command: Any, timeout: float = 3600) -> Any:
        """Run a command and return its answer."""
        self._conn.send(command)
        return self._recv(timeout)

    def begin(self, *command: Any) -> None:
        """Start a command; :meth:`result` collects its answer."""
        self._conn.send(command)

    def ready(self) -> bool:
        """Whether the command started with :meth:`begin` has answered."""
        return self._conn.poll()

    def result(self, timeout: float = 3600) -> Any:
        """The answer of the command started with :meth:`begin`."""
        return self._recv(timeout)

    def counter(self, index: int) -> int:
        """A live counter (``UDP_SENT``, ``TCP_FRAMES``…)."""
        return int(self.counters[index])

    def close(self) -> None:
        """Stop the process."""
        self.stop_flag.set()
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(("stop",))
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._conn.close()
        self.events.cancel_join_thread()
        self.events.close()
