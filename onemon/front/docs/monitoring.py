"""MONITORING records of hosts and VMs, and MONITORING_DATA (reference §2.2, §2.3, §3.4)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from onemon.front.docs.xml import bare, cdata_element, decimal, element, integral
from onemon.wire.model import Template, values

HOST_CAPACITY = ("FREE_CPU", "FREE_MEMORY", "USED_CPU", "USED_MEMORY")
HOST_SYSTEM = ("NETRX", "NETTX")

VM_DATA_KEYS: dict[str, str] = {
    "CPU": "decimal", "DISKRDBYTES": "integer", "DISKRDIOPS": "integer",
    "DISKWRBYTES": "integer", "DISKWRIOPS": "integer", "DISK_SIZE": "disk",
    "ID": "integer", "MEMORY": "integer", "NETRX": "integer", "NETTX": "integer",
    "TIMESTAMP": "integer",
}  # fmt: skip
"""monitoring_data.xsd's record children, in its order, with their types."""

_FIGURES = ("DISKRDBYTES", "DISKRDIOPS", "DISKWRBYTES", "DISKWRIOPS")
VM_KEYS: dict[str, str] = dict(
    sorted(
        {
            **{k: "decimal" for k in ("CPU", "CPU_FORECAST", "CPU_FORECAST_FAR")},
            **{f"{k}{s}": "decimal" for k in _FIGURES
               for s in ("", "_BW", "_BW_FORECAST", "_BW_FORECAST_FAR")},
            "DISK_SIZE": "disk", "ID": "integer",
            **{k: "decimal" for k in ("MEMORY", "MEMORY_FORECAST", "MEMORY_FORECAST_FAR")},
            **{f"{k}{s}": "decimal" for k in ("NETRX", "NETTX")
               for s in ("", "_BW", "_BW_FORECAST", "_BW_FORECAST_FAR")},
            "TIMESTAMP": "integer",
        }.items()
    )
)  # fmt: skip
"""vm.xsd's VM/MONITORING children (byte order of names is the schema's order)."""


def host_record(host_id: int, ts: float, sample: Template) -> str:
    """One host MONITORING record: TIMESTAMP, ID, CAPACITY, SYSTEM, NUMA_NODE*."""
    capacity = _figures(sample, HOST_CAPACITY)
    system = _figures(sample, HOST_SYSTEM)
    numa = "".join(
        _numa_node(node) for node in values(sample, "NUMA_NODE") if isinstance(node, dict)
    )
    return element(
        "MONITORING",
        bare("TIMESTAMP", int(ts))
        + bare("ID", host_id)
        + (element("CAPACITY", capacity) if capacity else "")
        + (element("SYSTEM", system) if system else "")
        + numa,
    )


def _figures(sample: Template, keys: Iterable[str]) -> str:
    parts = []
    for key in keys:
        text = integral(sample.get(key))
        if text is not None:
            parts.append(cdata_element(key, text))
    return "".join(parts)


def _numa_node(node: dict[str, Any]) -> str:
    """NUMA_NODE: HUGEPAGE* (FREE, SIZE), MEMORY (FREE, USED), NODE_ID."""
    pages = "".join(
        element("HUGEPAGE", cdata_element("FREE", integral(p.get("FREE")) or 0)
                + cdata_element("SIZE", integral(p.get("SIZE")) or 0))
        for p in node.get("HUGEPAGE") or () if isinstance(p, dict)
    )  # fmt: skip
    found = node.get("MEMORY")
    memory: dict[str, Any] = found if isinstance(found, dict) else {}
    return element(
        "NUMA_NODE",
        pages
        + element(
            "MEMORY",
            cdata_element("FREE", integral(memory.get("FREE")) or 0)
            + cdata_element("USED", integral(memory.get("USED")) or 0),
        )
        + cdata_element("NODE_ID", integral(node.get("NODE_ID")) or 0),
    )


def vm_record(vm_id: int, ts: float, sample: Template, keys: dict[str, str]) -> str:
    """A VM MONITORING record with the schema's keys (``keys``), ID and TIMESTAMP set."""
    record: Template = {**sample, "ID": vm_id, "TIMESTAMP": int(ts)}
    parts = []
    for key, kind in keys.items():
        if key not in record:
            continue
        if kind == "disk":
            parts.extend(_disk_sizes(record[key]))
            continue
        text = decimal(record[key]) if kind == "decimal" else integral(record[key])
        if text is not None:
            parts.append(cdata_element(key, text))
    return element("MONITORING", "".join(parts))


def _disk_sizes(value: Any) -> list[str]:
    out = []
    for disk in value if isinstance(value, list) else [value]:
        if isinstance(disk, dict):
            disk_id, size = integral(disk.get("ID")), integral(disk.get("SIZE"))
            if disk_id is not None and size is not None:
                out.append(element("DISK_SIZE", cdata_element("ID", disk_id)
                                   + cdata_element("SIZE", size)))  # fmt: skip
    return out


def monitoring_data(records: Iterable[str]) -> str:
    """MONITORING_DATA around rendered records."""
    return element("MONITORING_DATA", "".join(records))
