"""decode → authenticate → order → apply → persist: the collector's pipeline for one message."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from onemon.collector.events import EventBus, HostStateChanged, VmStateChanged
from onemon.collector.ordering import LegacyOrdering, Ordering, Verdict
from onemon.collector.state import CloudState, Outcome, RejectedMessage
from onemon.wire import legacy, native
from onemon.wire.errors import WireError
from onemon.wire.keys import KeyRing
from onemon.wire.limits import MAX_TCP_MESSAGE, MAX_UDP_PAYLOAD
from onemon.wire.model import Message
from onemon.wire.stream import ACK_OK, Ack

log = logging.getLogger("onemon.collector.ingest")

NATIVE_FIRST_BYTE = 0x8B
"""A native envelope starts with a CBOR 11-item array head; a legacy line with a letter."""


class Counters(Protocol):
    """What the pipeline counts (the metrics module's health object)."""

    def message(self, mtype: str, fmt: str, transport: str) -> None:
        """One message accepted and applied."""

    def reject(self, reason: str) -> None:
        """One input rejected, by reason."""


class Persistence(Protocol):
    """The store writer as the pipeline uses it."""

    def put_host(self, host: Any) -> None:
        """Upsert a host's current state."""

    def put_vm(self, vm: Any) -> None:
        """Upsert a VM's current state."""

    def delete_host(self, host_id: int) -> None:
        """Remove a host's current state."""

    def delete_vm(self, vm_id: int) -> None:
        """Remove a VM's current state."""

    def add_host_monitoring(self, host_id: int, ts: float, capacity: Any) -> None:
        """Append a host history row."""

    def add_vm_monitoring(self, vm_id: int, ts: float, monitoring: Any) -> None:
        """Append a VM history row."""

    def add_state_change(
        self, ts: float, host_id: int, vm_id: int, report: str, source: str
    ) -> None:
        """Append a journal row."""

    def put_progress(
        self, host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int
    ) -> None:
        """Record a stream's ordering progress."""


class Router(Protocol):
    """Sharding's hook (``collector/sharding``): is a host's shard applied here, else what now."""

    def leads(self, host_id: int) -> bool:
        """True when this collector applies ``host_id``'s messages."""

    def elsewhere(
        self, host_id: int, seq: int | None, data: bytes, transport: str, fmt: str
    ) -> Ack | None:
        """Redirect (the ack to answer a native TCP frame) or relay a message led elsewhere."""


@dataclass
class IngestPolicy:
    """The configuration the pipeline needs."""

    legacy_enabled: bool = True
    legacy_private_key: Any = None


class RateLimitedLog:
    """Logs a reject reason at most once per ``interval`` seconds, with the count suppressed."""

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, reason: str, detail: str) -> None:
        """Log unless this reason was logged within the interval."""
        now = time.monotonic()
        if now - self._last.get(reason, -1e9) < self._interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        extra = self._suppressed.pop(reason, 0)
        more = f" (+{extra} more since last)" if extra else ""
        log.warning("rejected (%s): %s%s", reason, detail[:200], more)
        self._last[reason] = now


class Ingest:
    """Turns received bytes into state changes, counted and persisted."""

    def __init__(
        self,
        state: CloudState,
        keys: KeyRing,
        counters: Counters,
        store: Persistence,
        bus: EventBus,
        policy: IngestPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.keys = keys
        self.counters = counters
        self.store = store
        self.bus = bus
        self.policy = policy or IngestPolicy()
        self.ordering = Ordering()
        self.legacy_ordering = LegacyOrdering()
        self.clock = clock
        self.router: Router | None = None
        """Set when sharding: checked after authentication, before ordering and apply."""
        self._log = RateLimitedLog()
        bus.subscribe(self._on_event)

    # --- entry points -----------------------------------------------------------------------

    def datagram(self, data: bytes) -> None:
        """One UDP datagram, native or legacy; never raises."""
        if not data:
            self._reject("truncated", "empty datagram")
        elif data[0] == NATIVE_FIRST_BYTE:
            self._native(data, "udp", MAX_UDP_PAYLOAD)
        else:
            self._legacy(data, "udp")

    def native_frame(self, data: bytes) -> Ack | None:
        """One native TCP frame; returns the acknowledgement to send once persisted."""
        return self._native(data, "tcp", MAX_TCP_MESSAGE)

    def legacy_message(self, data: bytes) -> None:
        """One legacy TCP message (a whole connection's bytes)."""
        self._legacy(data, "tcp")

    # --- formats ----------------------------------------------------------------------------

    def _native(self, data: bytes, transport: str, max_size: int) -> Ack | None:
        try:
            env = native.decode(data, self.keys, max_size)
        except WireError as exc:
            self._reject(exc.reason, str(exc))
            seq = native.peek_seq(data) if transport == "tcp" else None
            return None if seq is None else Ack(seq, exc.reason)
        msg = env.message
        router = self.router
        if router is not None and not router.leads(msg.host_id):
            return router.elsewhere(msg.host_id, env.seq, data, transport, "native")
        verdict = self.ordering.check(
            msg.host_id, msg.type, env.boot_id, env.seq, transport == "tcp"
        )
        if verdict is Verdict.DUPLICATE:
            self._reject("duplicate", f"host {msg.host_id} seq {env.seq}")
            return Ack(env.seq, ACK_OK)
        if verdict is not Verdict.APPLY:
            self._reject(verdict.value, f"host {msg.host_id} {msg.type.name} seq {env.seq}")
            return Ack(env.seq, verdict.value)
        code = self._apply(msg, "native", transport)
        if code == ACK_OK:
            progress = self.ordering.get(msg.host_id, msg.type)
            if progress is not None:
                self.store.put_progress(
                    msg.host_id, int(msg.type), progress.boot_id, progress.seq, progress.window
                )
        return Ack(env.seq, code)

    def _legacy(self, data: bytes, transport: str) -> None:
        if not self.policy.legacy_enabled:
            self._reject("legacy_disabled", "legacy message")
            return
        try:
            msg = legacy.decode(data, self.policy.legacy_private_key)
        except WireError as exc:
            self._reject(exc.reason, str(exc))
            return
        if msg.host_id < 0:
            self._reject("unknown_host", "front-end message (oid -1) not handled yet")
            return
        router = self.router
        if router is not None and not router.leads(msg.host_id):
            router.elsewhere(msg.host_id, None, data, transport, "legacy")
            return
        if not self.legacy_ordering.accept(msg.host_id, msg.type, msg.timestamp):
            self._reject("out_of_order", f"host {msg.host_id} {msg.type.name}")
            return
        self._apply(msg, "legacy", transport)

    # --- applying ---------------------------------------------------------------------------

    def _apply(self, msg: Message, fmt: str, transport: str) -> str:
        """Apply an accepted message; returns the ack code."""
        try:
            outcome = self.state.apply(msg, self.clock())
        except RejectedMessage as exc:
            self._reject(exc.reason, f"host {msg.host_id} {msg.type.name}")
            return exc.reason
        self.counters.message(msg.type.name, fmt, transport)
        self.persist(outcome)
        return ACK_OK

    def persist(self, outcome: Outcome) -> None:
        """Hand what changed to the store and the event subscribers."""
        state, store = self.state, self.store
        for host_id in outcome.hosts:
            host = state.hosts.get(host_id)
            if host is not None:
                store.put_host(host)
        vms = state.vms
        if outcome.vms:  # MONITOR_VM: a row per VM, so the method is looked up once
            put_vm = store.put_vm
            for vm_id in outcome.vms:
                vm = vms.get(vm_id)
                if vm is not None:
                    put_vm(vm)
        for host_id, ts in outcome.host_history:
            store.add_host_monitoring(host_id, ts, state.hosts[host_id].capacity)
        if outcome.vm_history:
            add_sample = store.add_vm_monitoring
            for vm_id, ts in outcome.vm_history:
                add_sample(vm_id, ts, vms[vm_id].monitoring)
        for event in outcome.events:
            if isinstance(event, VmStateChanged):
                self.store.add_state_change(
                    event.time, event.host_id, event.vm_id, str(event.new), event.source
                )
        if outcome.events:
            self.bus.publish(list(outcome.events))

    def _reject(self, reason: str, detail: str) -> None:
        self.counters.reject(reason)
        if reason != "duplicate":
            self._log.warn(reason, detail)

    def _on_event(self, event: Any) -> None:
        """Host state changes reset OpenNebula's per-type timestamps (reference §1.5)."""
        if isinstance(event, HostStateChanged):
            self.legacy_ordering.reset_host(event.host_id)
