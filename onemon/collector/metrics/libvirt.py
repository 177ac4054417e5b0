"""Per-domain ``opennebula_libvirt_*`` families from MONITOR_VM detail vectors (reference §6.3).

As OpenNebula's libvirt exporter, but Prometheus-correct: cumulative figures are counters
ending in ``_total``, times are seconds (float), sizes bytes. Device labels: ``vnic``/``disk``/
``vcpu`` are libvirt's device index (``ID``, else the position), ``device`` the device name
(``TARGET``, else ``NAME``: ``one-12-0`` for a vNIC, ``vda`` for a disk).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from itertools import compress, repeat
from typing import Any, Final

from .access import Fields, Rows, as_vectors, distinct
from .columns import column
from .labels import VmOwner, sub
from .sink import Sink
from .text import kib, ns, plain

_NIC_LABELS: Final = ("vnic", "device")
_DISK_LABELS: Final = ("disk", "device")
_VCPU_LABELS: Final = ("vcpu",)

DOMAIN: Final[Fields] = (
    ("opennebula_libvirt_state", "STATE", plain),
    ("opennebula_libvirt_state_reason", "REASON", plain),
    ("opennebula_libvirt_cpu_seconds_total", "CPU_TIME_NS", ns),
    ("opennebula_libvirt_cpu_user_seconds_total", "CPU_USER_NS", ns),
    ("opennebula_libvirt_cpu_system_seconds_total", "CPU_SYSTEM_NS", ns),
)
_BALLOON: Final[Fields] = (
    ("opennebula_libvirt_memory_total_bytes", "CURRENT", kib),
    ("opennebula_libvirt_memory_maximum_bytes", "MAXIMUM", kib),
    ("opennebula_libvirt_memory_unused_bytes", "UNUSED", kib),
    ("opennebula_libvirt_memory_available_bytes", "AVAILABLE", kib),
    ("opennebula_libvirt_memory_usable_bytes", "USABLE", kib),
    ("opennebula_libvirt_memory_rss_bytes", "RSS", kib),
    ("opennebula_libvirt_memory_swapin_bytes_total", "SWAP_IN", kib),
    ("opennebula_libvirt_memory_swapout_bytes_total", "SWAP_OUT", kib),
    ("opennebula_libvirt_memory_major_faults_total", "MAJOR_FAULT", plain),
    ("opennebula_libvirt_memory_minor_faults_total", "MINOR_FAULT", plain),
)
_NIC: Final[Fields] = (
    ("opennebula_libvirt_net_rx_bytes_total", "RX_BYTES", plain),
    ("opennebula_libvirt_net_rx_packets_total", "RX_PACKETS", plain),
    ("opennebula_libvirt_net_rx_errors_total", "RX_ERRS", plain),
    ("opennebula_libvirt_net_rx_drops_total", "RX_DROP", plain),
    ("opennebula_libvirt_net_tx_bytes_total", "TX_BYTES", plain),
    ("opennebula_libvirt_net_tx_packets_total", "TX_PACKETS", plain),
    ("opennebula_libvirt_net_tx_errors_total", "TX_ERRS", plain),
    ("opennebula_libvirt_net_tx_drops_total", "TX_DROP", plain),
)
_DISK: Final[Fields] = (
    ("opennebula_libvirt_block_rd_requests_total", "RD_REQS", plain),
    ("opennebula_libvirt_block_rd_bytes_total", "RD_BYTES", plain),
    ("opennebula_libvirt_block_rd_time_seconds_total", "RD_TIME_NS", ns),
    ("opennebula_libvirt_block_wr_requests_total", "WR_REQS", plain),
    ("opennebula_libvirt_block_wr_bytes_total", "WR_BYTES", plain),
    ("opennebula_libvirt_block_wr_time_seconds_total", "WR_TIME_NS", ns),
    ("opennebula_libvirt_block_fl_requests_total", "FL_REQS", plain),
    ("opennebula_libvirt_block_fl_time_seconds_total", "FL_TIME_NS", ns),
    ("opennebula_libvirt_block_virtual_bytes", "CAPACITY", plain),
    ("opennebula_libvirt_block_allocation_bytes", "ALLOCATION", plain),
    ("opennebula_libvirt_block_physical_bytes", "PHYSICAL", plain),
)
_VCPU: Final[Fields] = (
    ("opennebula_libvirt_vcpu_state", "STATE", plain),
    ("opennebula_libvirt_vcpu_time_seconds_total", "TIME_NS", ns),
    ("opennebula_libvirt_vcpu_wait_seconds_total", "WAIT_NS", ns),
)

_Vector = tuple[str, tuple[str, ...], Fields, str | None]

_VECTORS: Final[tuple[_Vector, ...]] = (
    ("NIC", _NIC_LABELS, _NIC, "opennebula_libvirt_net_devices"),
    ("DISK", _DISK_LABELS, _DISK, "opennebula_libvirt_block_devices"),
    ("VCPU", _VCPU_LABELS, _VCPU, None),
)
"""Vector key, device label names, fields, family counting the devices."""


def _name(vec: dict[str, Any]) -> Any:
    """The device name: TARGET, else NAME, else empty."""
    name = vec.get("TARGET")
    if name is None:
        name = vec.get("NAME")
    return "" if name is None else name


def _device_tags(owner: VmOwner, names: tuple[str, ...], vecs: list[dict[str, Any]]) -> list[str]:
    """Label sets of a domain's devices: index (ID, else position), then the name if asked."""
    if len(names) == 1:
        return [sub(owner, names, (v.get("ID", i),)) for i, v in enumerate(vecs)]
    return [sub(owner, names, (v.get("ID", i), _name(v))) for i, v in enumerate(vecs)]


def _present(owners: list[VmOwner], mons: list[dict[str, Any]], key: str) -> Iterator[Any]:
    """``(owner, value)`` of the domains whose monitoring has ``key``."""
    found = list(map(dict.get, mons, repeat(key)))
    present = list(map(operator.is_not, found, repeat(None)))
    return zip(compress(owners, present), compress(found, present), strict=True)


def _kind(sink: Sink, owners: list[VmOwner], mons: list[dict[str, Any]], vector: _Vector) -> None:
    """One vector kind across every domain: device counts, then one column per field."""
    key, names, fields, counter = vector
    rows, count_tags, counts = Rows(), [], []
    for owner, found in _present(owners, mons, key):
        try:
            vecs = [found] if type(found) is dict else as_vectors(found)
            tags = _device_tags(owner, names, vecs)
        except Exception:  # state changing under us, or a vector of a shape nobody expected
            sink.skipped += 1
            continue
        count_tags.append(owner.braces)
        counts.append(len(vecs))
        if len(vecs) == 1:
            rows.tags.append(tags[0])
            rows.vecs.append(vecs[0])
        else:
            rows.extend(distinct(list(zip(tags, vecs, strict=True))))
    if counter is not None:
        column(sink, counter, count_tags, counts, plain)
    rows.write(sink, fields)


def emit(sink: Sink, owners: list[VmOwner], mons: list[dict[str, Any]]) -> None:
    """The vector families of every domain (its scalars are :data:`DOMAIN`)."""
    balloons = Rows()
    for owner, found in _present(owners, mons, "BALLOON"):
        vecs = [found] if type(found) is dict else as_vectors(found)
        if vecs:
            balloons.tags.append(owner.braces)
            balloons.vecs.append(vecs[0])
    balloons.write(sink, _BALLOON)
    for vector in _VECTORS:
        _kind(sink, owners, mons, vector)
