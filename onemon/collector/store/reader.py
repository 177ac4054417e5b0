"""Reading the store: the start-up snapshot, monitoring history, and the state-change journal.

A reader has its own engine (a small pool), so worker threads of the API may share one; it
never writes and never migrates (the writer does, at start).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from onemon.collector.store import rows, schema
from onemon.collector.store.config import StoreConfig
from onemon.collector.store.engine import make_engine
from onemon.collector.store.errors import SchemaError
from onemon.collector.store.migrations import LATEST, current_version
from onemon.collector.store.records import Sample, Snapshot, StateChange

_Render = Callable[[Mapping[Any, Any]], Sample]


class StoreReader:
    """Read access to the store, safe to use from several threads."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        busy_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._engine: Engine = make_engine(
            url,
            writer=False,
            busy_timeout=busy_timeout,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
        )
        self._checked = False

    @classmethod
    def from_config(cls, config: StoreConfig) -> StoreReader:
        """A reader for the store ``config`` describes."""
        return cls(
            config.url, busy_timeout=config.busy_timeout, connect_timeout=config.connect_timeout
        )

    def close(self) -> None:
        """Close the reader's connections."""
        self._engine.dispose()

    def load(self) -> Snapshot:
        """All hosts, VMs and ordering progress, read in one transaction."""
        with self._begin(consistent=True) as conn:
            hosts = conn.execute(sa.select(schema.hosts).order_by(schema.hosts.c.id))
            host_list = [rows.host_from_row(r._mapping) for r in hosts]
            vms = conn.execute(sa.select(schema.vms).order_by(schema.vms.c.id))
            vm_list = [rows.vm_from_row(r._mapping) for r in vms]
            progress = conn.execute(sa.select(schema.progress))
            progress_list = [rows.progress_from_row(r._mapping) for r in progress]
        return Snapshot(hosts=host_list, vms=vm_list, progress=progress_list)

    def host_names(self) -> dict[int, str]:
        """Every stored host's name by id (host administration across shards)."""
        table = schema.hosts
        with self._begin() as conn:
            return {int(i): str(n) for i, n in conn.execute(sa.select(table.c.id, table.c.name))}

    def host_history(
        self, host_id: int, since: float, until: float | None = None, limit: int | None = None
    ) -> list[Sample]:
        """A host's samples with ``since <= ts < until``, oldest first; ``limit``: the latest N."""
        table = schema.host_monitoring
        return self._series(table, table.c.hid, table.c.last_mon_time, host_id, since, until, limit)

    def vm_history(
        self, vm_id: int, since: float, until: float | None = None, limit: int | None = None
    ) -> list[Sample]:
        """A VM's samples with ``since <= ts < until``, oldest first; ``limit``: the latest N."""
        table = schema.vm_monitoring
        return self._series(table, table.c.vmid, table.c.last_poll, vm_id, since, until, limit)

    def hosts_history(self, since: float, until: float | None = None) -> dict[int, list[Sample]]:
        """Every host's samples with ``since <= ts < until``, by host id, oldest first."""
        table = schema.host_monitoring
        return self._pool(table, table.c.hid, table.c.last_mon_time, since, until)

    def vms_history(self, since: float, until: float | None = None) -> dict[int, list[Sample]]:
        """Every VM's samples with ``since <= ts < until``, by VM id, oldest first."""
        table = schema.vm_monitoring
        return self._pool(table, table.c.vmid, table.c.last_poll, since, until)

    def state_changes(
        self, since_id: int = 0, vm_id: int | None = None, limit: int | None = None
    ) -> list[StateChange]:
        """Journal entries with ``id > since_id`` (of one VM if given), in order."""
        table = schema.state_changes
        query = sa.select(table).where(table.c.id > since_id).order_by(table.c.id)
        if vm_id is not None:
            query = query.where(table.c.vm_id == vm_id)
        if limit is not None:
            query = query.limit(limit)
        with self._begin() as conn:
            return [rows.state_change(r._mapping) for r in conn.execute(query)]

    # --- helpers -----------------------------------------------------------------------------

    def _series(
        self,
        table: sa.Table,
        key: sa.Column[Any],
        time: sa.Column[Any],
        ident: int,
        since: float,
        until: float | None,
        limit: int | None,
    ) -> list[Sample]:
        """One object's samples in a time range."""
        query = sa.select(table).where(key == ident, time >= since)
        if until is not None:
            query = query.where(time < until)
        render = _renderer(table)
        with self._begin() as conn:
            if limit is None:
                found = conn.execute(query.order_by(time))
                return [render(r._mapping) for r in found]
            found = conn.execute(query.order_by(time.desc()).limit(limit))
            return [render(r._mapping) for r in found][::-1]

    def _pool(
        self,
        table: sa.Table,
        key: sa.Column[Any],
        time: sa.Column[Any],
        since: float,
        until: float | None,
    ) -> dict[int, list[Sample]]:
        """All objects' samples in a time range, grouped by id."""
        query = sa.select(table).where(time >= since)
        if until is not None:
            query = query.where(time < until)
        render = _renderer(table)
        out: dict[int, list[Sample]] = {}
        with self._begin() as conn:
            for r in conn.execute(query.order_by(key, time)):
                mapping = r._mapping
                out.setdefault(mapping[key.name], []).append(render(mapping))
        return out

    @contextlib.contextmanager
    def _begin(self, *, consistent: bool = False) -> Iterator[Connection]:
        """A transaction (REPEATABLE READ when ``consistent``), checking the schema once."""
        if not self._checked:
            with self._engine.connect() as conn:
                self._check(conn)
            self._checked = True
        with self._engine.connect() as conn:
            if consistent and conn.dialect.name != "sqlite":  # SQLite: a read txn is a snapshot
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @staticmethod
    def _check(conn: Connection) -> None:
        """Refuse a database the writer has not created or upgraded yet."""
        with conn.begin():
            version = current_version(conn)
        if version != LATEST:
            raise SchemaError(
                f"store schema is version {version}, this code reads {LATEST}: "
                "start the collector (its writer upgrades the store)"
            )


def _renderer(table: sa.Table) -> _Render:
    """The row-to-sample function of a history table."""
    return rows.host_sample if table is schema.host_monitoring else rows.vm_sample
