"""The cloud's state as the collector holds it: hosts, VMs and their latest monitoring."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from onemon.wire.model import Template


class HostState(enum.IntEnum):
    """OpenNebula host states (include/Host.h)."""

    INIT = 0
    MONITORED = 2
    ERROR = 3
    DISABLED = 4
    OFFLINE = 8


class VmReport(enum.StrEnum):
    """The state a node reports for a VM (STATE_VM ``STATE=``, reference §2.4)."""

    RUNNING = "RUNNING"
    POWEROFF = "POWEROFF"
    SUSPENDED = "SUSPENDED"
    FAILURE = "FAILURE"
    UNKNOWN = "UNKNOWN"


class VmState(enum.IntEnum):
    """OpenNebula VM states the monitoring can lead to (include/VirtualMachine.h)."""

    INIT = 0
    PENDING = 1
    ACTIVE = 3
    SUSPENDED = 5
    DONE = 6
    POWEROFF = 8


class LcmState(enum.IntEnum):
    """OpenNebula LCM states the monitoring can lead to."""

    LCM_INIT = 0
    RUNNING = 3
    UNKNOWN = 16


REPORT_TO_STATES: dict[VmReport, tuple[VmState, LcmState]] = {
    VmReport.RUNNING: (VmState.ACTIVE, LcmState.RUNNING),
    VmReport.POWEROFF: (VmState.POWEROFF, LcmState.LCM_INIT),
    VmReport.SUSPENDED: (VmState.SUSPENDED, LcmState.LCM_INIT),
    VmReport.FAILURE: (VmState.ACTIVE, LcmState.UNKNOWN),  # monitor_done
    VmReport.UNKNOWN: (VmState.ACTIVE, LcmState.UNKNOWN),
}
"""How OpenNebula's LCM turns a reported state into (state, lcm_state) (reference §2.4 table)."""


@dataclass(slots=True)
class HostCapacity:
    """MONITOR_HOST figures as onemonitord keeps them (reference §2.2); KB and percent×cores."""

    free_cpu: float = 0.0
    used_cpu: float = 0.0
    free_memory: int = 0
    used_memory: int = 0
    netrx: int = 0
    nettx: int = 0
    cpu_speed: int = 0
    numa: list[dict[str, Any]] = field(default_factory=list)
    """Per NUMA node: ``{"NODE_ID", "MEMORY": {"FREE","USED"}, "HUGEPAGE": [{"SIZE","FREE"}]}``."""


@dataclass(slots=True)
class Host:
    """One registered hypervisor host."""

    id: int
    name: str
    state: HostState = HostState.INIT
    prev_state: HostState = HostState.INIT
    error: str = ""
    im_mad: str = "kvm"
    vm_mad: str = "kvm"
    cluster_id: int = 0
    last_seen: float = 0.0
    """Wall-clock time of the last message accepted from this host (receive time)."""
    last_monitored: float = 0.0
    """Receive time of the last MONITOR_HOST (what onehost show calls LAST_MON_TIME)."""
    system: Template = field(default_factory=dict)
    """The merged SYSTEM_HOST template (host TEMPLATE in OpenNebula)."""
    capacity: HostCapacity = field(default_factory=HostCapacity)
    wilds: list[dict[str, Any]] = field(default_factory=list)
    zombies: list[int] = field(default_factory=list)
    agent: Template = field(default_factory=dict)
    """The agent's self-metrics as last reported."""


@dataclass(slots=True)
class Vm:
    """One VM known to the collector, from its host's reports."""

    id: int
    host_id: int
    deploy_id: str = ""
    report: VmReport = VmReport.UNKNOWN
    state: VmState = VmState.ACTIVE
    lcm_state: LcmState = LcmState.UNKNOWN
    last_poll: float = 0.0
    """Receive time of the last MONITOR_VM about this VM."""
    state_changed: float = 0.0
    monitoring: Template = field(default_factory=dict)
    """The merged MONITOR template (reference §2.3): OpenNebula keys plus detail vectors."""
    exec_result: Template = field(default_factory=dict)

    def set_report(self, report: VmReport) -> None:
        """Apply a reported state and derive OpenNebula's (state, lcm_state)."""
        self.report = report
        self.state, self.lcm_state = REPORT_TO_STATES[report]
