"""A batch's pending objects turned into statement parameters, and those written (writer thread).

The event loop hands the store references (hosts, VMs, captures); here they are read, as they
are now, into parameter tuples, a row that cannot be built is dropped and reported, and the
rows go to the database in one bulk statement per table.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from onemon.collector.model import Host
from onemon.collector.store import rows, schema
from onemon.collector.store.backlog import HOST_SAMPLE, Batch, Entry
from onemon.collector.store.dml import BulkWrite

_IN_CHUNK = 500
YIELD_ROWS = 256
"""Rows built between two yields of the GIL (about a millisecond of Python; 64 cost ~10 % more
CPU): the event loop, when it has datagrams waiting, runs first, so that under overload the
backlog sheds history instead of the kernel dropping datagrams (the writer uses what is left)."""
_BULK = (
    ("hosts", schema.hosts, rows.HOST_COLUMNS, True),
    ("vms", schema.vms, rows.VM_COLUMNS, True),
    ("progress", schema.progress, rows.PROGRESS_COLUMNS, True),
    ("journal", schema.state_changes, rows.JOURNAL_COLUMNS, False),
    ("host_monitoring", schema.host_monitoring, rows.HOST_SAMPLE_COLUMNS, True),
    ("vm_monitoring", schema.vm_monitoring, rows.VM_SAMPLE_COLUMNS, True),
)
"""(name, table, columns, upsert) of the statements that write batches."""


@dataclass(slots=True)
class Rows:
    """A batch turned into parameter tuples (writer thread)."""

    hosts: list[rows.Params] = field(default_factory=list)
    deleted_hosts: list[int] = field(default_factory=list)
    vms: list[rows.Params] = field(default_factory=list)
    deleted_vms: list[int] = field(default_factory=list)
    progress: list[rows.Params] = field(default_factory=list)
    journal: list[rows.Params] = field(default_factory=list)
    host_samples: list[rows.Params] = field(default_factory=list)
    vm_samples: list[rows.Params] = field(default_factory=list)


def bulk_statements(dialect: Dialect) -> dict[str, BulkWrite]:
    """The statements that write batches, by name, for ``dialect``."""
    return {
        name: BulkWrite(dialect, table, columns, upsert=upsert)
        for name, table, columns, upsert in _BULK
    }


class RowBuilder:
    """Builds a batch's rows; one that fails to build is dropped and given to ``on_error``."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self.systems = rows.TemplateCache()
        """SYSTEM_HOST JSON kept between batches (re-encoded only when the template changes)."""
        self._on_error = on_error

    def prepare(self, batch: Batch) -> Rows:
        """Serialize the objects ``batch`` refers to, as they are now; drop rows that fail.

        A dropped row is removed from ``batch`` too, so a retry does not count it again.
        """
        work = Rows()
        work.hosts = self._state_rows(batch.hosts, self._host_params, work.deleted_hosts)
        for host_id in work.deleted_hosts:
            self.systems.forget(host_id)
        texts: rows.MonitoringTexts = {}  # history first: a VM's row reuses its sample's JSON
        if batch.history:
            failed: set[int] = set()
            work.host_samples = self._history_rows(
                (e for _, kind, e in batch.history if kind == HOST_SAMPLE),
                rows.host_sample_params,
                failed,
            )
            work.vm_samples = self._history_rows(
                (e for _, kind, e in batch.history if kind != HOST_SAMPLE),
                functools.partial(rows.vm_sample_params, texts=texts),
                failed,
            )
            if failed:
                batch.history = [item for item in batch.history if id(item[2]) not in failed]
        work.vms = self._state_rows(
            batch.vms, functools.partial(rows.vm_params, texts=texts), work.deleted_vms
        )
        work.progress = list(batch.progress.values())
        work.journal = [row for _, row in batch.journal]
        return work

    def _host_params(self, host: Host) -> rows.Params:
        """``rows.host_params`` with the SYSTEM_HOST JSON kept between batches."""
        return rows.host_params(host, self.systems)

    def _state_rows(
        self,
        pending: dict[int, Entry | None],
        build: Callable[[Any], rows.Params],
        deleted: list[int],
    ) -> list[rows.Params]:
        """Rows of the pending hosts or VMs; the ids to delete go to ``deleted``."""
        try:  # the usual case, every row builds at once; else row by row (_build) below
            built = _build_all(build, [obj for obj in pending.values() if obj is not None])
        except Exception:  # counted and logged by _build, row by row
            built = None
        if built is not None:
            if len(built) != len(pending):
                deleted.extend(key for key, obj in pending.items() if obj is None)
            return built
        out: list[rows.Params] = []
        for key, obj in list(pending.items()):
            if obj is None:
                deleted.append(key)
                continue
            params = self._build(build, obj)
            if params is None:
                del pending[key]
            else:
                out.append(params)
        return out

    def _history_rows(
        self, entries: Iterable[Entry], build: Callable[[Any], rows.Params], failed: set[int]
    ) -> list[rows.Params]:
        """Rows of history captures; the same key twice: the later one wins."""
        entries = list(entries)
        try:  # the usual case, every row builds at once; else row by row (_build) below
            built = _build_all(build, entries)
        except Exception:  # counted and logged by _build, row by row
            built = None
        if built is not None:
            return list({(params[0], params[1]): params for params in built}.values())
        out: dict[tuple[Any, Any], rows.Params] = {}
        for entry in entries:
            params = self._build(build, entry)
            if params is None:
                failed.add(id(entry))
            else:
                out[params[0], params[1]] = params
        return list(out.values())

    def _build(self, build: Callable[[Any], rows.Params], entry: Entry) -> rows.Params | None:
        """``build(entry)``, read again once if it changed meanwhile; None (counted) if it fails."""
        try:
            try:
                return build(entry)
            except RuntimeError:  # e.g. "dict changed size during iteration": read it again
                return build(entry)
        except Exception as exc:
            self._on_error(exc)
            return None


def write_rows(conn: Connection, bulk: dict[str, BulkWrite], work: Rows) -> None:
    """Upserts and deletes of state, progress, journal inserts, history upserts."""
    for name, table, upserts, deleted in (
        ("hosts", schema.hosts, work.hosts, work.deleted_hosts),
        ("vms", schema.vms, work.vms, work.deleted_vms),
    ):
        bulk[name].run(conn, upserts)
        for start in range(0, len(deleted), _IN_CHUNK):
            ids = deleted[start : start + _IN_CHUNK]
            conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
            if name == "hosts":
                progress = schema.progress
                conn.execute(sa.delete(progress).where(progress.c.host_id.in_(ids)))
    bulk["progress"].run(conn, work.progress)
    bulk["journal"].run(conn, work.journal)
    bulk["host_monitoring"].run(conn, work.host_samples)
    bulk["vm_monitoring"].run(conn, work.vm_samples)


def _build_all(build: Callable[[Any], rows.Params], entries: list[Entry]) -> list[rows.Params]:
    """``[build(e) for e in entries]``, yielding the GIL every YIELD_ROWS rows."""
    if len(entries) <= YIELD_ROWS:
        return [build(entry) for entry in entries]
    out: list[rows.Params] = []
    for start in range(0, len(entries), YIELD_ROWS):
        time.sleep(0)  # releases the GIL: a thread waiting for it (the event loop) goes first
        out += [build(entry) for entry in entries[start : start + YIELD_ROWS]]
    return out
