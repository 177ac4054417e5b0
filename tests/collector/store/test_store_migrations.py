"""Migrations build the current schema from nothing and from every older version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from store_helpers import config, full_host

from onemon.collector.store import SchemaError, StoreReader, StoreWriter, migrate, schema
from onemon.collector.store.engine import make_engine
from onemon.collector.store.migrations import LATEST, MIGRATIONS, current_version
from onemon.collector.store.rows import host_row

if TYPE_CHECKING:
    from conftest import Backend


def shape(engine: sa.Engine) -> dict[str, object]:
    """Tables with their columns (name, nullable), primary keys and indexes, as reflected."""
    out: dict[str, object] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in sorted(inspector.get_table_names()):
            columns = sorted((c["name"], bool(c["nullable"])) for c in inspector.get_columns(table))
            keys = inspector.get_pk_constraint(table)["constrained_columns"]
            indexes = sorted(
                (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
            )
            out[table] = (columns, sorted(keys), indexes)
    return out


def declared() -> dict[str, object]:
    """The same shape, from ``schema.metadata``."""
    out: dict[str, object] = {}
    for table in sorted(schema.metadata.tables.values(), key=lambda t: t.name):
        columns = sorted((c.name, bool(c.nullable)) for c in table.columns)
        keys = sorted(c.name for c in table.primary_key.columns)
        indexes = sorted((i.name, tuple(c.name for c in i.columns)) for i in table.indexes)
        out[table.name] = (columns, keys, indexes)
    return out


def test_from_empty_gives_the_declared_schema(backend: Backend) -> None:
    engine = make_engine(backend.url, writer=True)
    try:
        assert migrate(engine) == 0
        assert shape(engine) == declared()
        assert migrate(engine) == LATEST  # idempotent
        with engine.connect() as conn:
            assert current_version(conn) == LATEST
    finally:
        engine.dispose()


@pytest.mark.parametrize("start", range(1, LATEST))
def test_from_an_older_version_keeps_the_data(backend: Backend, start: int) -> None:
    engine = make_engine(backend.url, writer=True)
    try:
        migrate(engine, target=start)
        with engine.begin() as conn:
            assert current_version(conn) == start
            conn.execute(sa.insert(schema.hosts), [host_row(full_host(3))])
            conn.execute(
                sa.insert(schema.vm_monitoring),
                [{"vmid": 1, "last_poll": 10.0, "cpu": 2.5, "extra": {"X": 1}}],
            )
        assert migrate(engine) == start
        assert shape(engine) == declared()
    finally:
        engine.dispose()
    reader = StoreReader(backend.url)
    try:
        assert reader.load().hosts == [full_host(3)]
        assert reader.vm_history(1, 0) == [(10.0, {"CPU": 2.5, "X": 1})]
    finally:
        reader.close()


def test_version_n_minus_1_upgrades_at_writer_start(backend: Backend) -> None:
    engine = make_engine(backend.url, writer=True)
    migrate(engine, target=LATEST - 1)
    engine.dispose()
    writer = StoreWriter(config(backend))
    writer.start()
    writer.stop()
    engine = make_engine(backend.url, writer=True)
    try:
        with engine.connect() as conn:
            assert current_version(conn) == LATEST
    finally:
        engine.dispose()


def test_a_newer_schema_is_refused(backend: Backend) -> None:
    engine = make_engine(backend.url, writer=True)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": LATEST + 1})
        with pytest.raises(SchemaError):
            migrate(engine)
    finally:
        engine.dispose()


def test_migrations_are_numbered_steps() -> None:
    assert len(MIGRATIONS) == LATEST >= 2
    assert all(step.__doc__ for step in MIGRATIONS)
