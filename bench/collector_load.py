"""Load for the ingest benchmark: a fleet's signed native datagrams and a sender process.

Every host has its own boot id and one increasing seq per message type, as an agent does, so no
datagram is a replay as long as the pools are sent in the order they were built (warm-up, then
flat-out, then paced). Each stream's envelope is encoded once by ``native.encode`` with a marker
seq; a datagram is then that template with its seq spliced in and a fresh HMAC tag: the very
bytes ``native.encode`` gives (checked), at a fraction of the cost, so a million are built in a
couple of seconds.
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import cbor2

from bench.payloads import monitor_vm
from onemon.wire import native
from onemon.wire.keys import Key, KeyRing
from onemon.wire.limits import DEFAULT_DATAGRAM_BUDGET
from onemon.wire.model import Message, MessageType, Status, Template
from onemon.wire.split import split

T = MessageType
SEQ_MARK = 0x1BADC0DE_5EC0_5EC0
_MARK_BYTES = b"\x1b" + SEQ_MARK.to_bytes(8, "big")
MIX: tuple[tuple[MessageType, int], ...] = (
    (T.BEACON_HOST, 4),
    (T.MONITOR_HOST, 4),
    (T.MONITOR_VM, 2),
)
"""Flat-out and paced pools: per 10 datagrams, 4 beacons, 4 MONITOR_HOST, 2 MONITOR_VM parts."""
HMAC_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
BATCH = 1024
"""Datagrams sent between two clock reads in the flat-out loop."""


@dataclass(frozen=True)
class Fleet:
    """What the pools are made of."""

    hosts: int = 1000
    vms_per_host: int = 16
    """One MONITOR_VM part per host: 16 VMs is about 1,350 bytes, just under the 1,400 budget."""
    flat: int = 1_000_000
    paced: int = 120_000
    key: Key = field(default_factory=lambda: Key("cluster", b"onemon-bench-key-0123456789abcdef"))


def boot_id(host_id: int) -> bytes:
    """Boot counter 1, then the host id: one boot per host, never reused."""
    return (1).to_bytes(8, "big") + host_id.to_bytes(8, "big")


def system_host(host_id: int, rng: random.Random) -> Template:
    """SYSTEM_HOST as the built-in probe sends it for a 2-socket, 32-core KVM host."""
    cores = [
        {"NODE_ID": core // 16, "ID": core, "CPUS": f"{core},{core + 32}"} for core in range(32)
    ]
    total = 256 * 1024 * 1024
    return {
        "ARCH": "x86_64", "MODELNAME": "AMD EPYC 7543 32-Core Processor", "HYPERVISOR": "kvm",
        "TOTALCPU": 6400, "CPUSPEED": 2800, "TOTALMEMORY": total, "CGROUPS_VERSION": 2,
        "DS_LOCATION_USED_MB": rng.randrange(10**6), "DS_LOCATION_TOTAL_MB": 1_900_000,
        "DS_LOCATION_FREE_MB": rng.randrange(10**6), "HOSTNAME": f"node{host_id:05d}.example.org",
        "HUGEPAGE": [{"NODE_ID": n, "SIZE": s, "PAGES": 0} for n in (0, 1) for s in (2048, 2**20)],
        "CORE": cores,
        "MEMORY_NODE": [{"NODE_ID": n, "TOTAL": total // 2, "DISTANCE": f"{n} {1 - n}"}
                        for n in (0, 1)],
        "VERSION": "0.1.0",
    }  # fmt: skip


def monitor_host(rng: random.Random) -> Template:
    """MONITOR_HOST as the built-in probe sends it, with the agent's self-metrics."""
    total = 256 * 1024 * 1024
    used = rng.randrange(total)
    return {
        "HYPERVISOR": "kvm", "USEDMEMORY": used, "FREEMEMORY": total - used,
        "FREECPU": rng.randrange(6400), "USEDCPU": rng.randrange(6400),
        "NETRX": rng.randrange(10**13), "NETTX": rng.randrange(10**13),
        "HUGEPAGE": [{"NODE_ID": n, "SIZE": s, "FREE": 0} for n in (0, 1) for s in (2048, 1048576)],
        "MEMORY_NODE": [{"NODE_ID": n, "FREE": rng.randrange(total // 2), "USED": used // 2}
                        for n in (0, 1)],
        "AGENT": {
            "PROBE_FAILURES": 0, "PROBE_TIMEOUTS": 0, "PROBE_TRUNCATED": 0,
            "HYPERVISOR_UNREACHABLE": 0, "GROUP_SKIPS": 0, "GROUP_ERRORS": 0,
            "CYCLE_SECONDS_MONITOR_VM": round(rng.uniform(0, 0.2), 6),
            "CYCLE_SECONDS_MONITOR_HOST": round(rng.uniform(0, 0.05), 6),
            "MESSAGES_SENT": rng.randrange(10**6), "DATAGRAMS_SENT": rng.randrange(10**6),
            "BYTES_SENT": rng.randrange(10**9), "SEND_ERRORS": 0, "MESSAGES_DROPPED": 0,
            "SPOOL_MESSAGES": 0, "SPOOL_BYTES": 0, "FAILOVERS": 0,
        },
    }  # fmt: skip


class Streams:
    """Per (host, type): an envelope template and the next seq."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        secret = fleet.key.secret
        if len(secret) > HMAC_BLOCK:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(HMAC_BLOCK, b"\0")
        self._inner = hashlib.sha256(secret.translate(_IPAD))
        self._outer = hashlib.sha256(secret.translate(_OPAD))
        self.templates: dict[tuple[int, MessageType], tuple[Any, bytes, bytes]] = {}
        self.next_seq: dict[tuple[int, MessageType], int] = {}
        self.vms_in_part = 0
        now = time.time()
        for host_id in range(fleet.hosts):
            rng = random.Random(host_id)
            vm_report = monitor_vm(host_id, fleet.vms_per_host, seed=host_id, timestamp=now)
            sizer = native.DatagramSizer(fleet.key, boot_id(host_id))
            part = split(vm_report, sizer, DEFAULT_DATAGRAM_BUDGET).datagrams[0]
            self.vms_in_part = len(part.payload["VM"])
            payloads = {
                T.SYSTEM_HOST: system_host(host_id, rng),
                T.MONITOR_HOST: monitor_host(rng),
                T.BEACON_HOST: {},
            }
            messages = [Message(t, Status.SUCCESS, host_id, now, p) for t, p in payloads.items()]
            for message in [*messages, part]:
                self._add(message)

    def _add(self, message: Message) -> None:
        data = native.encode(message, self.fleet.key, boot_id(message.host_id), SEQ_MARK)
        if len(data) > DEFAULT_DATAGRAM_BUDGET or data.count(_MARK_BYTES) != 1:
            raise AssertionError(f"{message.type.name}: {len(data)} bytes or ambiguous marker")
        at = data.index(_MARK_BYTES)
        prefix = data[:at]
        inner = self._inner.copy()
        inner.update(prefix)  # HMAC's inner hash, with the stream's constant prefix absorbed
        suffix = data[at + len(_MARK_BYTES) : -native.TAG_BYTES]
        key = (message.host_id, message.type)
        self.templates[key] = (inner, prefix, suffix)
        self.next_seq[key] = 1

    def datagram(self, host_id: int, mtype: MessageType) -> bytes:
        """The stream's next datagram."""
        key = (host_id, mtype)
        inner_prefix, prefix, suffix = self.templates[key]
        seq = self.next_seq[key]
        self.next_seq[key] = seq + 1
        tail = cbor2.dumps(seq) + suffix
        inner = inner_prefix.copy()
        inner.update(tail)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return prefix + tail + outer.digest()

    def warm_up(self) -> list[bytes]:
        """Every host's SYSTEM_HOST (hosts become MONITORED), MONITOR_HOST, VMs, a beacon."""
        order = (T.SYSTEM_HOST, T.MONITOR_HOST, T.MONITOR_VM, T.BEACON_HOST)
        return [self.datagram(h, t) for t in order for h in range(self.fleet.hosts)]

    def mixed(self, count: int) -> list[bytes]:
        """``count`` datagrams round-robin over the hosts, each host cycling through :data:`MIX`."""
        pattern = [mtype for mtype, weight in MIX for _ in range(weight)]
        hosts = self.fleet.hosts
        return [
            self.datagram(i % hosts, pattern[(i // hosts + i % hosts) % len(pattern)])
            for i in range(count)
        ]


def check(streams: Streams, sample: list[bytes]) -> None:
    """The spliced datagrams are what ``native.encode`` builds, and they authenticate."""
    ring = KeyRing.single(streams.fleet.key)
    for data in sample:
        env = native.decode(data, ring)
        message = env.message
        again = native.encode(message, streams.fleet.key, env.boot_id, env.seq)
        if again != data:
            raise AssertionError(f"spliced {message.type.name} differs from native.encode")


@dataclass
class Pools:
    """The datagrams, built in the sender process."""

    warm: list[bytes]
    flat: list[bytes]
    paced: list[bytes]
    build_seconds: float
    vms_in_part: int
    ring: KeyRing

    def sizes(self) -> dict[str, float]:
        """Mean datagram size per type (from the first 10,000) and over the whole flat pool."""
        ring = self.ring
        by_type: dict[str, list[int]] = {}
        for data in self.flat[: 10 * 1000]:
            name = native.decode(data, ring).message.type.name
            by_type.setdefault(name, []).append(len(data))
        out = {name: sum(v) / len(v) for name, v in by_type.items()}
        out["all"] = sum(len(d) for d in self.flat) / len(self.flat)
        return out


def build(fleet: Fleet) -> Pools:
    """Warm-up, flat-out and paced pools, in send order."""
    started = time.perf_counter()
    streams = Streams(fleet)
    warm = streams.warm_up()
    flat = streams.mixed(fleet.flat)
    paced = streams.mixed(fleet.paced)
    check(streams, warm[:: max(1, len(warm) // 50)] + flat[:100] + paced[-100:])
    elapsed = time.perf_counter() - started
    return Pools(warm, flat, paced, elapsed, streams.vms_in_part, KeyRing.single(fleet.key))


def send_flat(sock: socket.socket, pool: list[bytes], seconds: float) -> tuple[int, float]:
    """Send ``pool`` as fast as one core can, for at most ``seconds``; (sent, elapsed)."""
    send = sock.send
    started = time.perf_counter()
    deadline = started + seconds
    sent = 0
    for start in range(0, len(pool), BATCH):
        for data in pool[start : start + BATCH]:
            send(data)
        sent = min(start + BATCH, len(pool))
        if time.perf_counter() >= deadline:
            break
    return sent, time.perf_counter() - started


def send_paced(sock: socket.socket, pool: list[bytes], rate: float) -> tuple[int, float]:
    """Send ``pool`` at ``rate`` datagrams/s, a millisecond's worth at a time; (sent, elapsed)."""
    burst = max(1, round(rate / 1000))
    started = time.perf_counter()
    send = sock.send
    for index, start in enumerate(range(0, len(pool), burst)):
        delay = started + index * burst / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for data in pool[start : start + burst]:
            send(data)
    return len(pool), time.perf_counter() - started


def _batches(conn: Connection) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        yield request


def sender_main(conn: Connection, fleet: Fleet, cpu: int) -> None:
    """The sender process: build the pools, then send what the parent asks, pinned to ``cpu``."""
    import os

    pools = build(fleet)
    os.sched_setaffinity(0, {cpu})
    conn.send(("ready", pools.build_seconds, pools.sizes(), pools.vms_in_part, len(pools.warm)))
    for kind, port, arg in _batches(conn):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            sock.connect(("127.0.0.1", port))
            if kind == "flat":
                conn.send(send_flat(sock, pools.flat, arg))
            elif kind == "warm":
                conn.send(send_paced(sock, pools.warm, arg))
            else:
                conn.send(send_paced(sock, pools.paced, arg))
    conn.close()
