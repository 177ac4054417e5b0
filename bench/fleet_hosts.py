"""The simulated fleet: hosts with their own key, boot id and per-type seq, and their messages.

Every native host signs with its own key (``h<id>``, a ``<id>.key`` file in the collector's
``host_keys_dir``) or with the cluster key; every legacy host speaks OpenNebula's line format.
UDP messages are built once per host and type (``Splice``): a datagram is that envelope with the
next seq spliced in and a fresh HMAC tag, byte for byte what ``native.encode`` makes (checked at
build time), so a sender process keeps up with tens of thousands of hosts. Messages whose content
changes (VM state changes and syncs over TCP, latency markers) are encoded in full.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from bench.collector_load import SEQ_MARK, boot_id, monitor_host, system_host
from bench.payloads import vm_record
from onemon.wire import legacy, native
from onemon.wire.keys import CLUSTER_KEY_ID, Key, KeyRing
from onemon.wire.limits import DEFAULT_DATAGRAM_BUDGET
from onemon.wire.model import Message, MessageType, Status, Template
from onemon.wire.split import split
from onemon.wire.stream import frame

T = MessageType
OPENNEBULA_PERIODS: Final[dict[str, float]] = {
    "beacon_host": 30.0,
    "monitor_host": 120.0,
    "system_host": 600.0,
    "monitor_vm": 30.0,
    "sync_state_vm": 180.0,
}
"""Seconds between reports of each kind, OpenNebula's defaults (reference §4.3)."""
UDP_KINDS: Final[dict[str, MessageType]] = {
    "beacon_host": T.BEACON_HOST,
    "monitor_host": T.MONITOR_HOST,
    "system_host": T.SYSTEM_HOST,
    "monitor_vm": T.MONITOR_VM,
}
MARK_BASE: Final = 10**15
"""Latency markers are MONITOR_HOST ``NETRX`` values from here up (real ones stay below)."""
_MARK_BYTES: Final = b"\x1b" + SEQ_MARK.to_bytes(8, "big")
_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))
_HMAC_BLOCK: Final = 64
CLUSTER_SECRET: Final = hashlib.sha256(b"onemon-fleet-cluster-key").digest()


@dataclass(frozen=True)
class FleetSpec:
    """What is simulated: how many hosts and VMs, which wire, how fast, how much churn."""

    hosts: int = 2500
    vms: int = 10_000
    legacy_share: float = 0.0
    """Share of hosts speaking OpenNebula's legacy line format (unauthenticated)."""
    scale: float = 1.0
    """Load multiplier: every period is divided by it (10 = ten times OpenNebula's load)."""
    churn: float = 10.0
    """VM state changes per second over the whole fleet (STATE_VM deltas over TCP)."""
    host_keys: bool = True
    """Each native host has its own key (else all share the cluster key)."""
    tcp_connections: int = 16
    """Native hosts share this many acknowledged TCP connections (host id mod N)."""
    marker_rate: float = 10.0
    """Latency samples per second for each kind (MONITOR_HOST marker, VM state change)."""
    first_host: int = 0
    seed: int = 1

    def period(self, kind: str) -> float:
        """Seconds between two reports of ``kind`` by one host."""
        return OPENNEBULA_PERIODS[kind] / self.scale

    def host_id(self, index: int) -> int:
        """The OpenNebula id of the ``index``-th host."""
        return self.first_host + index

    def vm_range(self, index: int) -> range:
        """VM ids on the ``index``-th host (contiguous blocks, spread evenly)."""
        per, extra = divmod(self.vms, self.hosts)
        start = index * per + min(index, extra)
        return range(start, start + per + (1 if index < extra else 0))

    def is_legacy(self, index: int) -> bool:
        """Whether the ``index``-th host speaks the legacy wire (spread evenly)."""
        share = self.legacy_share
        return math.floor((index + 1) * share) > math.floor(index * share)

    def key(self, index: int) -> Key:
        """The key a native host signs with."""
        if not self.host_keys:
            return Key(CLUSTER_KEY_ID, CLUSTER_SECRET)
        host_id = self.host_id(index)
        secret = hashlib.sha256(f"onemon-fleet-{self.seed}-{host_id}".encode()).digest()
        return Key(f"h{host_id}", secret)

    def ring(self) -> KeyRing:
        """The collector's view of the keys (for checking what the sender builds)."""
        per_host = {self.host_id(i): self.key(i) for i in range(self.hosts) if self.host_keys}
        return KeyRing(cluster={CLUSTER_KEY_ID: CLUSTER_SECRET}, per_host=per_host)

    def offered(self) -> dict[str, float]:
        """Reports per second of each kind at these periods (MONITOR_VM: per host report)."""
        with_vms = sum(1 for i in range(self.hosts) if len(self.vm_range(i)))
        rates = {
            kind: (with_vms if kind == "monitor_vm" else self.hosts) / self.period(kind)
            for kind in UDP_KINDS
        }
        rates["sync_state_vm"] = with_vms / self.period("sync_state_vm")
        rates["churn"] = self.churn
        return rates


def pads(secret: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hash states for ``secret``."""
    if len(secret) > _HMAC_BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_HMAC_BLOCK, b"\0")
    return hashlib.sha256(secret.translate(_IPAD)), hashlib.sha256(secret.translate(_OPAD))


def coded_body(message: Message) -> tuple[int, bytes]:
    """(flags, body) exactly as ``native.encode`` builds them."""
    body = native.encode_body(message)
    if len(body) >= native.COMPRESS_ABOVE:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            return native.FLAG_ZLIB, packed
    return 0, body


class Splice:
    """One stream's envelope; ``datagram(seq)`` gives it with ``seq`` and a fresh tag."""

    __slots__ = ("inner", "outer", "prefix", "suffix")

    def __init__(self, envelope: bytes, inner: Any, outer: Any) -> None:
        if envelope.count(_MARK_BYTES) != 1:
            raise AssertionError("seq marker missing or ambiguous in an envelope")
        at = envelope.index(_MARK_BYTES)
        self.prefix = envelope[:at]
        self.suffix = envelope[at + len(_MARK_BYTES) : -native.TAG_BYTES]
        self.inner = inner.copy()
        self.inner.update(self.prefix)
        self.outer = outer

    def datagram(self, seq: int) -> bytes:
        """The envelope with ``seq`` and its HMAC tag."""
        tail = cbor2.dumps(seq) + self.suffix
        inner = self.inner.copy()
        inner.update(tail)
        outer = self.outer.copy()
        outer.update(inner.digest())
        tag: bytes = outer.digest()
        return self.prefix + tail + tag


@dataclass
class SimHost:
    """One simulated host: identity, per-type seqs, its VMs' states and prebuilt messages."""

    index: int
    host_id: int
    legacy: bool
    key: Key | None
    boot: bytes
    vms: range
    seqs: dict[MessageType, int] = field(default_factory=dict)
    udp: dict[MessageType, list[Splice]] = field(default_factory=dict)
    """Native: the prebuilt envelopes per type (MONITOR_VM may have several parts)."""
    lines: dict[MessageType, list[bytes]] = field(default_factory=dict)
    """Legacy: ``b" " + payload`` per type, to follow ``TYPE STATUS OID TS``."""
    inner: Any = None
    outer: Any = None
    marker: bool = False
    """All its MONITOR_HOST reports carry a latency marker (encoded in full)."""
    deploy: dict[int, str] = field(default_factory=dict)

    def next_seq(self, mtype: MessageType) -> int:
        """Take the next seq of ``mtype``'s stream."""
        seq = self.seqs.get(mtype, 0)
        self.seqs[mtype] = seq + 1
        return seq

    def datagrams(self, mtype: MessageType) -> list[bytes]:
        """The next report of ``mtype`` as datagrams (native: several parts for MONITOR_VM)."""
        if self.legacy:
            head = f"{mtype.name} SUCCESS {self.host_id} {int(time.time())}".encode()
            return [head + rest for rest in self.lines[mtype]]
        return [part.datagram(self.next_seq(mtype)) for part in self.udp[mtype]]

    def encode(self, message: Message) -> bytes:
        """A message encoded in full (native: next seq of its type; legacy: a line)."""
        if self.legacy:
            return legacy.encode(message)
        assert self.key is not None
        return native.encode(message, self.key, self.boot, self.next_seq(message.type))

    def state_vm(self, states: dict[int, str], sync: bool) -> Message:
        """A STATE_VM report: the given VMs' states, as a full sync or as changes."""
        payload: Template = {}
        if sync:
            payload = {"SYNC_STATE": "yes", "MISSING_STATE": "POWEROFF"}
        entries = [
            {"ID": vm, "DEPLOY_ID": self.deploy.get(vm, f"one-{vm}"), "STATE": state}
            for vm, state in states.items()
        ]
        if entries:
            payload["VM"] = entries
        return Message(T.STATE_VM, Status.SUCCESS, self.host_id, time.time(), payload)

    def marker_report(self, mark: int, rng: random.Random) -> bytes:
        """A MONITOR_HOST datagram whose ``NETRX`` is ``mark``."""
        payload = monitor_host(rng)
        payload["NETRX"] = mark
        message = Message(T.MONITOR_HOST, Status.SUCCESS, self.host_id, time.time(), payload)
        return self.encode(message)


class Fleet:
    """Every simulated host, built from a :class:`FleetSpec`."""

    def __init__(self, spec: FleetSpec, marker_hosts: int = 0) -> None:
        self.spec = spec
        self.hosts: list[SimHost] = []
        self.state: dict[int, str] = {}
        """Every VM's current state, the truth the collector must converge to."""
        self.host_of: dict[int, int] = {}
        """VM id → host index."""
        started = time.perf_counter()
        rng = random.Random(spec.seed)
        variants = [self._shared(rng, i) for i in range(16)]
        self._bodies: dict[tuple[int, int], tuple[int, bytes]] = {}
        natives = [i for i in range(spec.hosts) if not spec.is_legacy(i)]
        markers = set(natives[:: max(1, len(natives) // marker_hosts)][:marker_hosts]) if (
            marker_hosts and natives
        ) else set()  # fmt: skip
        for index in range(spec.hosts):
            variant = index % len(variants)
            self.hosts.append(self._host(index, variant, variants[variant], index in markers))
        self.build_seconds = time.perf_counter() - started

    @staticmethod
    def _shared(rng: random.Random, variant: int) -> dict[MessageType, Template]:
        """Payloads shared by hosts (their bodies are encoded once)."""
        return {
            T.SYSTEM_HOST: system_host(variant, rng),
            T.MONITOR_HOST: monitor_host(rng),
            T.BEACON_HOST: {},
        }

    def _host(
        self, index: int, variant: int, shared: dict[MessageType, Template], marker: bool
    ) -> SimHost:
        spec = self.spec
        host_id = spec.host_id(index)
        vms = spec.vm_range(index)
        is_legacy = spec.is_legacy(index)
        key = None if is_legacy else spec.key(index)
        host = SimHost(index, host_id, is_legacy, key, boot_id(host_id), vms, marker=marker)
        rng = random.Random(host_id)
        records = [vm_record(vm, rng) for vm in vms]
        for record in records:
            vm = int(record["ID"])
            host.deploy[vm] = str(record["DEPLOY_ID"])
            self.state[vm] = "RUNNING"
            self.host_of[vm] = index
        now = time.time()
        messages = [Message(t, Status.SUCCESS, host_id, now, p) for t, p in shared.items()]
        report = Message(T.MONITOR_VM, Status.SUCCESS, host_id, now, {"VM": records})
        if is_legacy:
            for message in messages:
                host.lines[message.type] = [_payload_part(legacy.encode(message))]
            host.lines[T.MONITOR_VM] = [_payload_part(legacy.encode(report))] if records else []
            return host
        assert key is not None
        host.inner, host.outer = pads(key.secret)
        for message in messages:
            flags, body = self._body(variant, message)
            sealed = native.seal(message, key, host.boot, SEQ_MARK, flags, body)
            host.udp[message.type] = [Splice(sealed, host.inner, host.outer)]
        parts: list[Message] = []
        if records:
            found = split(report, native.DatagramSizer(key, host.boot), DEFAULT_DATAGRAM_BUDGET)
            if found.oversize:
                raise AssertionError(f"host {host_id}: a VM record exceeds the datagram budget")
            parts = found.datagrams
        host.udp[T.MONITOR_VM] = [
            Splice(native.encode(part, key, host.boot, SEQ_MARK), host.inner, host.outer)
            for part in parts
        ]
        return host

    def _body(self, variant: int, message: Message) -> tuple[int, bytes]:
        """The coded body of a shared payload, encoded once per variant."""
        key = (variant, int(message.type))
        found = self._bodies.get(key)
        if found is None:
            found = self._bodies[key] = coded_body(message)
        return found

    def check(self, sample: int = 20) -> None:
        """Spliced datagrams decode and equal ``native.encode``'s bytes (seqs then rewound)."""
        ring = self.spec.ring()
        natives = [h for h in self.hosts if not h.legacy]
        for host in natives[:: max(1, len(natives) // sample)]:
            for mtype, parts in host.udp.items():
                saved = dict(host.seqs)
                for part, data in zip(parts, host.datagrams(mtype), strict=True):
                    env = native.decode(data, ring)
                    assert host.key is not None
                    again = native.encode(env.message, host.key, env.boot_id, env.seq)
                    if again != data or part.prefix != data[: len(part.prefix)]:
                        raise AssertionError(f"spliced {mtype.name} differs from native.encode")
                host.seqs = saved

    def warm_up(self) -> Iterator[tuple[SimHost, MessageType]]:
        """Every host's SYSTEM_HOST (hosts go MONITORED), MONITOR_HOST, VMs, then a beacon."""
        for mtype in (T.SYSTEM_HOST, T.MONITOR_HOST, T.MONITOR_VM, T.BEACON_HOST):
            for host in self.hosts:
                if mtype is not T.MONITOR_VM or len(host.vms):
                    yield host, mtype


def _payload_part(line: bytes) -> bytes:
    """``b" " + payload`` of a legacy line (its first four fields are rebuilt per send)."""
    fields = line.split(b" ", 4)
    return b" " + fields[4] if len(fields) == 5 else b""


def native_frame(data: bytes) -> bytes:
    """A native TCP frame."""
    return frame(data)
