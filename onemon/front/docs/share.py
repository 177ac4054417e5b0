"""HOST_SHARE from a host's SYSTEM_HOST template and its VMs (reference §2.1, host.xsd)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from onemon.collector.model import Host, HostState, Vm, VmState
from onemon.front.docs.xml import bare, cdata_element, element, integral, scalar_text
from onemon.wire.model import Template, values

MOVED_TO_SHARE = ("DS", "PCI", "CORE", "HUGEPAGE", "MEMORY_NODE")
"""SYSTEM_HOST attributes oned moves from the template into HOST_SHARE."""

PCI_FIELDS = (
    ("ADDRESS", True), ("BUS", True), ("CLASS", True), ("CLASS_NAME", True), ("DEVICE", True),
    ("DEVICE_NAME", True), ("DOMAIN", True), ("FUNCTION", True), ("IFNAME", True),
    ("NUMA_NODE", True), ("PROFILES", False), ("SHORT_ADDRESS", True), ("SLOT", True),
    ("SRIOV", True), ("SRIOV_NUM", False), ("TYPE", True), ("UUID", False), ("VENDOR", True),
    ("VENDOR_NAME", True),
)  # fmt: skip
"""host.xsd's PCI children in order, and whether the schema requires them (VMID comes last)."""

DS_FIELDS = ("FREE_MB", "ID", "TOTAL_MB", "USED_MB")
DS_OPTIONAL = ("REPLICA_CACHE", "REPLICA_CACHE_SIZE", "REPLICA_IMAGES")


def number(template: Template, key: str) -> int:
    """An integral template figure, 0 when absent or not a number."""
    text = integral(template.get(key))
    return int(text) if text is not None else 0


def reserved(template: Template, key: str, total: int) -> int:
    """``RESERVED_CPU|MEM``: an absolute figure or a percentage of ``total``."""
    raw = scalar_text(template.get(key, "")).strip()
    if raw.endswith("%"):
        text = integral(raw[:-1])
        return total * int(text) // 100 if text is not None else 0
    text = integral(raw)
    return int(text) if text is not None else 0


def vm_allocation(vm: Vm) -> tuple[int, int]:
    """(memory KB, CPU × 100) a VM holds, from libvirt's figures (no VM templates exist yet)."""
    mon = vm.monitoring
    balloon = mon.get("BALLOON")
    memory = number(balloon, "MAXIMUM") if isinstance(balloon, dict) else 0
    cpu = 100 * len(values(mon, "VCPU"))
    return memory, cpu


def holds_capacity(vm: Vm) -> bool:
    """True for VMs counted in RUNNING_VMS (ACTIVE ones; a host with them cannot be deleted)."""
    return vm.state is VmState.ACTIVE


def host_share(host: Host, template: Template, vms: Iterable[Vm]) -> str:
    """The HOST_SHARE element."""
    active = [vm for vm in vms if holds_capacity(vm)]
    allocations = [vm_allocation(vm) for vm in active]
    offline = host.state is HostState.OFFLINE
    total_mem = 0 if offline else number(host.system, "TOTALMEMORY")
    total_cpu = 0 if offline else number(host.system, "TOTALCPU")
    max_mem = max(0, total_mem - reserved(template, "RESERVED_MEM", total_mem))
    max_cpu = max(0, total_cpu - reserved(template, "RESERVED_CPU", total_cpu))
    return element(
        "HOST_SHARE",
        bare("MEM_USAGE", sum(m for m, _ in allocations))
        + bare("CPU_USAGE", sum(c for _, c in allocations))
        + bare("TOTAL_MEM", total_mem)
        + bare("TOTAL_CPU", total_cpu)
        + bare("MAX_MEM", max_mem)
        + bare("MAX_CPU", max_cpu)
        + bare("RUNNING_VMS", len(active))
        + bare("VMS_THREAD", 1)
        + datastores(host.system)
        + pci_devices(host.system)
        + numa_nodes(host.system),
    )


def datastores(system: Template) -> str:
    """DATASTORES: the DS_LOCATION_* disk figures and one DS per monitored datastore (MB)."""
    found = sorted(
        (ds for ds in values(system, "DS") if isinstance(ds, dict)), key=lambda d: number(d, "ID")
    )
    parts = [cdata_element("DISK_USAGE", 0)]
    for ds in found:
        inner = "".join(cdata_element(k, number(ds, k)) for k in DS_FIELDS)
        for key in DS_OPTIONAL:
            if key in ds:
                value = number(ds, key) if key == "REPLICA_IMAGES" else scalar_text(ds[key])
                inner += cdata_element(key, value)
        parts.append(element("DS", inner))
    parts.append(cdata_element("FREE_DISK", number(system, "DS_LOCATION_FREE_MB")))
    parts.append(cdata_element("MAX_DISK", number(system, "DS_LOCATION_TOTAL_MB")))
    parts.append(cdata_element("USED_DISK", number(system, "DS_LOCATION_USED_MB")))
    return element("DATASTORES", "".join(parts))


def pci_devices(system: Template) -> str:
    """PCI_DEVICES: the node's PCI devices, free (VMID -1) as nothing assigns them yet."""
    parts = []
    for pci in values(system, "PCI"):
        if not isinstance(pci, dict):
            continue
        inner = "".join(
            cdata_element(key, scalar_text(pci.get(key, "")))
            for key, required in PCI_FIELDS
            if required or key in pci
        )
        parts.append(element("PCI", inner + cdata_element("VMID", -1)))
    return element("PCI_DEVICES", "".join(parts))


def numa_nodes(system: Template) -> str:
    """NUMA_NODES from CORE, HUGEPAGE and MEMORY_NODE vectors, grouped by NODE_ID."""
    nodes: dict[int, dict[str, Any]] = {}

    def node(vec: dict[str, Any]) -> dict[str, Any]:
        """The parts gathered so far for the vector's NUMA node."""
        return nodes.setdefault(
            number(vec, "NODE_ID"), {"CORE": [], "HUGEPAGE": [], "MEMORY": None}
        )

    for vec in _vectors(system, "CORE"):
        node(vec)["CORE"].append(vec)
    for vec in _vectors(system, "HUGEPAGE"):
        node(vec)["HUGEPAGE"].append(vec)
    for vec in _vectors(system, "MEMORY_NODE"):
        node(vec)["MEMORY"] = vec
    parts = []
    for node_id in sorted(nodes):
        found = nodes[node_id]
        inner = "".join(_core(vec) for vec in sorted(found["CORE"], key=lambda v: number(v, "ID")))
        inner += "".join(
            element("HUGEPAGE", cdata_element("PAGES", number(v, "PAGES"))
                    + cdata_element("SIZE", number(v, "SIZE")) + cdata_element("USAGE", 0))
            for v in sorted(found["HUGEPAGE"], key=lambda v: number(v, "SIZE"))
        )  # fmt: skip
        memory = found["MEMORY"] or {}
        inner += element(
            "MEMORY",
            cdata_element("DISTANCE", scalar_text(memory.get("DISTANCE", node_id)))
            + cdata_element("TOTAL", number(memory, "TOTAL"))
            + cdata_element("USAGE", 0),
        )
        parts.append(element("NODE", inner + cdata_element("NODE_ID", node_id)))
    return element("NUMA_NODES", "".join(parts))


def _core(vec: dict[str, Any]) -> str:
    """One CORE: its CPUs as ``cpu:vm`` pairs (``-1`` = free), as oned's HostShareNode."""
    cpus = [c.strip() for c in scalar_text(vec.get("CPUS", "")).split(",") if c.strip()]
    return element(
        "CORE",
        cdata_element("CPUS", ",".join(f"{cpu}:-1" for cpu in cpus))
        + cdata_element("DEDICATED", "NO")
        + cdata_element("FREE", len(cpus))
        + cdata_element("ID", number(vec, "ID")),
    )


def _vectors(system: Template, name: str) -> list[dict[str, Any]]:
    return [v for v in values(system, name) if isinstance(v, dict)]
