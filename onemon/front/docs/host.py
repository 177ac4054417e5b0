"""HOST and HOST_POOL documents (host.xsd, reference §3.1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from onemon.collector.model import Host, HostState, Vm
from onemon.front.docs.monitoring import host_record
from onemon.front.docs.share import MOVED_TO_SHARE, host_share
from onemon.front.docs.xml import bare, cdata_element, element, ids, scalar_text, template
from onemon.wire.model import Template

CLUSTER_ID, CLUSTER = 0, "default"
DROPPED_WHEN_OFFLINE = ("TOTALCPU", "TOTALMEMORY", "FREECPU", "FREEMEMORY", "USEDCPU", "USEDMEMORY")


def host_template(host: Host, override: Template) -> Template:
    """TEMPLATE: SYSTEM_HOST less HOST_SHARE's part, wilds, zombies, error, then the user's."""
    out: Template = {k: v for k, v in host.system.items() if k not in MOVED_TO_SHARE}
    out.pop("VM", None)
    wilds = [w for w in host.wilds if isinstance(w, dict)]
    if wilds:
        out["VM"] = wilds
        out["TOTAL_WILDS"] = len(wilds)
        out["WILDS"] = ",".join(_wild_name(w) for w in wilds)
    if host.zombies:
        out["TOTAL_ZOMBIES"] = len(host.zombies)
        out["ZOMBIES"] = ",".join(str(z) for z in host.zombies)
    if host.error:
        out["ERROR"] = host.error
    out.update(override)
    if host.state is HostState.OFFLINE:
        for key in DROPPED_WHEN_OFFLINE:
            out.pop(key, None)
    return out


def _wild_name(wild: dict[str, Any]) -> str:
    return scalar_text(wild.get("VM_NAME") or wild.get("DEPLOY_ID") or "")


def host_xml(
    host: Host,
    name: str,
    vms: Iterable[Vm],
    override: Template,
    monitoring: tuple[float, Template] | None,
) -> str:
    """One HOST element; ``monitoring`` is the record shown in MONITORING (None: empty)."""
    vm_list = sorted(vms, key=lambda v: v.id)
    attributes = host_template(host, override)
    record = host_record(host.id, *monitoring) if monitoring is not None else ""
    return element(
        "HOST",
        bare("ID", host.id)
        + bare("NAME", name)
        + bare("STATE", int(host.state))
        + bare("PREV_STATE", int(host.state))
        + cdata_element("IM_MAD", host.im_mad)
        + cdata_element("VM_MAD", host.vm_mad)
        + bare("CLUSTER_ID", CLUSTER_ID)
        + bare("CLUSTER", CLUSTER)
        + host_share(host, attributes, vm_list)
        + ids("VMS", (vm.id for vm in vm_list))
        + template("TEMPLATE", attributes)
        + (record or element("MONITORING")),
    )


def host_pool_xml(hosts: Iterable[str]) -> str:
    """HOST_POOL around rendered HOST elements."""
    return element("HOST_POOL", "".join(hosts))
