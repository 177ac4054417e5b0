"""VM (full body) and VM_POOL (short bodies) documents (vm.xsd, vm_pool.xsd, reference §3.2-3.3).

The collector knows VMs only from their hosts' reports: owner, name and template are what
oned would show for an imported VM of oneadmin (``one-<id>``), CPU and memory come from
libvirt's vCPU count and balloon maximum.
"""

from __future__ import annotations

from onemon.collector.model import Host, Vm
from onemon.collector.store import Sample
from onemon.front.docs.monitoring import VM_KEYS, vm_record
from onemon.front.docs.share import vm_allocation
from onemon.front.docs.xml import bare, cdata_element, element, escape, template

OWNER = (0, 0, "oneadmin", "oneadmin")
"""UID, GID, UNAME, GNAME."""
PERMISSIONS = (("OWNER_U", 1), ("OWNER_M", 1), ("OWNER_A", 0), ("GROUP_U", 0), ("GROUP_M", 0),
               ("GROUP_A", 0), ("OTHER_U", 0), ("OTHER_M", 0), ("OTHER_A", 0))  # fmt: skip
SHORT_MONITORING = ("CPU", "MEMORY", "STATE")
"""What a pool body's MONITORING carries (``VirtualMachine::to_xml_short``)."""
TM_MAD = "ssh"


def vm_name(vm: Vm) -> str:
    """The VM's name: the libvirt domain name OpenNebula gives it."""
    return f"one-{vm.id}"


def start_time(vm: Vm) -> int:
    """STIME: the earliest time the monitoring knows of (state change or poll)."""
    known = [t for t in (vm.state_changed, vm.last_poll) if t > 0]
    return int(min(known)) if known else 0


def _head(vm: Vm) -> str:
    uid, gid, uname, gname = OWNER
    return (
        bare("ID", vm.id) + bare("UID", uid) + bare("GID", gid) + bare("UNAME", uname)
        + bare("GNAME", gname) + bare("NAME", vm_name(vm))
    )  # fmt: skip


def _template_values(vm: Vm) -> dict[str, str]:
    memory_kb, cpu = vm_allocation(vm)
    out = {}
    if cpu:
        out["CPU"] = str(cpu // 100)
        out["VCPU"] = str(cpu // 100)
    if memory_kb:
        out["MEMORY"] = str(memory_kb // 1024)
    return out


def vm_xml(vm: Vm, host: Host | None, host_name: str, monitoring: Sample | None) -> str:
    """The full VM body; ``monitoring`` is the latest record (None: empty MONITORING)."""
    state, lcm = int(vm.state), int(vm.lcm_state)
    record = vm_record(vm.id, *monitoring, VM_KEYS) if monitoring else element("MONITORING")
    attributes = {**_template_values(vm), "TM_MAD_SYSTEM": TM_MAD, "VMID": str(vm.id)}
    return element(
        "VM",
        _head(vm)
        + element("PERMISSIONS", "".join(bare(k, v) for k, v in PERMISSIONS))
        + bare("LAST_POLL", int(vm.last_poll))
        + bare("STATE", state) + bare("LCM_STATE", lcm)
        + bare("PREV_STATE", state) + bare("PREV_LCM_STATE", lcm)
        + bare("RESCHED", 0) + bare("STIME", start_time(vm)) + bare("ETIME", 0)
        + bare("DEPLOY_ID", vm.deploy_id)
        + record
        + element("SCHED_ACTIONS")
        + template("TEMPLATE", attributes)
        + element("USER_TEMPLATE")
        + element("HISTORY_RECORDS", _history_full(vm, host, host_name))
        + element("BACKUPS", element("BACKUP_CONFIG") + element("BACKUP_IDS")),
    )  # fmt: skip


def _history_full(vm: Vm, host: Host | None, host_name: str) -> str:
    """One HISTORY record placing the VM on its host (none when the host is unknown)."""
    if host is None:
        return ""
    stime = start_time(vm)
    return element(
        "HISTORY",
        bare("OID", vm.id) + bare("SEQ", 0) + bare("HOSTNAME", host_name)
        + bare("HID", host.id) + bare("CID", 0) + bare("STIME", stime) + bare("ETIME", 0)
        + bare("VM_MAD", host.vm_mad) + bare("TM_MAD", TM_MAD) + bare("DS_ID", 0)
        + bare("PLAN_ID", -1) + bare("ACTION_ID", -1)
        + "".join(bare(k, 0) for k in ("PSTIME", "PETIME"))
        + bare("RSTIME", stime)
        + "".join(bare(k, 0) for k in ("RETIME", "ESTIME", "EETIME"))
        + bare("ACTION", 0) + bare("UID", -1) + bare("GID", -1) + bare("REQUEST_ID", -1),
    )  # fmt: skip


def vm_short_xml(vm: Vm, host: Host | None, host_name: str) -> str:
    """A pool body: short template, the VM's latest CPU/MEMORY/STATE, its last history."""
    mon = vm.monitoring
    monitoring = "".join(
        cdata_element(k, mon[k])
        for k in SHORT_MONITORING
        if k in mon and not isinstance(mon[k], dict | list)
    )
    values = _template_values(vm)
    short_template = "".join(
        element(k, escape(values.get(k, ""))) for k in ("CPU", "MEMORY", "VCPU")
    )
    history = ""
    if host is not None:
        history = element(
            "HISTORY",
            bare("OID", vm.id) + bare("SEQ", 0) + cdata_element("HOSTNAME", host_name)
            + bare("HID", host.id) + bare("CID", 0) + bare("DS_ID", 0)
            + cdata_element("VM_MAD", host.vm_mad) + cdata_element("TM_MAD", TM_MAD)
            + cdata_element("ACTION", 0),
        )  # fmt: skip
    return element(
        "VM",
        _head(vm)
        + bare("LAST_POLL", int(vm.last_poll))
        + bare("STATE", int(vm.state)) + bare("LCM_STATE", int(vm.lcm_state))
        + bare("RESCHED", 0) + bare("STIME", start_time(vm)) + bare("ETIME", 0)
        + bare("DEPLOY_ID", vm.deploy_id)
        + element("TEMPLATE", short_template)
        + element("MONITORING", monitoring)
        + element("USER_TEMPLATE")
        + element("HISTORY_RECORDS", history),
    )  # fmt: skip


def vm_pool_xml(bodies: list[str]) -> str:
    """VM_POOL around rendered VM elements."""
    return element("VM_POOL", "".join(bodies))
