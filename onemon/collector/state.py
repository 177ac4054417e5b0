"""The cloud's state and OpenNebula's rules for what each message does (reference §1.6, §2, §5.3).

Where OpenNebula's users hit known pain (reference §7) the rules do better, and say so:

- a host's VMs put in UNKNOWN by a host ERROR come back with the next report that shows them
  (a MONITOR_VM with a libvirt state, or any STATE_VM entry), not only with a state *change*
  (issue 5121);
- a report of ``MISSING_STATE=UNKNOWN`` (the agent could not reach libvirt) never powers VMs off
  (issues 5564, 5708);
- a re-enabled host whose system template is already known goes MONITORED with its next beacon
  instead of waiting up to SYSTEM_HOST's 600 s period in INIT (issue 5558).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from onemon.collector.events import Event, HostStateChanged, VmStateChanged, ZombiesChanged
from onemon.collector.model import Host, HostState, LcmState, Vm, VmReport, VmState
from onemon.wire.model import Message, MessageType, Template, first, values

LIBVIRT_RUNNING_STATES = frozenset({1, 2})  # running, blocked
REMOVED_ON_SYSTEM = ("VM", "VM_POLL")
HOST_TYPES = frozenset({MessageType.BEACON_HOST, MessageType.MONITOR_HOST})


class RejectedMessage(Exception):
    """A message the state refuses (unknown or offline host); ``reason`` is counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Outcome:
    """What applying one message changed, for the store and the event subscribers."""

    hosts: set[int] = field(default_factory=set)
    vms: set[int] = field(default_factory=set)
    host_history: list[tuple[int, float]] = field(default_factory=list)
    vm_history: list[tuple[int, float]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class StatePolicy:
    """Choices the collector's configuration makes about the rules."""

    auto_register_hosts: bool = False
    auto_register_vms: bool = True
    host_interval: float = 180.0
    """Silence after which a host goes to ERROR (MONITORING_INTERVAL_HOST)."""


class CloudState:
    """Hosts and VMs, changed only by :meth:`apply`, :meth:`check_silence` and host admin calls."""

    def __init__(self, policy: StatePolicy | None = None) -> None:
        self.policy = policy or StatePolicy()
        self.hosts: dict[int, Host] = {}
        self.vms: dict[int, Vm] = {}
        self.vms_by_host: dict[int, set[int]] = {}
        self.version = 0
        """Bumped on every change, so renderers know when to re-render."""

    # --- loading and admin ------------------------------------------------------------------

    def load(self, hosts: list[Host], vms: list[Vm]) -> None:
        """Restore persisted state at start-up."""
        for host in hosts:
            self.hosts[host.id] = host
            self.vms_by_host.setdefault(host.id, set())
        for vm in vms:
            self.vms[vm.id] = vm
            self.vms_by_host.setdefault(vm.host_id, set()).add(vm.id)
        self.version += 1

    def add_host(self, host_id: int, name: str, im_mad: str = "kvm") -> Host:
        """Register a host (``onemon host create``); it starts in INIT."""
        host = self.hosts.get(host_id)
        if host is None:
            host = Host(id=host_id, name=name, im_mad=im_mad, vm_mad=im_mad)
            self.hosts[host_id] = host
            self.vms_by_host.setdefault(host_id, set())
            self.version += 1
        return host

    def remove_host(self, host_id: int) -> list[int]:
        """Delete a host and its VMs; returns the removed VM ids."""
        self.hosts.pop(host_id, None)
        removed = sorted(self.vms_by_host.pop(host_id, set()))
        for vm_id in removed:
            self.vms.pop(vm_id, None)
        self.version += 1
        return removed

    def set_host_state(self, host: Host, state: HostState, now: float, error: str = "") -> Event:
        """Move a host to ``state`` and return the event."""
        old = host.state
        host.prev_state, host.state = old, state
        host.error = error if state is HostState.ERROR else ""
        self.version += 1
        return HostStateChanged(now, host.id, old, state, host.error)

    # --- messages ---------------------------------------------------------------------------

    def host_for(self, msg: Message, now: float) -> Host:
        """The registered host a message is from, or :class:`RejectedMessage`."""
        host = self.hosts.get(msg.host_id)
        if host is None:
            if not self.policy.auto_register_hosts or msg.host_id < 0:
                raise RejectedMessage("unknown_host")
            name = str(first(msg.payload, "HOSTNAME", f"host-{msg.host_id}"))
            host = self.add_host(msg.host_id, name)
        if host.state is HostState.OFFLINE:
            raise RejectedMessage("host_offline")
        return host

    def apply(self, msg: Message, now: float) -> Outcome:
        """Apply one accepted message at receive time ``now``."""
        host = self.host_for(msg, now)
        out = Outcome()  # last_seen alone is persisted in bulk by the manager timer
        host.last_seen = now
        if msg.ok and host.state is HostState.INIT and host.system and msg.type in HOST_TYPES:
            # re-enabled host already known (better than issue 5558: no wait for SYSTEM_HOST)
            out.events.append(self.set_host_state(host, HostState.MONITORED, now))
            out.hosts.add(host.id)
        if not msg.ok:
            self._apply_failure(host, msg, now, out)
        elif msg.type is MessageType.MONITOR_HOST:
            self._apply_monitor_host(host, msg.payload, now, out)
        elif msg.type is MessageType.SYSTEM_HOST:
            self._apply_system_host(host, msg.payload, now, out)
        elif msg.type is MessageType.MONITOR_VM:
            self._apply_monitor_vm(host, msg.payload, now, out)
        elif msg.type is MessageType.STATE_VM:
            self._apply_state_vm(host, msg.payload, now, out)
        elif msg.type is MessageType.EXEC_VM:
            self._apply_exec_vm(host, msg.payload, out)
        self.version += 1
        return out

    def check_silence(self, now: float) -> Outcome:
        """Put hosts silent for longer than the host interval in ERROR (reference §5.3)."""
        out = Outcome()
        limit = now - self.policy.host_interval
        for host in self.hosts.values():
            if host.state in (HostState.MONITORED, HostState.INIT) and host.last_seen < limit:
                if host.last_seen == 0 and host.state is HostState.INIT:
                    host.last_seen = now  # a new host gets one interval to report
                    continue
                silent = int(now - host.last_seen)
                self._host_error(host, f"No monitoring message for {silent} s", now, out)
        return out

    # --- per type ---------------------------------------------------------------------------

    def _apply_failure(self, host: Host, msg: Message, now: float, out: Outcome) -> None:
        """FAILURE: host types put the host in ERROR; VM types are only logged (§1.6)."""
        if msg.type in (MessageType.BEACON_HOST, MessageType.MONITOR_HOST, MessageType.SYSTEM_HOST):
            self._host_error(host, msg.error or f"{msg.type.name} failed", now, out)

    def _host_error(self, host: Host, error: str, now: float, out: Outcome) -> None:
        """Host → ERROR, and every VM on it → UNKNOWN (InformationManager::_host_state)."""
        out.hosts.add(host.id)
        if host.state in (HostState.DISABLED, HostState.OFFLINE):
            host.error = error
            return
        if host.state is not HostState.ERROR or host.error != error:
            out.events.append(self.set_host_state(host, HostState.ERROR, now, error))
        for vm_id in self.vms_by_host.get(host.id, ()):
            vm = self.vms[vm_id]
            if vm.report in (VmReport.RUNNING, VmReport.SUSPENDED, VmReport.FAILURE):
                self._set_vm_report(vm, VmReport.UNKNOWN, now, "host_error", out)

    def _apply_monitor_host(self, host: Host, payload: Template, now: float, out: Outcome) -> None:
        """Keep CAPACITY, SYSTEM and NUMA figures as onemonitord does (§2.2)."""
        cap = host.capacity
        cap.free_cpu = _num(payload.get("FREECPU"), cap.free_cpu)
        cap.used_cpu = _num(payload.get("USEDCPU"), cap.used_cpu)
        cap.free_memory = int(_num(payload.get("FREEMEMORY"), cap.free_memory))
        cap.used_memory = int(_num(payload.get("USEDMEMORY"), cap.used_memory))
        cap.netrx = int(_num(payload.get("NETRX"), cap.netrx))
        cap.nettx = int(_num(payload.get("NETTX"), cap.nettx))
        cap.cpu_speed = int(_num(payload.get("CPUSPEED"), cap.cpu_speed))
        if "HUGEPAGE" in payload or "MEMORY_NODE" in payload:
            cap.numa = _numa_usage(payload)
        agent = payload.get("AGENT")
        if isinstance(agent, dict):
            host.agent = agent
        host.last_monitored = now
        out.hosts.add(host.id)
        out.host_history.append((host.id, now))

    def _apply_system_host(self, host: Host, payload: Template, now: float, out: Outcome) -> None:
        """Merge the host template; the only message that makes a host MONITORED (§2.1)."""
        merged = {k: v for k, v in host.system.items() if k not in REMOVED_ON_SYSTEM}
        merged.update(payload)
        host.system = merged
        host.capacity.cpu_speed = int(_num(payload.get("CPUSPEED"), host.capacity.cpu_speed))
        out.hosts.add(host.id)
        host.wilds = [vm for vm in values(payload, "VM") if _int(vm, "ID", 0) < 0]
        if host.state not in (HostState.DISABLED, HostState.OFFLINE, HostState.MONITORED):
            out.events.append(self.set_host_state(host, HostState.MONITORED, now))
        elif host.state is HostState.MONITORED:
            host.error = ""

    def _apply_monitor_vm(self, host: Host, payload: Template, now: float, out: Outcome) -> None:
        """Merge each VM's MONITOR over its previous record (§2.3)."""
        merged: dict[int, Template] = {}
        deploy: dict[int, str] = {}
        for entry in values(payload, "VM"):
            if not isinstance(entry, dict):
                continue
            vm_id = entry.get("ID", -1)
            if type(vm_id) is not int:
                vm_id = _int(entry, "ID", -1)
            monitor = entry.get("MONITOR")
            if vm_id < 0 or not isinstance(monitor, dict):
                continue
            previous = merged.get(vm_id)  # a VM listed twice: its MONITORs merged, in order
            merged[vm_id] = monitor if previous is None else {**previous, **monitor}
            deploy_id = entry.get("DEPLOY_ID")
            if deploy_id:
                deploy[vm_id] = deploy_id if type(deploy_id) is str else str(deploy_id)
        vms_get = self.vms.get
        changed, history = out.vms, out.vm_history
        for vm_id, monitor in merged.items():
            vm = vms_get(vm_id)
            if vm is None or vm.host_id != host.id:
                vm = self._vm_for(host, vm_id, now, out)
                if vm is None:
                    continue
            vm.monitoring = {**vm.monitoring, **monitor}  # a new object: see StoreWriter
            if deploy:
                vm.deploy_id = deploy.get(vm_id, vm.deploy_id)
            vm.last_poll = now
            changed.add(vm_id)
            history.append((vm_id, now))
            if vm.report is VmReport.UNKNOWN and _is_running_state(monitor.get("STATE")):
                self._set_vm_report(vm, VmReport.RUNNING, now, "monitor_vm", out)

    def _apply_state_vm(self, host: Host, payload: Template, now: float, out: Outcome) -> None:
        """Apply reported states; on a full sync, missing VMs take MISSING_STATE (§2.4)."""
        reported: set[int] = set()
        for entry in values(payload, "VM"):
            if not isinstance(entry, dict):  # text where a vector belongs: nothing to apply
                continue
            vm_id = _int(entry, "ID", -1)
            try:
                report = VmReport(str(entry.get("STATE", "")).upper())
            except ValueError:
                continue
            if vm_id < 0:
                continue
            reported.add(vm_id)
            vm = self._vm_for(host, vm_id, now, out)
            if vm is None:
                continue
            if entry.get("DEPLOY_ID") and report is VmReport.RUNNING:
                vm.deploy_id = str(entry["DEPLOY_ID"])
            if vm.report is not report:
                self._set_vm_report(vm, report, now, "state_vm", out)
        if str(payload.get("SYNC_STATE", "")).lower() == "yes":
            self._apply_sync(host, payload, reported, now, out)

    def _apply_sync(
        self, host: Host, payload: Template, reported: set[int], now: float, out: Outcome
    ) -> None:
        """Full report: VMs of this host not listed take MISSING_STATE; record zombies."""
        missing_state = str(payload.get("MISSING_STATE", "")).upper()
        if missing_state in (VmReport.POWEROFF, VmReport.UNKNOWN):
            target = VmReport(missing_state)
            for vm_id in sorted(self.vms_by_host.get(host.id, set()) - reported):
                vm = self.vms[vm_id]
                active = vm.report in (VmReport.RUNNING, VmReport.UNKNOWN, VmReport.FAILURE)
                if active and vm.report is not target:
                    self._set_vm_report(vm, target, now, "sync_missing", out)
        zombies = sorted(reported - self.vms_by_host.get(host.id, set()))
        if zombies != host.zombies:
            host.zombies = zombies
            out.hosts.add(host.id)
            out.events.append(ZombiesChanged(now, host.id, tuple(zombies)))

    def _apply_exec_vm(self, host: Host, payload: Template, out: Outcome) -> None:
        """Store guest command results on the VM (§2.5)."""
        for entry in values(payload, "VM"):
            vm = self.vms.get(_int(entry, "ID", -1))
            if vm is not None and vm.host_id == host.id and isinstance(entry, dict):
                vm.exec_result = dict(entry)
                out.vms.add(vm.id)

    # --- VMs --------------------------------------------------------------------------------

    def _vm_for(self, host: Host, vm_id: int, now: float, out: Outcome) -> Vm | None:
        """The VM a host reports, created if new; None when it belongs to another host."""
        vm = self.vms.get(vm_id)
        if vm is None:
            if not self.policy.auto_register_vms:
                return None
            vm = Vm(id=vm_id, host_id=host.id, state=VmState.ACTIVE, lcm_state=LcmState.UNKNOWN)
            self.vms[vm_id] = vm
            self.vms_by_host.setdefault(host.id, set()).add(vm_id)
            out.vms.add(vm_id)
            return vm
        if vm.host_id != host.id:
            if vm.report is VmReport.RUNNING and vm.host_id in self.hosts:
                return None  # still running on its own host: a zombie here
            self.vms_by_host.get(vm.host_id, set()).discard(vm_id)
            vm.host_id = host.id  # it moved (migration or re-deploy)
            self.vms_by_host.setdefault(host.id, set()).add(vm_id)
            out.vms.add(vm_id)
        return vm

    def _set_vm_report(
        self, vm: Vm, report: VmReport, now: float, source: str, out: Outcome
    ) -> None:
        old = vm.report
        vm.set_report(report)
        vm.state_changed = now
        out.vms.add(vm.id)
        out.events.append(VmStateChanged(now, vm.id, vm.host_id, old, report, source))


def _num(value: Any, default: float) -> float:
    """A numeric template value (text or number), or ``default``."""
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _int(entry: Any, key: str, default: int) -> int:
    if not isinstance(entry, dict):
        return default
    try:
        return int(entry.get(key, default))
    except (TypeError, ValueError):
        return default


def _is_running_state(value: Any) -> bool:
    if value is None:
        return False
    try:
        return int(value) in LIBVIRT_RUNNING_STATES
    except (TypeError, ValueError):
        return False


_EXACT = 2**53
"""Integers a float holds exactly: ``int(float(n))`` is ``n`` itself up to here."""


def _whole(value: Any) -> int:
    """``int(_num(value, 0))``, without the float round trip for a plain integer."""
    if type(value) is int and -_EXACT <= value <= _EXACT:
        return value
    return int(_num(value, 0))


def _node_id(vec: Any) -> int:
    """``_int(vec, "NODE_ID", 0)``."""
    node_id = vec.get("NODE_ID", 0) if isinstance(vec, dict) else 0
    return node_id if type(node_id) is int else _int(vec, "NODE_ID", 0)


def _numa_usage(payload: Template) -> list[dict[str, Any]]:
    """Group HUGEPAGE and MEMORY_NODE vectors by NODE_ID (§2.2)."""
    nodes: dict[int, dict[str, Any]] = {}
    for vec in (v for v in values(payload, "MEMORY_NODE") if isinstance(v, dict)):
        node_id = _node_id(vec)
        node = nodes.get(node_id)
        if node is None:
            node = nodes[node_id] = {"HUGEPAGE": []}
        node["MEMORY"] = {"FREE": _whole(vec.get("FREE")), "USED": _whole(vec.get("USED"))}
    for vec in (v for v in values(payload, "HUGEPAGE") if isinstance(v, dict)):
        node_id = _node_id(vec)
        node = nodes.get(node_id)
        if node is None:
            node = nodes[node_id] = {"HUGEPAGE": []}
        node["HUGEPAGE"].append({"SIZE": _whole(vec.get("SIZE")), "FREE": _whole(vec.get("FREE"))})
    return [{"NODE_ID": node_id, **nodes[node_id]} for node_id in sorted(nodes)]
