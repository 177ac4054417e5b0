"""Conversions between the state model and compact table rows (JSON only for the irregular part).

Row builders run on the event loop, so they copy what they keep: templates become compact JSON
text at once (the caller may go on mutating its objects), and a row holds only scalars and str,
which the garbage collector does not track however long the backlog grows. They never raise on
odd values: a figure that does not fit its typed column goes to the row's JSON part instead, and
anything JSON cannot hold becomes text.
"""

from __future__ import annotations

import base64
import enum
import logging
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from onemon.collector.model import Host, HostCapacity, HostState, LcmState, Vm, VmReport, VmState
from onemon.collector.store.coltypes import compact_json
from onemon.collector.store.records import ProgressRow, Sample, StateChange
from onemon.wire.model import Template

log = logging.getLogger("onemon.collector.store")

Row = dict[str, Any]
StoredRow = Mapping[Any, Any]
"""A row as read back (SQLAlchemy's RowMapping)."""
E = TypeVar("E", bound=enum.Enum)

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_U64 = 1 << 64

VM_COUNTERS: dict[str, str] = {
    "MEMORY": "memory",
    "NETRX": "netrx",
    "NETTX": "nettx",
    "DISKRDBYTES": "diskrdbytes",
    "DISKWRBYTES": "diskwrbytes",
    "DISKRDIOPS": "diskrdiops",
    "DISKWRIOPS": "diskwriops",
}
"""MONITOR keys with their own integer column; ``CPU`` has a float one; the rest go to ``extra``."""

_VM_BLANK: Row = {"vmid": 0, "last_poll": 0.0, "cpu": None, "extra": None} | dict.fromkeys(
    VM_COUNTERS.values()
)
_HOST_FIGURES = ("free_cpu", "used_cpu", "free_memory", "used_memory", "netrx", "nettx")
_CAPACITY_FIELDS = tuple(f.name for f in fields(HostCapacity))


def plain(value: Any) -> Any:
    """A deep, JSON-safe copy: dicts with str keys, lists, str, int, bool, finite floats, None."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if isinstance(value, bool | int):  # IntEnum and friends
        return int(value)
    if isinstance(value, float):
        return plain(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return plain(dict(value))
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def to_json(value: Any) -> str | None:
    """Compact JSON text of ``value`` (None when empty); odd values are made plain first."""
    if not value:
        return None
    try:
        return compact_json(value)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return compact_json(plain(value))
    except (TypeError, ValueError, RecursionError):  # e.g. a container that contains itself
        return compact_json(repr(value)[:65536])


def _int64(value: Any) -> int | None:
    """``value`` as a 64-bit signed integer, or None when it is not one."""
    kind = type(value)
    if kind is int:
        return value if _I64_MIN <= value <= _I64_MAX else None
    if kind is float:
        return int(value) if value.is_integer() and _I64_MIN <= value <= _I64_MAX else None
    if kind is str:
        try:
            number = int(value)
        except ValueError:
            return None
        return number if _I64_MIN <= number <= _I64_MAX else None
    return None


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one."""
    kind = type(value)
    if kind is float or kind is int:
        number = float(value)
    elif kind is str:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _enum(cls: type[E], value: Any, default: E) -> E:
    """``cls(value)``; an unknown value (a newer writer's) loads as ``default``, logged."""
    try:
        return cls(value)
    except ValueError:
        log.warning("store: unknown %s %r, loaded as %s", cls.__name__, value, default.name)
        return default


def _text(value: str, limit: int) -> str:
    """``value`` cut to a bounded column."""
    return value if len(value) <= limit else value[:limit]


# --- state -----------------------------------------------------------------------------------


def host_row(host: Host) -> Row:
    """The ``hosts`` row of ``host``."""
    cap = host.capacity
    capacity = {name: getattr(cap, name) for name in _CAPACITY_FIELDS}
    return {
        "id": host.id,
        "name": host.name,
        "state": int(host.state),
        "prev_state": int(host.prev_state),
        "error": host.error,
        "im_mad": _text(host.im_mad, 64),
        "vm_mad": _text(host.vm_mad, 64),
        "cluster_id": host.cluster_id,
        "last_seen": float(host.last_seen),
        "last_monitored": float(host.last_monitored),
        "system": to_json(host.system),
        "capacity": to_json(capacity),
        "wilds": to_json(host.wilds),
        "zombies": to_json(host.zombies),
        "agent": to_json(host.agent),
    }


def host_from_row(row: StoredRow) -> Host:
    """The Host a ``hosts`` row holds."""
    stored = row["capacity"] or {}
    capacity = HostCapacity(**{k: v for k, v in stored.items() if k in _CAPACITY_FIELDS})
    return Host(
        id=row["id"],
        name=row["name"],
        state=_enum(HostState, row["state"], HostState.INIT),
        prev_state=_enum(HostState, row["prev_state"], HostState.INIT),
        error=row["error"],
        im_mad=row["im_mad"],
        vm_mad=row["vm_mad"],
        cluster_id=row["cluster_id"],
        last_seen=row["last_seen"],
        last_monitored=row["last_monitored"],
        system=row["system"] or {},
        capacity=capacity,
        wilds=row["wilds"] or [],
        zombies=row["zombies"] or [],
        agent=row["agent"] or {},
    )


def vm_row(vm: Vm) -> Row:
    """The ``vms`` row of ``vm``."""
    return {
        "id": vm.id,
        "host_id": vm.host_id,
        "deploy_id": vm.deploy_id,
        "report": _text(str(vm.report.value), 16),
        "state": int(vm.state),
        "lcm_state": int(vm.lcm_state),
        "last_poll": float(vm.last_poll),
        "state_changed": float(vm.state_changed),
        "monitoring": to_json(vm.monitoring),
        "exec_result": to_json(vm.exec_result),
    }


def vm_from_row(row: StoredRow) -> Vm:
    """The Vm a ``vms`` row holds."""
    return Vm(
        id=row["id"],
        host_id=row["host_id"],
        deploy_id=row["deploy_id"],
        report=_enum(VmReport, row["report"], VmReport.UNKNOWN),
        state=_enum(VmState, row["state"], VmState.ACTIVE),
        lcm_state=_enum(LcmState, row["lcm_state"], LcmState.UNKNOWN),
        last_poll=row["last_poll"],
        state_changed=row["state_changed"],
        monitoring=row["monitoring"] or {},
        exec_result=row["exec_result"] or {},
    )


# --- history ---------------------------------------------------------------------------------


def host_sample_row(host_id: int, ts: float, cap: HostCapacity) -> Row:
    """A ``host_monitoring`` row: CAPACITY figures in columns, NUMA nodes as JSON."""
    return {
        "hid": host_id,
        "last_mon_time": float(ts),
        "free_cpu": _finite(cap.free_cpu),
        "used_cpu": _finite(cap.used_cpu),
        "free_memory": _int64(cap.free_memory),
        "used_memory": _int64(cap.used_memory),
        "netrx": _int64(cap.netrx),
        "nettx": _int64(cap.nettx),
        "numa": to_json(cap.numa),
    }


def host_sample(row: StoredRow) -> Sample:
    """(time, {FREE_CPU, USED_CPU, FREE_MEMORY, USED_MEMORY, NETRX, NETTX[, NUMA_NODE]})."""
    out: Template = {}
    for column in _HOST_FIGURES:
        value = row[column]
        if value is not None:
            out[column.upper()] = value
    if row["numa"]:
        out["NUMA_NODE"] = row["numa"]
    return row["last_mon_time"], out


def vm_sample_row(vm_id: int, ts: float, monitoring: Template) -> Row:
    """A ``vm_monitoring`` row: the usual figures in columns, everything else in ``extra``."""
    row = _VM_BLANK.copy()
    row["vmid"] = vm_id
    row["last_poll"] = float(ts)
    extra: Template | None = None
    for key, value in monitoring.items():
        column = VM_COUNTERS.get(key)
        if column is not None:
            if type(value) is int and _I64_MIN <= value <= _I64_MAX:  # the usual case, inline
                row[column] = value
                continue
            number = _int64(value)
            if number is not None:
                row[column] = number
                continue
        elif key == "CPU":
            cpu = _finite(value)
            if cpu is not None:
                row["cpu"] = cpu
                continue
        if extra is None:
            extra = {}
        extra[key] = value
    row["extra"] = to_json(extra)
    return row


def vm_sample(row: StoredRow) -> Sample:
    """(time, {CPU, MEMORY, NETRX, …, and the extra attributes})."""
    out: Template = {}
    if row["cpu"] is not None:
        out["CPU"] = row["cpu"]
    for key, column in VM_COUNTERS.items():
        value = row[column]
        if value is not None:
            out[key] = value
    if row["extra"]:
        out.update(row["extra"])
    return row["last_poll"], out


# --- journal and progress --------------------------------------------------------------------


def journal_row(ts: float, host_id: int | None, vm_id: int | None, report: str, source: str) -> Row:
    """A ``state_changes`` row."""
    return {
        "ts": float(ts),
        "host_id": host_id,
        "vm_id": vm_id,
        "report": _text(str(report), 32),
        "source": _text(str(source), 64),
    }


def state_change(row: StoredRow) -> StateChange:
    """The StateChange a ``state_changes`` row holds."""
    return StateChange(
        id=row["id"],
        ts=row["ts"],
        host_id=row["host_id"],
        vm_id=row["vm_id"],
        report=row["report"],
        source=row["source"],
    )


def progress_row(host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int) -> Row:
    """A ``progress`` row; the unsigned 64-bit window is stored as a signed BIGINT."""
    if not 0 <= window < _U64:
        raise ValueError(f"window must fit in 64 bits: {window}")
    if not _I64_MIN <= seq <= _I64_MAX:
        raise ValueError(f"seq must fit in 64 bits: {seq}")
    return {
        "host_id": host_id,
        "msg_type": int(msg_type),
        "boot_id": bytes(boot_id),
        "seq": seq,
        "window": window - _U64 if window > _I64_MAX else window,
    }


def progress_from_row(row: StoredRow) -> ProgressRow:
    """The ProgressRow a ``progress`` row holds."""
    return ProgressRow(
        host_id=row["host_id"],
        msg_type=row["msg_type"],
        boot_id=bytes(row["boot_id"]),
        seq=row["seq"],
        window=row["window"] % _U64,
    )
