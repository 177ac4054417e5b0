"""Monitoring records from the store's rows, and the ``seconds`` argument of pool monitoring."""

from __future__ import annotations

import enum
import time
from typing import Any

from onemon.collector.model import Host, Vm
from onemon.collector.store import Sample


class Window(enum.Enum):
    """What a pool monitoring call selects besides a time window."""

    LATEST = "latest"
    NOTHING = "nothing"


def window(seconds: int) -> float | Window:
    """oned's ``seconds``: 0 latest per object, -1 all, N > 0 the last N s, other negatives none."""
    if seconds == 0:
        return Window.LATEST
    if seconds == -1:
        return 0.0
    if seconds < 0:
        return Window.NOTHING
    return time.time() - seconds


def host_current(host: Host) -> Sample | None:
    """The host's latest figures as its row holds them (what its latest history row says)."""
    if host.last_monitored <= 0:
        return None
    cap = host.capacity
    sample: dict[str, Any] = {
        "FREE_CPU": cap.free_cpu, "USED_CPU": cap.used_cpu, "FREE_MEMORY": cap.free_memory,
        "USED_MEMORY": cap.used_memory, "NETRX": cap.netrx, "NETTX": cap.nettx,
    }  # fmt: skip
    if cap.numa:
        sample["NUMA_NODE"] = cap.numa
    return host.last_monitored, sample


def vm_current(vm: Vm) -> Sample | None:
    """The VM's merged MONITOR as its row holds it (what its latest history row says)."""
    return (vm.last_poll, vm.monitoring) if vm.last_poll > 0 else None
