"""What the reader returns besides the state model's Host and Vm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from onemon.collector.model import Host, Vm
from onemon.wire.model import Template

Sample: TypeAlias = tuple[float, Template]
"""One history record: (receive time, attributes under OpenNebula's names)."""


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """Persisted replay-protection state of one (host, message type) stream (docs/protocol.md)."""

    host_id: int
    msg_type: int
    boot_id: bytes
    seq: int
    window: int
    """Bitmask of seen seqs below ``seq``: 0 <= window < 2**64."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """One journal entry: a host or VM changed state."""

    id: int
    ts: float
    host_id: int | None
    vm_id: int | None
    report: str
    source: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a restarted collector needs back: state and ordering progress."""

    hosts: list[Host] = field(default_factory=list)
    vms: list[Vm] = field(default_factory=list)
    progress: list[ProgressRow] = field(default_factory=list)
