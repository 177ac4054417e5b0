"""OpenNebula VM states from libvirt and LXC states, as OpenNebula's probes map them (ref §2.4).

OpenNebula's KVM probe maps the *strings* virsh prints (``virsh dominfo``, ``domstate --reason``);
libvirt's bulk stats give numbers. The tables below turn the numbers back into virsh's strings
and then apply OpenNebula's ``STATE_MAP`` (``lib/kvm.rb``) and ``REASONS_SKIP_IO`` unchanged, so
the mapping stays auditable line by line against the Ruby code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

VIR_DOMAIN_PAUSED: Final = 3

LIBVIRT_STATE_NAMES: Final[tuple[str, ...]] = (
    "no state", "running", "idle", "paused", "in shutdown", "shut off", "crashed", "pmsuspended",
)  # fmt: skip
"""virsh's names of ``virDomainState`` values (tools/virsh-domain-monitor.c), indexed by value."""

PAUSED_REASON_NAMES: Final[tuple[str, ...]] = (
    "unknown", "user", "migrating", "saving", "dumping", "I/O error", "watchdog", "from snapshot",
    "shutting down", "creating snapshot", "crashed", "starting up", "post-copy",
    "post-copy failed", "api error",
)  # fmt: skip
"""virsh's names of ``virDomainPausedReason`` values, indexed by value."""

KVM_STATE_MAP: Final[Mapping[str, str]] = {
    "running": "RUNNING",
    "idle": "RUNNING",
    "blocked": "RUNNING",
    "in shutdown": "RUNNING",
    "shutdown": "RUNNING",
    "dying": "RUNNING",
    "crashed": "FAILURE",
    "pmsuspended": "SUSPENDED",
}
"""OpenNebula ``STATE_MAP`` for every libvirt state but ``paused``; anything else is UNKNOWN."""

KVM_PAUSED_MAP: Final[Mapping[str, str]] = {
    "migrating": "RUNNING",
    "saving": "RUNNING",
    "starting up": "RUNNING",
    "booted": "RUNNING",
    "I/O error": "FAILURE",
    "watchdog": "FAILURE",
    "crashed": "FAILURE",
    "post-copy failed": "FAILURE",
    "unknown": "FAILURE",
    "user": "SUSPENDED",
}
"""OpenNebula ``STATE_MAP['paused']`` by pause reason; anything else is UNKNOWN."""

REASONS_SKIP_IO: Final = frozenset({"migrating", "starting up", "saving"})
"""Pause reasons for which OpenNebula reports the I/O counters as 0."""

LXC_STATE_MAP: Final[Mapping[str, str]] = {
    "STOPPED": "POWEROFF",
    "STARTING": "RUNNING",
    "RUNNING": "RUNNING",
    "ABORTING": "FAILURE",
    "STOPPING": "RUNNING",
}
"""OpenNebula's LXC ``STATE_MAP`` (``lib/lxc.rb``); anything else (e.g. FROZEN) is UNKNOWN."""


@dataclass(frozen=True, slots=True)
class VmState:
    """One VM's state as STATE_VM reports it: ``VM=[ID, DEPLOY_ID, STATE]``."""

    vm_id: int
    deploy_id: str
    name: str
    state: str


def libvirt_state_name(state: int) -> str:
    """virsh's name for a ``virDomainState`` value (``unknown`` when out of range)."""
    return LIBVIRT_STATE_NAMES[state] if 0 <= state < len(LIBVIRT_STATE_NAMES) else "unknown"


def paused_reason_name(reason: int) -> str:
    """virsh's name for a ``virDomainPausedReason`` (``missing``, as OpenNebula, when unknown)."""
    return PAUSED_REASON_NAMES[reason] if 0 <= reason < len(PAUSED_REASON_NAMES) else "missing"


def kvm_state(state: int, reason: int) -> str:
    """OpenNebula's state string for a libvirt (state, reason) pair."""
    if state == VIR_DOMAIN_PAUSED:
        return KVM_PAUSED_MAP.get(paused_reason_name(reason), "UNKNOWN")
    return KVM_STATE_MAP.get(libvirt_state_name(state), "UNKNOWN")


def kvm_skip_io(state: int, reason: int) -> bool:
    """True when OpenNebula reports a domain's net/disk counters as 0 (not RUNNING, or busy)."""
    if kvm_state(state, reason) != "RUNNING":
        return True
    return state == VIR_DOMAIN_PAUSED and paused_reason_name(reason) in REASONS_SKIP_IO


def lxc_state(state: str) -> str:
    """OpenNebula's state string for an LXC state name."""
    return LXC_STATE_MAP.get(state, "UNKNOWN")


def vm_id_of(name: str) -> int:
    """The OpenNebula VM id in a ``one-<id>`` name, or -1 for any other (wild) name."""
    if name.startswith("one-"):
        digits = name[4:]
        if digits.isdigit() and digits.isascii():
            return int(digits)
    return -1
