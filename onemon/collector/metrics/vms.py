"""VM families: OpenNebula's state series plus the measured MONITOR_VM figures."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any, Final

from onemon.collector.model import Vm

from . import libvirt
from .access import Fields, line
from .columns import column
from .labels import Labels, VmOwner
from .sink import Sink
from .text import kib, plain, timestamp

MONITOR: Final[Fields] = (
    ("opennebula_vm_cpu_used_ratio", "CPU", plain),
    ("opennebula_vm_mem_used_bytes", "MEMORY", kib),
    ("opennebula_vm_net_rx_bytes_total", "NETRX", plain),
    ("opennebula_vm_net_tx_bytes_total", "NETTX", plain),
    ("opennebula_vm_disk_read_bytes_total", "DISKRDBYTES", plain),
    ("opennebula_vm_disk_write_bytes_total", "DISKWRBYTES", plain),
    ("opennebula_vm_disk_read_requests_total", "DISKRDIOPS", plain),
    ("opennebula_vm_disk_write_requests_total", "DISKWRIOPS", plain),
)
"""Family, MONITOR key (reference §2.3), converter."""

_STATES: Final = (
    ("opennebula_vm_state", 2),
    ("opennebula_vm_lcm_state", 3),
    ("opennebula_vm_host_id", 4),
)
"""Family and row index: OpenNebula's label set (``one_vm_id`` only)."""

Row = tuple[VmOwner, dict[str, Any], Any, Any, Any, Any]
"""A VM as read once: labels, monitoring, state, lcm_state, host_id, last_poll."""


def _rows(vms: Sequence[Vm], labels: Labels) -> tuple[list[Row], int]:
    """Every readable VM's row, and the count of unreadable VMs."""
    rows: list[Row] = []
    bad = 0
    for vm in vms:
        try:
            mon = vm.monitoring
            if not isinstance(mon, dict):
                raise TypeError("monitoring is not a template")
            poll: float | None = vm.last_poll
            if not (isinstance(poll, int | float) and poll > 0):
                poll = None
            rows.append((labels.vm(vm), mon, vm.state, vm.lcm_state, vm.host_id, poll))
        except Exception:  # state changing under us, or an object of a shape nobody expected
            bad += 1
    return rows, bad


def emit(sink: Sink, vms: Sequence[Vm], labels: Labels) -> None:
    """Every ``opennebula_vm_*`` and ``opennebula_libvirt_*`` family, a column at a time."""
    line(sink.out("opennebula_vm_total"), "", len(vms))
    rows, skipped = _rows(vms, labels)
    only = [row[0].vm_only for row in rows]
    tags = [row[0].braces for row in rows]
    for name, index in _STATES:
        column(sink, name, only, [row[index] for row in rows], plain)
    column(sink, "opennebula_vm_info", [row[0].info for row in rows], [1] * len(rows), plain)
    polls = [row[5] for row in rows]
    column(sink, "opennebula_vm_last_poll_timestamp_seconds", tags, polls, timestamp)
    mons = [row[1] for row in rows]
    for name, key, conv in MONITOR + libvirt.DOMAIN:
        column(sink, name, tags, list(map(dict.get, mons, repeat(key))), conv)
    sink.skipped += skipped
    libvirt.emit(sink, [row[0] for row in rows], mons)
