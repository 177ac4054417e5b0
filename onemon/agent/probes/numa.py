"""NUMA topology and usage from sysfs ``nodeN`` dirs, as ``numa_host.rb`` and ``numa_usage.rb``.

Units follow OpenNebula: hugepage ``SIZE`` and all memory figures in KB. Deliberate differences
from the Ruby probes, all of which only fix wrong output:

- ``thread_siblings_list`` ranges (``"0-1"``) are expanded, so ``CPUS`` is always a comma list
  (the Ruby probe splits on commas only and then reports such a core twice as ``"0-1"``);
- ``DISTANCE`` keeps nodes at equal distance (the Ruby probe keys a hash by distance and drops
  all but one of them), ties ordered by node id;
- nodes, hugepage sizes and cores are emitted in numeric order, not directory order.
"""

from __future__ import annotations

import os

from onemon.wire.model import Template, add

NODE_DIR = "bus/node/devices"
"""Where the NUMA nodes live under sysfs."""

_HP_PREFIX = "hugepages-"
_HP_SUFFIX = "kB"
_NODE_MEM = (b"MemTotal:", b"MemFree:", b"MemUsed:")


def read_small(path: str) -> bytes | None:
    """A sysfs attribute's bytes (one page at most), or None when it cannot be read.

    Raw ``os.open``/``os.read`` costs half of ``open()`` with its buffer and decoder.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    """A sysfs attribute as stripped text, or None."""
    data = read_small(path)
    return None if data is None else data.decode("ascii", "replace").strip()


def _read_int(path: str) -> int | None:
    """A sysfs attribute holding one integer, or None."""
    data = read_small(path)
    try:
        return None if data is None else int(data)
    except ValueError:
        return None


def _numbered(names: list[str], prefix: str) -> list[int]:
    """The sorted N of entries named ``<prefix>N``."""
    cut = len(prefix)
    return sorted(int(n[cut:]) for n in names if n.startswith(prefix) and n[cut:].isdigit())


def parse_cpulist(text: str) -> list[int]:
    """Expand a kernel cpulist (``"0-3,8,10-11"``) into CPU numbers."""
    cpus: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        low, sep, high = part.strip().partition("-")
        cpus.extend(range(int(low), int(high) + 1) if sep else (int(low),))
    return cpus


def node_ids(sysfs: str) -> list[int]:
    """Ids of the NUMA nodes sysfs shows, sorted; empty on a kernel without NUMA."""
    try:
        return _numbered(os.listdir(f"{sysfs}/{NODE_DIR}"), "node")
    except OSError:
        return []


def hugepage_sizes(node_dir: str) -> list[int]:
    """Hugepage sizes (KB) a node offers, sorted."""
    try:
        names = os.listdir(f"{node_dir}/hugepages")
    except OSError:
        return []
    sizes: list[int] = []
    for name in names:
        size = name[len(_HP_PREFIX) : -len(_HP_SUFFIX)]
        if name.startswith(_HP_PREFIX) and name.endswith(_HP_SUFFIX) and size.isdigit():
            sizes.append(int(size))
    return sorted(sizes)


def node_memory(node_dir: str) -> dict[str, int] | None:
    """``MemTotal``, ``MemFree`` and ``MemUsed`` (KB) of one node, or None without meminfo."""
    data = read_small(f"{node_dir}/meminfo")
    if data is None:
        return None
    found = dict.fromkeys(_NODE_MEM, 0)
    for line in data.splitlines()[:8]:  # "Node 0 MemTotal:  8388608 kB", the first three lines
        parts = line.split()
        if len(parts) >= 4 and parts[2] in found:
            try:
                found[parts[2]] = int(parts[3])
            except ValueError:
                return None
    return {
        "MemTotal": found[b"MemTotal:"],
        "MemFree": found[b"MemFree:"],
        "MemUsed": found[b"MemUsed:"],
    }


def closest_first(distances: list[int], ids: list[int]) -> str:
    """Node ids ordered by increasing distance (ties by id), space-separated."""
    if len(ids) != len(distances):
        ids = list(range(len(distances)))  # the file lists online nodes in order
    order = sorted(range(len(distances)), key=lambda i: (distances[i], ids[i]))
    return " ".join(str(ids[i]) for i in order)


def _cores(node_dir: str) -> list[tuple[int, str]]:
    """(core id, comma list of its threads) for each core of a node."""
    try:
        cpus = _numbered(os.listdir(node_dir), "cpu")
    except OSError:
        return []
    seen: set[int] = set()
    cores: list[tuple[int, str]] = []
    for cpu in cpus:
        if cpu in seen:
            continue
        topo = f"{node_dir}/cpu{cpu}/topology"
        siblings = _read(f"{topo}/thread_siblings_list")
        core_id = _read_int(f"{topo}/core_id")
        if siblings is None or core_id is None:  # offline CPU: no topology
            continue
        try:
            threads = sorted(set(parse_cpulist(siblings)) | {cpu})
        except ValueError:
            continue
        seen.update(threads)
        cores.append((core_id, ",".join(map(str, threads))))
    return cores


def topology(sysfs: str) -> Template:
    """SYSTEM_HOST NUMA vectors: ``HUGEPAGE[NODE_ID,SIZE,PAGES]``, ``CORE``, ``MEMORY_NODE``."""
    out: Template = {}
    ids = node_ids(sysfs)
    for nid in ids:
        node_dir = f"{sysfs}/{NODE_DIR}/node{nid}"
        for size in hugepage_sizes(node_dir):
            pages = _read_int(f"{node_dir}/hugepages/{_HP_PREFIX}{size}{_HP_SUFFIX}/nr_hugepages")
            if pages is not None:
                add(out, "HUGEPAGE", {"NODE_ID": nid, "SIZE": size, "PAGES": pages})
        for core_id, cpus in _cores(node_dir):
            add(out, "CORE", {"NODE_ID": nid, "ID": core_id, "CPUS": cpus})
        mem = node_memory(node_dir)
        if mem is not None:
            text = _read(f"{node_dir}/distance") or ""
            try:
                distance = closest_first([int(d) for d in text.split()], ids)
            except ValueError:
                distance = ""
            add(
                out, "MEMORY_NODE", {"NODE_ID": nid, "TOTAL": mem["MemTotal"], "DISTANCE": distance}
            )
    return out


def usage(sysfs: str, sizes: dict[int, list[int]] | None = None) -> Template:
    """MONITOR_HOST NUMA vectors: ``HUGEPAGE[NODE_ID,SIZE,FREE]``, ``MEMORY_NODE[..,FREE,USED]``.

    ``sizes`` caches each node's hugepage sizes between calls (they are fixed once the node is
    registered); nodes are listed every time, so a hot-plugged node shows up.
    """
    out: Template = {}
    cache = {} if sizes is None else sizes
    for nid in node_ids(sysfs):
        node_dir = f"{sysfs}/{NODE_DIR}/node{nid}"
        node_sizes = cache.get(nid)
        if node_sizes is None:
            node_sizes = cache[nid] = hugepage_sizes(node_dir)
        for size in node_sizes:
            free = _read_int(f"{node_dir}/hugepages/{_HP_PREFIX}{size}{_HP_SUFFIX}/free_hugepages")
            if free is not None:
                add(out, "HUGEPAGE", {"NODE_ID": nid, "SIZE": size, "FREE": free})
        mem = node_memory(node_dir)
        if mem is not None:
            add(
                out, "MEMORY_NODE", {"NODE_ID": nid, "FREE": mem["MemFree"], "USED": mem["MemUsed"]}
            )
    return out
