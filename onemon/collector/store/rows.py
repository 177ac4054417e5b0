"""Conversions between the state model and compact table rows (JSON only for the irregular part).

The event loop only captures what a row will need (``capture_*``, ``journal_params``,
``progress_params``: references and scalars, no encoding); the ``*_params`` builders run in the
writer thread at commit time and return parameter tuples in the order of the ``*_COLUMNS``
names, as the writer's driver-level statements take them (the ``*_row`` dicts are the same rows
by column name). They read state objects under the contract in ``writer.StoreWriter``: each
mutable attribute is replaced wholesale, never changed in place, so one read of an attribute is
a consistent snapshot of it. They never raise on odd values: a figure that does not fit its
typed column goes to the row's JSON part instead, and anything JSON cannot hold becomes text.
"""

from __future__ import annotations

import base64
import enum
import json.encoder
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
Params = tuple[Any, ...]
"""A row's values in the order of its table's ``*_COLUMNS``."""
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

_HOST_FIGURES = ("free_cpu", "used_cpu", "free_memory", "used_memory", "netrx", "nettx")
_CAPACITY_FIELDS = tuple(f.name for f in fields(HostCapacity))

HOST_COLUMNS = (
    "id",
    "name",
    "state",
    "prev_state",
    "error",
    "im_mad",
    "vm_mad",
    "cluster_id",
    "last_seen",
    "last_monitored",
    "system",
    "capacity",
    "wilds",
    "zombies",
    "agent",
)
VM_COLUMNS = (
    "id",
    "host_id",
    "deploy_id",
    "report",
    "state",
    "lcm_state",
    "last_poll",
    "state_changed",
    "monitoring",
    "exec_result",
)
HOST_SAMPLE_COLUMNS = ("hid", "last_mon_time", *_HOST_FIGURES, "numa")
VM_SAMPLE_COLUMNS = ("vmid", "last_poll", "cpu", *VM_COUNTERS.values(), "extra")
JOURNAL_COLUMNS = ("ts", "host_id", "vm_id", "report", "source")
PROGRESS_COLUMNS = ("host_id", "msg_type", "boot_id", "seq", "window")

_COUNTER_KEYS = tuple(VM_COUNTERS)
_COLUMN_KEYS = ("CPU", *_COUNTER_KEYS)
_MISSING: Any = object()

MonitoringTexts = dict[int, tuple[Template, tuple[Any, ...], str | None]]
"""Per MONITOR template (by id, the template kept alive in the entry): its eight column figures
and its ``extra`` JSON, as ``vm_sample_params`` found them, for ``vm_params`` to reuse."""
_FIGURES_JSON = "{{" + ",".join(f'"{key}":{{}}' for key in _COLUMN_KEYS)
"""``{"CPU":{},"MEMORY":{},…``: the figures' part of a MONITOR template's JSON, to format."""

HostSampleCapture = tuple[int, float, float, float, int, int, int, int, list[dict[str, Any]]]
"""(host id, time, the six CAPACITY figures, NUMA list), taken on the event loop."""
VmSampleCapture = tuple[int, float, Template]
"""(VM id, time, the MONITOR template object), taken on the event loop."""


def plain(value: Any) -> Any:
    """A deep, JSON-safe copy: dicts with str keys, lists, str, int, bool, finite floats, None."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:  # list(): one atomic copy, never "changed size during iteration"
        return {k if type(k) is str else str(k): plain(v) for k, v in list(value.items())}
    if kind is list or kind is tuple:
        return [plain(v) for v in list(value)]
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


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_c: Any = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(  # compact_json's very settings, built once instead of per call
        None,  # no circular check: a container holding itself recurses, as in compact_json
        _not_serializable,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # no indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )
)


def _json(value: Any) -> str:
    """``compact_json(value)``, the same text, without building an encoder for every row."""
    if _encode_c is None:
        return compact_json(value)
    return "".join(_encode_c(value, 0))


def to_json(value: Any) -> str | None:
    """Compact JSON text of ``value`` (None when empty); odd values are made plain first."""
    if not value:
        return None
    try:
        return _json(value)
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


class TemplateCache:
    """The compact JSON of one template per key, reused while the same object comes back.

    Sound under the writer's contract (templates are replaced, never changed in place): the
    same object means the same text. A host's SYSTEM_HOST template is large and replaced only
    by SYSTEM_HOST, while its row is rewritten after every message from the host. Writer
    thread only.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, str | None]] = {}

    def json(self, key: int, value: Any) -> str | None:
        """``to_json(value)``, encoded again only when ``value`` is not the object seen last."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] is value:  # held here: its id is not reused
            return entry[1]
        text = to_json(value)
        self._entries[key] = (value, text)
        return text

    def forget(self, key: int) -> None:
        """Drop ``key``'s entry (its object is deleted)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def host_params(host: Host, systems: TemplateCache | None = None) -> Params:
    """The ``hosts`` row of ``host``, in HOST_COLUMNS order (writer thread).

    ``systems`` keeps the JSON of each host's SYSTEM_HOST template between batches.
    """
    cap = host.capacity
    capacity = {name: getattr(cap, name) for name in _CAPACITY_FIELDS}
    host_id, system = host.id, host.system
    return (
        host_id,
        host.name,
        int(host.state),
        int(host.prev_state),
        host.error,
        _text(host.im_mad, 64),
        _text(host.vm_mad, 64),
        host.cluster_id,
        float(host.last_seen),
        float(host.last_monitored),
        to_json(system) if systems is None else systems.json(host_id, system),
        to_json(capacity),
        to_json(host.wilds),
        to_json(host.zombies),
        to_json(host.agent),
    )


def host_row(host: Host) -> Row:
    """The ``hosts`` row of ``host``, by column name."""
    return dict(zip(HOST_COLUMNS, host_params(host), strict=True))


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


def vm_params(vm: Vm, texts: MonitoringTexts | None = None) -> Params:
    """The ``vms`` row of ``vm``, in VM_COLUMNS order (writer thread).

    With ``texts`` (filled by ``vm_sample_params`` for the same batch), a MONITOR template
    that is also a history sample is not encoded a second time: its JSON is its figures
    followed by its ``extra`` JSON (the same object, figures first).
    """
    monitoring = vm.monitoring
    text: str | None = None
    if texts:
        entry = texts.get(id(monitoring))
        if entry is not None and entry[0] is monitoring and (entry[2] or "{")[0] == "{":
            figures = _FIGURES_JSON.format(*map(float.__repr__, entry[1][:1]), *entry[1][1:])
            extra = entry[2]
            text = figures + "}" if extra is None else figures + "," + extra[1:]
    return (
        vm.id,
        vm.host_id,
        vm.deploy_id,
        _text(str(vm.report.value), 16),
        int(vm.state),
        int(vm.lcm_state),
        float(vm.last_poll),
        float(vm.state_changed),
        to_json(monitoring) if text is None else text,
        to_json(vm.exec_result),
    )


def vm_row(vm: Vm) -> Row:
    """The ``vms`` row of ``vm``, by column name."""
    return dict(zip(VM_COLUMNS, vm_params(vm), strict=True))


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


def capture_host_sample(host_id: int, ts: float, cap: HostCapacity) -> HostSampleCapture:
    """What a ``host_monitoring`` row needs, taken now (event loop).

    The figures are copied: a HostCapacity is updated in place by the next MONITOR_HOST. The
    NUMA list is kept by reference: it is replaced, never changed in place.
    """
    return (
        host_id,
        ts,
        cap.free_cpu,
        cap.used_cpu,
        cap.free_memory,
        cap.used_memory,
        cap.netrx,
        cap.nettx,
        cap.numa,
    )


def host_sample_params(sample: HostSampleCapture) -> Params:
    """A ``host_monitoring`` row, in HOST_SAMPLE_COLUMNS order (writer thread)."""
    host_id, ts, free_cpu, used_cpu, free_memory, used_memory, netrx, nettx, numa = sample
    return (
        host_id,
        float(ts),
        _finite(free_cpu),
        _finite(used_cpu),
        _int64(free_memory),
        _int64(used_memory),
        _int64(netrx),
        _int64(nettx),
        to_json(numa),
    )


def host_sample_row(host_id: int, ts: float, cap: HostCapacity) -> Row:
    """A ``host_monitoring`` row: CAPACITY figures in columns, NUMA nodes as JSON."""
    params = host_sample_params(capture_host_sample(host_id, ts, cap))
    return dict(zip(HOST_SAMPLE_COLUMNS, params, strict=True))


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


def vm_sample_params(sample: VmSampleCapture, texts: MonitoringTexts | None = None) -> Params:
    """A ``vm_monitoring`` row, in VM_SAMPLE_COLUMNS order (writer thread): the usual figures
    in columns, everything else in ``extra`` (kept in ``texts`` for ``vm_params``)."""
    vm_id, ts, monitoring = sample
    extra = dict(monitoring)  # one atomic copy; the figures that have a column leave it
    pop = extra.pop
    cpu = pop("CPU", _MISSING)
    clean = type(cpu) is float and cpu - cpu == 0.0  # a finite float: its column as it is
    if not clean:
        if cpu is _MISSING:
            cpu = None
        else:
            number = _finite(cpu)
            if number is None:
                extra["CPU"] = cpu
            cpu = number
    row: list[Any] = [vm_id, float(ts), cpu]
    for key in _COUNTER_KEYS:
        value = pop(key, _MISSING)
        if type(value) is int and _I64_MIN <= value <= _I64_MAX:  # the usual case, inline
            row.append(value)
        elif value is _MISSING:
            row.append(None)
            clean = False
        else:
            number = _int64(value)
            if number is None:
                extra[key] = value
            row.append(number)
            clean = False
    text = to_json(extra)
    if clean and texts is not None:  # every figure in its column as it was: vm_params may
        texts[id(monitoring)] = (monitoring, tuple(row[2:]), text)  # put them back in front
    row.append(text)
    return tuple(row)


def vm_sample_row(vm_id: int, ts: float, monitoring: Template) -> Row:
    """A ``vm_monitoring`` row: the usual figures in columns, everything else in ``extra``."""
    params = vm_sample_params((vm_id, ts, monitoring))
    return dict(zip(VM_SAMPLE_COLUMNS, params, strict=True))


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


def journal_params(
    ts: float, host_id: int | None, vm_id: int | None, report: str, source: str
) -> Params:
    """A ``state_changes`` row, in JOURNAL_COLUMNS order (scalars only: cheap, event loop)."""
    return (float(ts), host_id, vm_id, _text(str(report), 32), _text(str(source), 64))


def journal_row(ts: float, host_id: int | None, vm_id: int | None, report: str, source: str) -> Row:
    """A ``state_changes`` row, by column name."""
    params = journal_params(ts, host_id, vm_id, report, source)
    return dict(zip(JOURNAL_COLUMNS, params, strict=True))


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


def progress_params(host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int) -> Params:
    """A ``progress`` row, in PROGRESS_COLUMNS order (checked now, on the event loop: a caller's
    error raises here); the unsigned 64-bit window is stored as a signed BIGINT."""
    if not 0 <= window < _U64:
        raise ValueError(f"window must fit in 64 bits: {window}")
    if not _I64_MIN <= seq <= _I64_MAX:
        raise ValueError(f"seq must fit in 64 bits: {seq}")
    signed = window - _U64 if window > _I64_MAX else window
    return (host_id, int(msg_type), bytes(boot_id), seq, signed)


def progress_row(host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int) -> Row:
    """A ``progress`` row, by column name."""
    params = progress_params(host_id, msg_type, boot_id, seq, window)
    return dict(zip(PROGRESS_COLUMNS, params, strict=True))


def progress_from_row(row: StoredRow) -> ProgressRow:
    """The ProgressRow a ``progress`` row holds."""
    return ProgressRow(
        host_id=row["host_id"],
        msg_type=row["msg_type"],
        boot_id=bytes(row["boot_id"]),
        seq=row["seq"],
        window=row["window"] % _U64,
    )
