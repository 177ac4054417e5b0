"""LXC containers named ``one-<id>`` (plain LXC, as OpenNebula runs them): states and figures.

Everything comes from files, never from the LXC tools: a running container is a payload cgroup
(``lxc.payload.<name>``, LXC ≥ 4; ``lxc/<name>`` before), so one directory listing finds them
all, where ``lxc-ls --active``/``lxc-info`` would fork per call and query each container's
monitor socket. Stopped containers have no cgroup and are not listed (OpenNebula ignores them
too). The cgroup view cannot tell STARTING/STOPPING/ABORTING apart: a populated cgroup is
RUNNING, a frozen one FROZEN (UNKNOWN for OpenNebula).

Figures, OpenNebula's units (ref §2.3): ``CPU`` percent of one core from cgroup CPU time deltas
(v1 ``cpuacct.usage``, else ``cpuacct.stat``, else v2 ``cpu.stat usage_usec``; pure v2: the
latter); ``MEMORY`` KB from v1 ``memory.usage_in_bytes`` or v2 ``memory.current`` (what
``lxc-info`` shows as "Memory use"); ``NETRX``/``NETTX`` bytes from the host-side veths named by
``lxc.net.N.veth.pair`` in ``<lxc_path>/<name>/config``. A veth counts the other way round from
the container: the container's RX is the host veth's ``tx_bytes``. Containers without a
configured ``veth.pair`` (random ``vethXXXX`` names) report no NIC.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from onemon.wire.model import Template, add

from .cpu_meter import CpuMeter
from .roots import Roots
from .vm_state import VmState, lxc_state, vm_id_of

DEFAULT_LXC_PATH: Final = "/var/lib/lxc"
_PAYLOAD: Final = "lxc.payload."
_V1_CPUACCT: Final = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
_VETH_PAIR: Final = re.compile(r"^\s*lxc\.net(?:work)?(?:\.\d+)?\.veth\.pair\s*=\s*(\S+)\s*$", re.M)
_IFNAME: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_NS_PER_TICK: Final = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where the hierarchies LXC containers live in are mounted (None: not mounted)."""

    unified: str | None
    cpuacct: str | None
    memory: str | None
    freezer: str | None

    @classmethod
    def detect(cls, cgroupfs: str) -> CgroupLayout:
        """Pure v2, hybrid (v1 controllers + ``unified``) or pure v1 under ``cgroupfs``."""
        if os.path.exists(os.path.join(cgroupfs, "cgroup.controllers")):
            return cls(cgroupfs, None, None, None)
        unified = os.path.join(cgroupfs, "unified")
        cpuacct = next(
            (p for p in (os.path.join(cgroupfs, c) for c in _V1_CPUACCT) if os.path.isdir(p)), None
        )
        memory = os.path.join(cgroupfs, "memory")
        freezer = os.path.join(cgroupfs, "freezer")
        return cls(
            unified if os.path.exists(os.path.join(unified, "cgroup.controllers")) else None,
            cpuacct,
            memory if os.path.isdir(memory) else None,
            freezer if os.path.isdir(freezer) else None,
        )

    @property
    def pure_v2(self) -> bool:
        """True when only cgroup v2 is mounted."""
        return self.unified is not None and self.cpuacct is None and self.memory is None


@dataclass(frozen=True, slots=True)
class Container:
    """A running container: its name, LXC state name and cgroup path below each hierarchy."""

    name: str
    state: str
    cgroup: str

    @property
    def vm_id(self) -> int:
        """OpenNebula VM id from ``one-<id>``; -1 for any other container."""
        return vm_id_of(self.name)


def _read(path: str) -> str | None:
    """A small file's text, or None when it is not there (or not readable)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _int(path: str) -> int | None:
    """A file holding one integer."""
    text = _read(path)
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _keyed(path: str) -> dict[str, int] | None:
    """The ``key value`` lines of a flat-keyed file (``cpu.stat``, ``cgroup.events``)."""
    text = _read(path)
    if text is None:
        return None
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _payloads(root: str) -> list[tuple[str, str]]:
    """(container name, cgroup path) of each payload cgroup directly below ``root``."""
    try:
        found = [(e[len(_PAYLOAD) :], e) for e in os.listdir(root) if e.startswith(_PAYLOAD)]
    except OSError:
        return []
    legacy = os.path.join(root, "lxc")
    if os.path.isdir(legacy):
        with contextlib.suppress(OSError):
            found += [
                (e, f"lxc/{e}")
                for e in os.listdir(legacy)
                if os.path.isdir(os.path.join(legacy, e))
            ]
    return found


class LxcVms:
    """Running LXC containers, their OpenNebula states and MONITOR_VM figures."""

    def __init__(
        self,
        roots: Roots | None = None,
        lxc_path: str = DEFAULT_LXC_PATH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.roots = roots or Roots()
        self.lxc_path = lxc_path
        self._clock = clock
        self._cpu = CpuMeter()
        self._layout: CgroupLayout | None = None

    @property
    def layout(self) -> CgroupLayout:
        """The cgroup layout, detected on first use."""
        if self._layout is None:
            self._layout = CgroupLayout.detect(self.roots.cgroupfs)
        return self._layout

    def containers(self) -> list[Container]:
        """Every running container, from the payload cgroups of all hierarchies (by name)."""
        lay = self.layout
        found: dict[str, str] = {}
        for root in (lay.unified, lay.cpuacct, lay.memory):
            if root is not None:
                for name, rel in _payloads(root):
                    found.setdefault(name, rel)
        out: list[Container] = []
        for name, rel in sorted(found.items()):
            state = self._state(rel)
            if state is not None:
                out.append(Container(name, state, rel))
        return out

    def _state(self, rel: str) -> str | None:
        """RUNNING or FROZEN for a live payload cgroup; None for an empty (leftover) one."""
        lay = self.layout
        frozen = False
        if lay.unified is not None:
            events = _keyed(os.path.join(lay.unified, rel, "cgroup.events")) or {}
            if events.get("populated", 1) == 0:
                return None
            frozen = events.get("frozen", 0) == 1
        if lay.freezer is not None:
            v1_state = _read(os.path.join(lay.freezer, rel, "freezer.state"))
            frozen = frozen or (v1_state or "").strip() in ("FROZEN", "FREEZING")
        return "FROZEN" if frozen else "RUNNING"

    def cpu_ns(self, rel: str) -> int | None:
        """Cumulative CPU time of a container cgroup in ns."""
        lay = self.layout
        if lay.cpuacct is not None:
            usage = _int(os.path.join(lay.cpuacct, rel, "cpuacct.usage"))
            if usage is not None:
                return usage
            ticks = _keyed(os.path.join(lay.cpuacct, rel, "cpuacct.stat")) or {}
            if "user" in ticks and "system" in ticks:
                return (ticks["user"] + ticks["system"]) * _NS_PER_TICK
        if lay.unified is not None:
            usec = (_keyed(os.path.join(lay.unified, rel, "cpu.stat")) or {}).get("usage_usec")
            if usec is not None:
                return usec * 1000
        return None

    def memory_kb(self, rel: str) -> int | None:
        """Memory charged to a container cgroup in KB (v1 usage_in_bytes or v2 current)."""
        lay = self.layout
        if lay.memory is not None:
            used = _int(os.path.join(lay.memory, rel, "memory.usage_in_bytes"))
            if used is not None:
                return used // 1024
        if lay.unified is not None:
            current = _int(os.path.join(lay.unified, rel, "memory.current"))
            if current is not None:
                return current // 1024
        return None

    def veths(self, name: str) -> list[str]:
        """Host-side veth names from the container's ``lxc.net.N.veth.pair`` settings."""
        text = _read(os.path.join(self.lxc_path, name, "config"))
        if text is None:
            return []
        return [
            v for v in _VETH_PAIR.findall(text) if _IFNAME.fullmatch(v) and v not in (".", "..")
        ]

    def _nics(self, name: str) -> list[dict[str, int | str]]:
        """NIC vectors from the container's point of view (host veth rx = container tx)."""
        base = os.path.join(self.roots.sysfs, "class", "net")
        nics: list[dict[str, int | str]] = []
        for index, veth in enumerate(self.veths(name)):
            stats = os.path.join(base, veth, "statistics")
            host_rx = _int(os.path.join(stats, "rx_bytes"))
            host_tx = _int(os.path.join(stats, "tx_bytes"))
            if host_rx is None or host_tx is None:
                continue
            nics.append({"ID": index, "TARGET": veth, "RX_BYTES": host_tx, "TX_BYTES": host_rx})
        return nics

    def sample(
        self, containers: Iterable[Container] | None = None, now: float | None = None
    ) -> list[Template]:
        """``{ID, DEPLOY_ID, MONITOR}`` per ``one-<id>`` container (DEPLOY_ID is its name)."""
        at = self._clock() if now is None else now
        out: list[Template] = []
        seen: list[str] = []
        for ct in self.containers() if containers is None else containers:
            if ct.vm_id < 0:
                continue
            seen.append(ct.name)
            mon: Template = {}
            used = self.cpu_ns(ct.cgroup)
            cpu = None if used is None else self._cpu.percent(ct.name, used, at)
            if cpu is not None:
                mon["CPU"] = cpu
            memory = self.memory_kb(ct.cgroup)
            if memory is not None:
                mon["MEMORY"] = memory
            nics = self._nics(ct.name)
            running = lxc_state(ct.state) == "RUNNING"
            mon["NETRX"] = sum(int(n["RX_BYTES"]) for n in nics) if running else 0
            mon["NETTX"] = sum(int(n["TX_BYTES"]) for n in nics) if running else 0
            if used is not None:
                mon["CPU_TIME_NS"] = used
            for nic in nics:
                add(mon, "NIC", nic)
            out.append({"ID": ct.vm_id, "DEPLOY_ID": ct.name, "MONITOR": mon})
        self._cpu.retain(seen)
        return out


def vm_states(containers: Iterable[Container]) -> list[VmState]:
    """OpenNebula state per ``one-<id>`` container, by OpenNebula's LXC STATE_MAP (ref §2.4)."""
    return [
        VmState(ct.vm_id, ct.name, ct.name, lxc_state(ct.state))
        for ct in containers
        if ct.vm_id >= 0 and ct.state != "STOPPED"
    ]
