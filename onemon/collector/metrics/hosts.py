"""Host families: OpenNebula's exporter names where the meaning matches, measured usage else."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, Final

from onemon.collector.model import Host

from .access import Fields, Rows, distinct, line, scalar, vectors
from .columns import column
from .labels import Labels, Owner, sub
from .sink import Sink
from .text import Conv, kib, mhz, mib, plain, timestamp

_CAPACITY: Final = (
    ("opennebula_host_cpu_used_ratio", "used_cpu", plain),
    ("opennebula_host_cpu_free_ratio", "free_cpu", plain),
    ("opennebula_host_cpu_speed_hertz", "cpu_speed", mhz),
    ("opennebula_host_mem_used_bytes", "used_memory", kib),
    ("opennebula_host_mem_free_bytes", "free_memory", kib),
    ("opennebula_host_net_rx_bytes_total", "netrx", plain),
    ("opennebula_host_net_tx_bytes_total", "nettx", plain),
)
"""MONITOR_HOST figures (``host.capacity``), emitted once the host has sent one."""

_SCALARS: Final[tuple[tuple[str, Conv], ...]] = (
    ("opennebula_host_state", plain),
    ("opennebula_host_vms", plain),
    ("opennebula_host_wilds", plain),
    ("opennebula_host_zombies", plain),
    ("opennebula_host_cpu_total_ratio", plain),
    ("opennebula_host_mem_total_bytes", kib),
    ("opennebula_host_last_seen_timestamp_seconds", timestamp),
    ("opennebula_host_last_monitored_timestamp_seconds", timestamp),
    *((name, conv) for name, _, conv in _CAPACITY),
)
"""Family and converter of each value of a host's row, in row order (see ``_row``)."""

_DS: Final[Fields] = (
    ("opennebula_host_datastore_total_bytes", "TOTAL_MB", mib),
    ("opennebula_host_datastore_used_bytes", "USED_MB", mib),
    ("opennebula_host_datastore_free_bytes", "FREE_MB", mib),
)
_MEMORY_NODE: Final[Fields] = (("opennebula_host_numa_mem_total_bytes", "TOTAL", kib),)
_PAGES: Final[Fields] = (("opennebula_host_numa_hugepages", "PAGES", plain),)
_NUMA_USAGE: Final[Fields] = (
    ("opennebula_host_numa_mem_used_bytes", "USED", kib),
    ("opennebula_host_numa_mem_free_bytes", "FREE", kib),
)
_PAGES_FREE: Final[Fields] = (("opennebula_host_numa_hugepages_free", "FREE", plain),)
_NODE: Final = ("numa_node",)
_PAGE: Final = ("numa_node", "page_size_bytes")
_DS_ID: Final = ("one_datastore_id",)
_NO_CAPACITY: Final = (None,) * len(_CAPACITY)
_FIGURES: Final = operator.attrgetter(*(attr for _, attr, _ in _CAPACITY))


class _Subs:
    """Every host's sub-objects, by kind."""

    def __init__(self) -> None:
        self.ds, self.nodes, self.pages = Rows(), Rows(), Rows()
        self.usage, self.pages_free = Rows(), Rows()

    def add(self, host: Host, owner: Owner) -> None:
        """One host's datastores and NUMA nodes (all read before any is kept)."""
        system = host.system if isinstance(host.system, dict) else {}
        ds = distinct([(sub(owner, _DS_ID, (v.get("ID"),)), v) for v in vectors(system, "DS")])
        found = [(self.ds, ds)]
        if "MEMORY_NODE" in system or "HUGEPAGE" in system:
            found.append((self.nodes, _nodes(vectors(system, "MEMORY_NODE"), owner, False)))
            found.append((self.pages, _nodes(vectors(system, "HUGEPAGE"), owner, True)))
        numa = [node for node in host.capacity.numa if isinstance(node, dict)]
        if numa:
            usage = [(tag, _memory(node)) for tag, node in _nodes(numa, owner, False)]
            free = [dict(v, NODE_ID=n.get("NODE_ID")) for n in numa for v in vectors(n, "HUGEPAGE")]
            found += [(self.usage, usage), (self.pages_free, _nodes(free, owner, True))]
        for rows, items in found:
            rows.extend(items)

    def write(self, sink: Sink) -> None:
        """Every sub-object family."""
        self.ds.write(sink, _DS)
        self.nodes.write(sink, _MEMORY_NODE)
        self.pages.write(sink, _PAGES)
        self.usage.write(sink, _NUMA_USAGE)
        self.pages_free.write(sink, _PAGES_FREE)


def _memory(node: dict[str, Any]) -> dict[str, Any]:
    """A MONITOR_HOST NUMA node's ``MEMORY`` vector (empty when missing)."""
    memory = scalar(node, "MEMORY")
    return memory if isinstance(memory, dict) else {}


def _nodes(
    vecs: list[dict[str, Any]], owner: Owner, page: bool
) -> list[tuple[str, dict[str, Any]]]:
    """NUMA vectors with their label sets (node, and page size in bytes when ``page``)."""
    items = []
    for vec in vecs:
        node = vec.get("NODE_ID")
        if not page:
            items.append((sub(owner, _NODE, (node,)), vec))
            continue
        size = kib(vec.get("SIZE"))
        if size is not None:
            items.append((sub(owner, _PAGE, (node, size)), vec))
    return distinct(items)


def _row(host: Host, vm_count: int) -> tuple[Any, ...]:
    """A host's values in ``_SCALARS`` order (None: absent)."""
    system, seen, monitored = host.system, host.last_seen, host.last_monitored
    figures = _FIGURES(host.capacity) if monitored > 0 else _NO_CAPACITY
    return (
        host.state, vm_count, len(host.wilds), len(host.zombies), scalar(system, "TOTALCPU"),
        scalar(system, "TOTALMEMORY"), seen if seen > 0 else None,
        monitored if monitored > 0 else None, *figures,
    )  # fmt: skip


def emit(sink: Sink, hosts: Sequence[Host], vm_counts: Mapping[int, int], labels: Labels) -> None:
    """Every host family, a column at a time."""
    line(sink.out("opennebula_host_total"), "", len(hosts))
    owners: list[Owner] = []
    rows: list[tuple[Any, ...]] = []
    subs = _Subs()
    skipped = 0
    for host in hosts:
        try:
            owner = labels.host(host)
            row = _row(host, vm_counts.get(host.id, 0))
        except Exception:  # state changing under us, or an object of a shape nobody expected
            skipped += 1
            continue
        owners.append(owner)
        rows.append(row)
        try:
            subs.add(host, owner)
        except Exception:  # as above: this host's datastores and NUMA nodes are left out
            skipped += 1
    tags = [owner.braces for owner in owners]
    for index, (name, conv) in enumerate(_SCALARS):
        column(sink, name, tags, [row[index] for row in rows], conv)
    column(sink, "opennebula_host_info", [owner.info for owner in owners], [1] * len(owners), plain)
    sink.skipped += skipped
    subs.write(sink)
