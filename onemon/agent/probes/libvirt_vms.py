"""KVM VMs through libvirt: bulk stats per cycle, OpenNebula's keys, states and wilds.

``LibvirtClient`` (``libvirt_client``) is the only code that touches the untyped binding; it
lists the domains once and fetches their stats in a few parallel bulk calls (never one call per
domain), returns typed ``Domain`` records and everything here works on those, so tests can feed
recorded bulk stats. Only *active* domains are listed, as OpenNebula's ``virsh list``: a shut-off
``one-<id>`` domain is missing, which the state tracker turns into POWEROFF after its grace.

When libvirt cannot be reached, ``HypervisorUnreachable`` is raised: callers must then report
UNKNOWN or nothing, never "all VMs gone" (OpenNebula issues 5564, 5708).

``VmSampler`` computes ``CPU`` (percent of one core) from ``cpu.time`` deltas over the wall-clock
time between two ``sample`` calls, keyed by UUID; a domain seen for the first time has no ``CPU``
key (see ``cpu_meter``). Wild domains get their XML read once (``WildVms`` caches by UUID).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from onemon.wire.model import Template

from .cpu_meter import CpuMeter
from .domstats import monitor_template
from .libvirt_client import (
    DEFAULT_URI,
    Domain,
    HypervisorError,
    HypervisorUnreachable,
    LibvirtClient,
)
from .vm_state import VmState, kvm_state

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

__all__ = [
    "DEFAULT_URI",
    "Domain",
    "HypervisorError",
    "HypervisorUnreachable",
    "LibvirtClient",
    "VmSampler",
    "WildVms",
    "import_template",
    "vm_states",
]


class VmSampler:
    """MONITOR_VM entries from bulk stats, keeping each domain's previous CPU sample by UUID."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cpu = CpuMeter()

    def sample(self, domains: Iterable[Domain], now: float | None = None) -> list[Template]:
        """``{ID, DEPLOY_ID, MONITOR}`` per ``one-<id>`` domain; wild domains are left out."""
        at = self._clock() if now is None else now
        out: list[Template] = []
        seen: list[str] = []
        for dom in domains:
            vm_id = dom.vm_id
            if vm_id < 0:
                continue
            seen.append(dom.uuid)
            cpu_ns = dom.stats.get("cpu.time")
            cpu = None if cpu_ns is None else self._cpu.percent(dom.uuid, cpu_ns, at)
            mon = monitor_template(dom.stats, cpu)
            out.append({"ID": vm_id, "DEPLOY_ID": dom.uuid, "MONITOR": mon})
        self._cpu.retain(seen)
        return out


def vm_states(domains: Iterable[Domain]) -> list[VmState]:
    """OpenNebula state per ``one-<id>`` domain, by the KVM STATE_MAP (ref §2.4)."""
    return [
        VmState(
            dom.vm_id,
            dom.uuid,
            dom.name,
            kvm_state(dom.stats.get("state.state", 0), dom.stats.get("state.reason", 0)),
        )
        for dom in domains
        if dom.vm_id >= 0
    ]


def import_template(xml: str) -> str:
    """Base64 of the minimal OpenNebula template for importing a wild domain ('' if unreadable)."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415  (only nodes with wild domains need it)

    try:
        root = ET.fromstring(xml)  # noqa: S314  (libvirt's own output, no entity expansion)
    except ET.ParseError:
        return ""
    name = root.findtext("name") or ""
    uuid = root.findtext("uuid") or ""
    vcpu = (root.findtext("vcpu") or "1").strip()
    memory = root.find("memory")
    arch = root.find("os/type")
    lines = [
        f"NAME={_quote(name)}",
        f"CPU={_quote(vcpu)}",
        f"VCPU={_quote(vcpu)}",
        f"MEMORY={_memory_mb(memory)}",
        'HYPERVISOR="kvm"',
        f"DEPLOY_ID={_quote(uuid)}",
    ]
    if arch is not None and arch.get("arch"):
        lines.append(f"OS=[ARCH={_quote(arch.get('arch', ''))}]")
    return base64.b64encode(("\n".join(lines) + "\n").encode()).decode("ascii")


def _memory_mb(elem: ET.Element | None) -> int:
    """``<memory>`` in MB (libvirt writes KiB; OpenNebula divides by 1024)."""
    text = "" if elem is None else (elem.text or "").strip()
    return int(text) // 1024 if text.isdigit() else 0


def _quote(value: str) -> str:
    """A double-quoted template value; characters the OpenNebula parser cannot carry are dropped."""
    clean = "".join(c for c in value if c.isprintable() and c != "\\")
    while "]]>" in clean:
        clean = clean.replace("]]>", "]]")
    return '"' + clean.replace('"', '\\"') + '"'


class WildVms:
    """SYSTEM_HOST ``VM=[ID=-1, DEPLOY_ID, VM_NAME, IMPORT_TEMPLATE]`` per wild domain (cached)."""

    def __init__(self, xml_of: Callable[[str], str]) -> None:
        self._xml_of = xml_of
        self._templates: dict[str, str] = {}

    def report(self, domains: Iterable[Domain]) -> list[Template]:
        """One ``VM`` vector per domain not named ``one-<id>``."""
        out: list[Template] = []
        seen: dict[str, str] = {}
        for dom in domains:
            if dom.vm_id >= 0:
                continue
            tmpl = self._templates.get(dom.uuid)
            if tmpl is None:
                try:
                    tmpl = import_template(self._xml_of(dom.uuid))
                except HypervisorUnreachable:
                    raise
                except HypervisorError:  # gone between the list and the lookup
                    continue
            seen[dom.uuid] = tmpl
            entry: Template = {"ID": -1, "DEPLOY_ID": dom.uuid, "VM_NAME": dom.name}
            if tmpl:
                entry["IMPORT_TEMPLATE"] = tmpl
            out.append(entry)
        self._templates = seen
        return out
