"""What ``onemon host|vm list|show|monitoring`` print, from the XML-RPC documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from onemon.front.cli_render import Cell, pairs, size_bytes, size_kb, table, when

HOST_STATES = {0: ("init", ""), 1: ("update", ""), 2: ("on", "green"), 3: ("err", "red"),
               4: ("dsbl", "yellow"), 5: ("retry", "red"), 6: ("init", ""),
               7: ("dsbl", "yellow"), 8: ("off", "yellow")}  # fmt: skip
HOST_STATE_NAMES = {0: "INIT", 2: "MONITORED", 3: "ERROR", 4: "DISABLED", 8: "OFFLINE"}
VM_STATES = {0: "init", 1: "pend", 2: "hold", 4: "stop", 5: "susp", 6: "done", 7: "fail",
             8: "poff", 9: "unde", 10: "clon", 11: "fail"}  # fmt: skip
LCM_STATES = {3: ("runn", "green"), 16: ("unkn", "red")}
VM_STATE_NAMES = {0: "INIT", 1: "PENDING", 3: "ACTIVE", 5: "SUSPENDED", 6: "DONE", 8: "POWEROFF"}
LCM_NAMES = {0: "LCM_INIT", 3: "RUNNING", 16: "UNKNOWN"}


def _int(node: ET.Element, path: str) -> int:
    try:
        return int(float(node.findtext(path) or 0))
    except ValueError:
        return 0


def _float(node: ET.Element, path: str) -> float:
    try:
        return float(node.findtext(path) or 0)
    except ValueError:
        return 0.0


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


def host_list(pool: ET.Element) -> str:
    """``onehost list``: allocated and real CPU/memory, state."""
    rows = []
    for host in pool.findall("HOST"):
        share = "HOST_SHARE/"
        max_cpu, max_mem = _float(host, share + "MAX_CPU"), _float(host, share + "MAX_MEM")
        used_cpu = _float(host, "MONITORING/CAPACITY/USED_CPU")
        used_mem = _float(host, "MONITORING/CAPACITY/USED_MEMORY")
        name, colour = HOST_STATES.get(_int(host, "STATE"), ("?", ""))
        rows.append([
            host.findtext("ID", ""), host.findtext("NAME", ""), host.findtext("CLUSTER", ""),
            _int(host, share + "RUNNING_VMS"),
            f"{_float(host, share + 'CPU_USAGE'):.0f} / {max_cpu:.0f} "
            f"({_percent(_float(host, share + 'CPU_USAGE'), max_cpu)})",
            f"{size_kb(_float(host, share + 'MEM_USAGE'))} / {size_kb(max_mem)} "
            f"({_percent(_float(host, share + 'MEM_USAGE'), max_mem)})",
            f"{used_cpu:.0f} / {max_cpu:.0f} ({_percent(used_cpu, max_cpu)})",
            f"{size_kb(used_mem)} / {size_kb(max_mem)} ({_percent(used_mem, max_mem)})",
            Cell(name, colour),
        ])  # fmt: skip
    header = ["ID", "NAME", "CLUSTER", "TVM", "ALLOCATED_CPU", "ALLOCATED_MEM", "REAL_CPU",
              "REAL_MEM", "STAT"]  # fmt: skip
    return table(rows, header)


def host_show(host: ET.Element) -> str:
    """``onehost show``: information, shares, datastores, monitoring, wilds, VMs."""
    share = "HOST_SHARE/"
    state = _int(host, "STATE")
    info = pairs(f"HOST {host.findtext('ID')} INFORMATION", [
        ("ID", host.findtext("ID", "")), ("NAME", host.findtext("NAME", "")),
        ("CLUSTER", host.findtext("CLUSTER", "")),
        ("STATE", HOST_STATE_NAMES.get(state, str(state))),
        ("IM_MAD", host.findtext("IM_MAD", "")), ("VM_MAD", host.findtext("VM_MAD", "")),
        ("LAST MONITORING TIME", when(_float(host, "MONITORING/TIMESTAMP"))),
    ])  # fmt: skip
    shares = pairs("HOST SHARES", [
        ("RUNNING VMS", _int(host, share + "RUNNING_VMS")),
        ("MEMORY TOTAL", size_kb(_float(host, share + "TOTAL_MEM"))),
        ("MEMORY TOTAL +/- RESERVED", size_kb(_float(host, share + "MAX_MEM"))),
        ("MEMORY USED (REAL)", size_kb(_float(host, "MONITORING/CAPACITY/USED_MEMORY"))),
        ("MEMORY USED (ALLOCATED)", size_kb(_float(host, share + "MEM_USAGE"))),
        ("CPU TOTAL", _int(host, share + "TOTAL_CPU")),
        ("CPU TOTAL +/- RESERVED", _int(host, share + "MAX_CPU")),
        ("CPU USED (REAL)", _int(host, "MONITORING/CAPACITY/USED_CPU")),
        ("CPU USED (ALLOCATED)", _int(host, share + "CPU_USAGE")),
    ])  # fmt: skip
    ds = host.find(share + "DATASTORES")
    disks = pairs("LOCAL SYSTEM DATASTORE", [
        ("TOTAL", size_kb(1024 * _float(ds, "MAX_DISK"))) if ds is not None else ("TOTAL", "-"),
        ("USED", size_kb(1024 * _float(ds, "USED_DISK"))) if ds is not None else ("USED", "-"),
        ("FREE", size_kb(1024 * _float(ds, "FREE_DISK"))) if ds is not None else ("FREE", "-"),
    ])  # fmt: skip
    template = host.find("TEMPLATE")
    attributes = [
        (child.tag, child.text or "")
        for child in (template if template is not None else [])
        if len(child) == 0
    ]
    sections = [info, shares, disks, pairs("MONITORING INFORMATION", attributes)]
    numa = host.findall(share + "NUMA_NODES/NODE")
    if numa:
        sections.append(table([[n.findtext("NODE_ID", ""), len(n.findall("CORE")),
                                size_kb(_float(n, "MEMORY/TOTAL"))] for n in numa],
                              ["NUMA NODE", "CORES", "MEMORY"]))  # fmt: skip
    wilds = template.findall("VM") if template is not None else []
    if wilds:
        sections.append(table([[w.findtext("VM_NAME", ""), w.findtext("DEPLOY_ID", "")]
                               for w in wilds], ["WILD VM", "DEPLOY_ID"]))  # fmt: skip
    vms = [v.text or "" for v in host.findall("VMS/ID")]
    sections.append(pairs("VIRTUAL MACHINES", [("IDS", ", ".join(vms) or "-")]))
    return "\n\n".join(sections)


def host_monitoring(data: ET.Element) -> str:
    """``onehost monitoring``: one line per record."""
    rows = [
        [when(_float(m, "TIMESTAMP")), _int(m, "CAPACITY/FREE_CPU"), _int(m, "CAPACITY/USED_CPU"),
         size_kb(_float(m, "CAPACITY/FREE_MEMORY")), size_kb(_float(m, "CAPACITY/USED_MEMORY")),
         size_bytes(_float(m, "SYSTEM/NETRX")), size_bytes(_float(m, "SYSTEM/NETTX"))]
        for m in data.findall("MONITORING")
    ]  # fmt: skip
    header = ["TIME", "FREE_CPU", "USED_CPU", "FREE_MEM", "USED_MEM", "NETRX", "NETTX"]
    return table(rows, header)


def vm_status(vm: ET.Element) -> Cell:
    """``onevm list``'s STAT column."""
    state, lcm = _int(vm, "STATE"), _int(vm, "LCM_STATE")
    if state == 3:
        name, colour = LCM_STATES.get(lcm, ("actv", ""))
        return Cell(name, colour)
    return Cell(VM_STATES.get(state, "?"), "yellow" if state == 8 else "")


def vm_list(pool: ET.Element) -> str:
    """``onevm list``."""
    rows = [
        [vm.findtext("ID", ""), vm.findtext("UNAME", ""), vm.findtext("GNAME", ""),
         vm.findtext("NAME", ""), vm_status(vm),
         f"{_float(vm, 'MONITORING/CPU'):.1f}" if vm.find("MONITORING/CPU") is not None else "-",
         size_kb(_float(vm, "MONITORING/MEMORY")),
         vm.findtext("HISTORY_RECORDS/HISTORY[last()]/HOSTNAME", "-")]
        for vm in pool.findall("VM")
    ]  # fmt: skip
    return table(rows, ["ID", "USER", "GROUP", "NAME", "STAT", "CPU", "MEM", "HOST"])


def vm_show(vm: ET.Element) -> str:
    """``onevm show``: information and monitoring."""
    state, lcm = _int(vm, "STATE"), _int(vm, "LCM_STATE")
    info = pairs(f"VIRTUAL MACHINE {vm.findtext('ID')} INFORMATION", [
        ("ID", vm.findtext("ID", "")), ("NAME", vm.findtext("NAME", "")),
        ("USER", vm.findtext("UNAME", "")), ("GROUP", vm.findtext("GNAME", "")),
        ("STATE", VM_STATE_NAMES.get(state, str(state))),
        ("LCM_STATE", LCM_NAMES.get(lcm, str(lcm))),
        ("HOST", vm.findtext("HISTORY_RECORDS/HISTORY[last()]/HOSTNAME", "-")),
        ("DEPLOY ID", vm.findtext("DEPLOY_ID", "")),
        ("START TIME", when(_float(vm, "STIME"))),
        ("LAST POLL", when(_float(vm, "LAST_POLL"))),
    ])  # fmt: skip
    mon = vm.find("MONITORING")
    figures = []
    for child in mon if mon is not None else []:
        if len(child) == 0 and child.tag not in ("ID", "TIMESTAMP"):
            figures.append((child.tag, child.text or ""))
    return info + "\n\n" + pairs("VIRTUAL MACHINE MONITORING", figures)


def vm_monitoring(data: ET.Element) -> str:
    """``onevm monitoring``-like: one line per record."""
    rows = [
        [when(_float(m, "TIMESTAMP")), f"{_float(m, 'CPU'):.2f}", size_kb(_float(m, "MEMORY")),
         size_bytes(_float(m, "NETRX")), size_bytes(_float(m, "NETTX")),
         size_bytes(_float(m, "DISKRDBYTES")), size_bytes(_float(m, "DISKWRBYTES"))]
        for m in data.findall("MONITORING")
    ]  # fmt: skip
    return table(rows, ["TIME", "CPU", "MEMORY", "NETRX", "NETTX", "DISKRD", "DISKWR"])
