"""The collector's own counters (``onemon_*``), updated by ingest and store, read by the renderer.

Updates come from the event loop thread, reads from the render thread: a render copies each
counter dict in one C-level step, so it never sees one changing size under it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from onemon.collector.model import Host, HostState, Vm, VmReport
from onemon.wire.errors import REASONS

from .access import put
from .kernel import UdpErrors
from .labels import pairs
from .sink import Sink
from .text import plain, timestamp


@dataclass(slots=True)
class Health:
    """Counters and gauges about the collector itself."""

    messages: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """Accepted messages by (type, format, transport)."""
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(sorted(REASONS), 0))
    """Rejected messages by reason; every wire reason starts at 0 so its series always exists."""
    store_backlog_rows: int = 0
    store_up: bool = False
    history_dropped: int = 0
    loop_lag_seconds: float = 0.0
    render_seconds: float = 0.0
    """Duration of the previous render (set by the renderer)."""
    render_samples: int = 0
    render_skipped: int = 0
    shard_leader: dict[int, int] = field(default_factory=dict)
    """Sharding (empty when off): 1 per shard this collector leads, 0 per shard it may lead."""
    shard_hosts: dict[int, int] = field(default_factory=dict)
    """Sharding: hosts held per shard led."""
    shard_takeovers: dict[int, int] = field(default_factory=dict)
    shard_redirects: int = 0
    shard_relayed: int = 0

    def message(self, type_: object, format_: str, transport: str, count: int = 1) -> None:
        """Count accepted messages (e.g. ``MessageType.MONITOR_VM, "native", "udp"``)."""
        key = (str(_name(type_)), format_, transport)
        self.messages[key] = self.messages.get(key, 0) + count

    def reject(self, reason: str, count: int = 1) -> None:
        """Count rejected messages (a wire reason, or the collector's own, e.g. ``"duplicate"``)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + count


def _labelled(
    sink: Sink,
    name: str,
    names: tuple[str, ...],
    counts: Iterable[tuple[tuple[object, ...], object]],
) -> None:
    """One series per label tuple; a value that is not a number, or a repeated set, is skipped."""
    out = sink.out(name)
    seen: set[str] = set()
    for values, raw in counts:
        tag = f"{{{pairs(names, values)}}}"
        if tag in seen:
            sink.skipped += 1
            continue
        seen.add(tag)
        sink.skipped += put(out, tag, raw, plain)


def _scalar(sink: Sink, name: str, raw: object) -> None:
    """One label-less series."""
    sink.skipped += put(sink.out(name), "", raw, plain)


def emit(
    sink: Sink,
    health: Health,
    hosts: Sequence[Host],
    vms: Sequence[Vm],
    udp: UdpErrors | None,
    rendered_at: float,
) -> None:
    """Every ``onemon_*`` family but the agents' (those are per host, see ``agent``)."""
    messages = dict(health.messages)
    rejected = dict(health.rejected)
    _labelled(sink, "onemon_messages_total", ("type", "format", "transport"), messages.items())
    _labelled(
        sink,
        "onemon_messages_rejected_total",
        ("reason",),
        [((k,), v) for k, v in rejected.items()],
    )
    if udp is not None:
        _scalar(sink, "onemon_udp_receive_errors_total", udp.rcvbuf_errors)
        _scalar(sink, "onemon_udp_in_errors_total", udp.in_errors)
    _scalar(sink, "onemon_store_backlog_rows", health.store_backlog_rows)
    _scalar(sink, "onemon_store_up", int(bool(health.store_up)))
    _scalar(sink, "onemon_store_history_dropped_total", health.history_dropped)
    _scalar(sink, "onemon_event_loop_lag_seconds", health.loop_lag_seconds)
    states = dict.fromkeys(HostState, 0)
    for host in hosts:
        states[host.state] = states.get(host.state, 0) + 1
    _labelled(sink, "onemon_hosts", ("state",), [((_name(s),), n) for s, n in states.items()])
    reports = dict.fromkeys(VmReport, 0)
    for vm in vms:
        reports[vm.report] = reports.get(vm.report, 0) + 1
    _labelled(sink, "onemon_vms", ("report",), [((_name(r),), n) for r, n in reports.items()])
    _scalar(sink, "onemon_render_seconds", health.render_seconds)
    sink.skipped += put(sink.out("onemon_render_timestamp_seconds"), "", rendered_at, timestamp)
    _scalar(sink, "onemon_render_samples", health.render_samples)
    _scalar(sink, "onemon_render_skipped_values", health.render_skipped)
    if health.shard_leader:
        _sharding(sink, health)


def _sharding(sink: Sink, health: Health) -> None:
    """The ``onemon_shard_*`` families (only when sharding is on)."""
    for name, counts in (
        ("onemon_shard_leader", health.shard_leader),
        ("onemon_shard_hosts", health.shard_hosts),
        ("onemon_shard_takeovers_total", health.shard_takeovers),
    ):
        _labelled(sink, name, ("shard",), [((k,), v) for k, v in sorted(dict(counts).items())])
    _scalar(sink, "onemon_shard_redirects_total", health.shard_redirects)
    _scalar(sink, "onemon_shard_relayed_total", health.shard_relayed)


def _name(value: object) -> object:
    """An enum member's name, anything else as is."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else value
