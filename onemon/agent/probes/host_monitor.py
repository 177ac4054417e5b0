"""MONITOR_HOST figures, as OpenNebula's ``linux_usage.rb`` and ``numa_usage.rb``, read in-process.

Units: memory in KB, CPU in percent x cores (100 = one core), network in cumulative bytes.

- ``FREECPU``/``USEDCPU`` come from ``/proc/stat`` deltas between two samples, with vmstat's
  meaning of idle (the ``id`` column: iowait and steal count as used). The first sample is taken
  when the ``HostMonitor`` is built, so its first ``collect`` covers the time since then; when no
  clock tick has passed (or the counters went back), the since-boot split is used. Never sleeps.
- ``NETRX``/``NETTX`` sum ``/proc/net/dev`` over physical NICs, see ``is_physical_nic``.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from onemon.agent.probes import numa
from onemon.agent.probes.roots import Roots
from onemon.wire.model import Template

NIC_NAMES = re.compile(
    r"eth[0-9]+|ib[0-9]+|em[0-9]+(_[0-9]+)?|p[0-9]+p[0-9]+(_[0-9]+)?"
    r"|eno[0-9]+(n[0-9a-zA-Z]+|d[0-9]+)?|ens[0-9]+(f[0-9]+)?(n[0-9a-zA-Z]+|d[0-9]+)?"
    r"|enx[0-9a-fA-F]{12}|en(P[0-9]+)?p[0-9]+s[0-9]+(f[0-9]+)?(n[0-9a-zA-Z]+|d[0-9]+)?"
    r"|ena[0-9a-zA-Z]+i[0-9]+"
)
"""OpenNebula's physical NIC names (``lib/linux.rb``), matched against the whole name."""

_MEM_KEYS = (b"MemTotal:", b"MemFree:", b"Buffers:", b"Cached:")


def read_proc(path: str) -> bytes:
    """A whole procfs file through raw ``os.read`` calls (no buffer, no decoder)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class CpuSample(NamedTuple):
    """Aggregate ``/proc/stat`` jiffies and the number of online CPUs."""

    total: int
    idle: int
    cpus: int


def read_cpu(procfs: str) -> CpuSample:
    """Read the aggregate ``cpu`` line and count the ``cpuN`` lines of ``/proc/stat``."""
    total = idle = cpus = 0
    for line in read_proc(f"{procfs}/stat").split(b"\n"):
        if not line.startswith(b"cpu"):
            break
        if line.startswith(b"cpu "):
            # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time
            # is already inside user/nice, so it is left out, as vmstat does.
            fields = [int(v) for v in line.split()[1:9]]
            total, idle = sum(fields), fields[3]
        else:
            cpus += 1
    return CpuSample(total, idle, cpus)


def read_meminfo(procfs: str) -> dict[str, int]:
    """``MemTotal``, ``MemFree``, ``Buffers`` and ``Cached`` from ``/proc/meminfo``, in KB."""
    found = dict.fromkeys(_MEM_KEYS, 0)
    for line in read_proc(f"{procfs}/meminfo").split(b"\n"):
        key, _, rest = line.partition(b" ")
        if key in found:
            found[key] = int(rest.split()[0])
            if key == _MEM_KEYS[-1]:
                break
    return {k[:-1].decode(): v for k, v in found.items()}


def is_physical_nic(sysfs: str, name: str) -> bool:
    """True when ``name`` is a physical NIC whose bytes count in ``NETRX``/``NETTX``.

    Never ``lo``, a bridge (``bridge/``), a bond master (``bonding/``), a tun/tap (``tun_flags``)
    or a stacked device whose ``iflink`` is not its own ``ifindex`` (veth, VLAN, macvlan: their
    traffic is counted on the lower device, or belongs to a guest). Otherwise, a NIC with a
    ``device`` link (it sits on a bus), or one named as OpenNebula's list ``NIC_NAMES``.
    """
    if name == "lo":
        return False
    base = f"{sysfs}/class/net/{name}"
    if any(os.path.exists(f"{base}/{mark}") for mark in ("bridge", "bonding", "tun_flags")):
        return False
    if numa.read_small(f"{base}/iflink") != numa.read_small(f"{base}/ifindex"):
        return False
    return os.path.exists(f"{base}/device") or NIC_NAMES.fullmatch(name) is not None


class HostMonitor:
    """MONITOR_HOST probe; keeps the previous CPU sample and which NICs are physical."""

    def __init__(self, roots: Roots = Roots(), hypervisor: str = "kvm") -> None:  # noqa: B008
        """Take the first CPU sample now, so the first ``collect`` has a delta."""
        self.roots = roots
        self.hypervisor = hypervisor
        self._cpu = read_cpu(roots.procfs)
        self._physical: dict[str, bool] = {}
        self._hugepage_sizes: dict[int, list[int]] = {}

    def cpu(self) -> tuple[int, int]:
        """(FREECPU, USEDCPU) in percent x cores since the previous call."""
        now = read_cpu(self.roots.procfs)
        total, idle = now.total - self._cpu.total, now.idle - self._cpu.idle
        if total <= 0 or not 0 <= idle <= total:
            total, idle = now.total, now.idle
        self._cpu = now
        capacity = now.cpus * 100
        free = int(capacity * idle / total + 0.5) if total > 0 else capacity
        return free, capacity - free

    def net(self) -> tuple[int, int]:
        """Cumulative (rx, tx) bytes over physical NICs."""
        rx = tx = 0
        seen: dict[str, bool] = {}
        for line in read_proc(f"{self.roots.procfs}/net/dev").split(b"\n")[2:]:
            raw, sep, rest = line.partition(b":")
            if not sep:
                continue
            name = raw.strip().decode("ascii", "replace")
            physical = self._physical.get(name)
            if physical is None:
                physical = is_physical_nic(self.roots.sysfs, name)
            seen[name] = physical
            if physical:
                fields = rest.split()
                rx += int(fields[0])
                tx += int(fields[8])
        self._physical = seen  # a NIC absent from one read is examined again if it returns
        return rx, tx

    def collect(self) -> Template:
        """The MONITOR_HOST template: memory, CPU, network and NUMA usage."""
        mem = read_meminfo(self.roots.procfs)
        used = max(mem["MemTotal"] - mem["MemFree"] - mem["Buffers"] - mem["Cached"], 0)
        free_cpu, used_cpu = self.cpu()
        rx, tx = self.net()
        out: Template = {
            "HYPERVISOR": self.hypervisor,
            "USEDMEMORY": used,
            "FREEMEMORY": mem["MemTotal"] - used,
            "FREECPU": free_cpu,
            "USEDCPU": used_cpu,
            "NETRX": rx,
            "NETTX": tx,
        }
        out.update(numa.usage(self.roots.sysfs, self._hugepage_sizes))
        return out
