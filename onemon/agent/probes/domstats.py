"""One domain's libvirt bulk stats (``virConnectGetAllDomainStats``) as a MONITOR template.

Input is the flat dict libvirt returns per domain (``"net.0.rx.bytes": 123``…); output uses
OpenNebula's MONITOR_VM keys and units (ref §2.3) plus per-device detail vectors for the
collector's ``opennebula_libvirt_*`` metrics:

- ``MEMORY`` KB: ``balloon.rss`` (the QEMU process RSS, KiB) when present, else
  ``balloon.current`` (memory given to the guest, KiB). OpenNebula reports qemu RSS + VmSwap;
  libvirt has no swap figure, so ours is RSS only.
- ``NETRX``/``NETTX``/``DISK{RD,WR}{BYTES,IOPS}``: cumulative sums over all vNICs/disks, reported
  as 0 (as OpenNebula) unless the domain is RUNNING and not paused for migrating, saving or
  starting up. A stats group libvirt did not return at all (e.g. skipped under ``NOWAIT``
  while the domain holds a job) leaves its keys out, so stored counters are not reset to 0.
- ``CPU_TIME_NS``/``CPU_USER_NS``/``CPU_SYSTEM_NS``, ``STATE``/``REASON`` (libvirt numbers).
- ``NIC=[ID, TARGET, RX_BYTES, RX_PACKETS, RX_ERRS, RX_DROP, TX_*]``: ID is libvirt's index,
  TARGET the host-side device (OpenNebula's NIC TARGET, e.g. ``one-7-0``).
- ``DISK=[ID, TARGET, RD_REQS, RD_BYTES, RD_TIME_NS, WR_*, FL_REQS, FL_TIME_NS, CAPACITY,
  ALLOCATION, PHYSICAL]``: TARGET is the guest device (``vda``); sizes in bytes.
- ``VCPU=[ID, STATE, TIME_NS, WAIT_NS]``; ``BALLOON=[CURRENT, MAXIMUM, UNUSED, AVAILABLE,
  USABLE, RSS, SWAP_IN, SWAP_OUT (KiB), MAJOR_FAULT, MINOR_FAULT]``.

A repeated vector is a list, a single one a dict (``onemon.wire.model.add``); read with ``values``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from onemon.wire.model import Template, add

from .vm_state import kvm_skip_io

Stats = Mapping[str, Any]
"""One domain's flat bulk-stats dict as libvirt returns it."""

_Fields = tuple[tuple[str, str], ...]

_NIC_FIELDS: Final = (
    ("TARGET", "name"), ("RX_BYTES", "rx.bytes"), ("RX_PACKETS", "rx.pkts"),
    ("RX_ERRS", "rx.errs"), ("RX_DROP", "rx.drop"), ("TX_BYTES", "tx.bytes"),
    ("TX_PACKETS", "tx.pkts"), ("TX_ERRS", "tx.errs"), ("TX_DROP", "tx.drop"),
)  # fmt: skip
_DISK_FIELDS: Final = (
    ("TARGET", "name"), ("RD_REQS", "rd.reqs"), ("RD_BYTES", "rd.bytes"),
    ("RD_TIME_NS", "rd.times"), ("WR_REQS", "wr.reqs"), ("WR_BYTES", "wr.bytes"),
    ("WR_TIME_NS", "wr.times"), ("FL_REQS", "fl.reqs"), ("FL_TIME_NS", "fl.times"),
    ("CAPACITY", "capacity"), ("ALLOCATION", "allocation"), ("PHYSICAL", "physical"),
)  # fmt: skip
_VCPU_FIELDS: Final = (("STATE", "state"), ("TIME_NS", "time"), ("WAIT_NS", "wait"))
_BALLOON_FIELDS: Final = (
    ("CURRENT", "balloon.current"), ("MAXIMUM", "balloon.maximum"),
    ("UNUSED", "balloon.unused"), ("AVAILABLE", "balloon.available"),
    ("USABLE", "balloon.usable"), ("RSS", "balloon.rss"), ("SWAP_IN", "balloon.swap_in"),
    ("SWAP_OUT", "balloon.swap_out"), ("MAJOR_FAULT", "balloon.major_fault"),
    ("MINOR_FAULT", "balloon.minor_fault"),
)  # fmt: skip
_CPU_FIELDS: Final = (
    ("CPU_TIME_NS", "cpu.time"), ("CPU_USER_NS", "cpu.user"), ("CPU_SYSTEM_NS", "cpu.system"),
)  # fmt: skip


_GROUP_FIELDS: Final[dict[str, _Fields]] = {
    "net": _NIC_FIELDS,
    "block": _DISK_FIELDS,
    "vcpu": _VCPU_FIELDS,
}


@cache
def _keys(group: str, index: int) -> _Fields:
    """A group's fields with their libvirt keys spelled out for device ``index`` (cached)."""
    return tuple((name, f"{group}.{index}.{key}") for name, key in _GROUP_FIELDS[group])


def _vector(stats: Stats, index: int, keys: _Fields) -> dict[str, Any]:
    """One device's detail vector: ID plus every field libvirt returned."""
    vec: dict[str, Any] = {"ID": index}
    for name, key in keys:
        value = stats.get(key)
        if value is not None:
            vec[name] = value
    return vec


def _devices(stats: Stats, group: str) -> list[dict[str, Any]] | None:
    """Detail vectors of every device in ``group`` (None when libvirt returned no such group)."""
    count = stats.get(f"{group}.count")
    if count is None:
        return None
    return [_vector(stats, i, _keys(group, i)) for i in range(count)]


def _sum(vectors: list[dict[str, Any]], name: str) -> int:
    """Sum of one field over devices (a device lacking it counts 0)."""
    return sum(vec.get(name, 0) for vec in vectors)


def memory_kb(stats: Stats) -> int | None:
    """``MEMORY`` in KB: balloon.rss when present, else balloon.current, else None."""
    rss = stats.get("balloon.rss")
    return rss if rss is not None else stats.get("balloon.current")


def monitor_template(stats: Stats, cpu: float | None = None) -> Template:
    """The MONITOR template for one domain; ``cpu`` (percent of one core) is added when known."""
    state: int = stats.get("state.state", 0)
    reason: int = stats.get("state.reason", 0)
    skip_io = kvm_skip_io(state, reason)
    mon: Template = {}
    if cpu is not None:
        mon["CPU"] = cpu
    memory = memory_kb(stats)
    if memory is not None:
        mon["MEMORY"] = memory
    nics = _devices(stats, "net")
    if nics is not None:
        mon["NETRX"] = 0 if skip_io else _sum(nics, "RX_BYTES")
        mon["NETTX"] = 0 if skip_io else _sum(nics, "TX_BYTES")
    disks = _devices(stats, "block")
    if disks is not None:
        mon["DISKRDBYTES"] = 0 if skip_io else _sum(disks, "RD_BYTES")
        mon["DISKWRBYTES"] = 0 if skip_io else _sum(disks, "WR_BYTES")
        mon["DISKRDIOPS"] = 0 if skip_io else _sum(disks, "RD_REQS")
        mon["DISKWRIOPS"] = 0 if skip_io else _sum(disks, "WR_REQS")
    for name, key in _CPU_FIELDS:
        value = stats.get(key)
        if value is not None:
            mon[name] = value
    mon["STATE"] = state
    mon["REASON"] = reason
    for vec in nics or ():
        add(mon, "NIC", vec)
    for vec in disks or ():
        add(mon, "DISK", vec)
    for vec in _vcpus(stats):
        add(mon, "VCPU", vec)
    balloon = {name: stats[key] for name, key in _BALLOON_FIELDS if key in stats}
    if balloon:
        mon["BALLOON"] = balloon
    return mon


def _vcpus(stats: Stats) -> list[dict[str, Any]]:
    """vCPU vectors: no ``vcpu.count``; numbers run below ``vcpu.maximum``, maybe with gaps."""
    maximum = stats.get("vcpu.maximum")
    if maximum is None:
        return []
    found = (_vector(stats, i, _keys("vcpu", i)) for i in range(maximum))
    return [vec for vec in found if len(vec) > 1]
