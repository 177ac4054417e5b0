"""Statements the writer runs: driver-level bulk inserts and upserts, chunked retention deletes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_EXECUTEMANY_PG = ("psycopg",)
"""PostgreSQL drivers whose ``executemany`` batches (psycopg 3 pipelines); the others run one
round trip per row there, so they get multi-row VALUES statements instead."""
VALUES_ROWS = 1000
"""Rows per multi-row VALUES statement."""


def delete_older(
    conn: Connection, column: sa.Column[Any], cutoff: float, chunk: int
) -> tuple[int, bool]:
    """Delete about ``chunk`` of the oldest rows with ``column < cutoff``; (deleted, finished)."""
    table = column.table
    boundary = conn.execute(
        sa.select(column).where(column < cutoff).order_by(column).offset(chunk).limit(1)
    ).scalar()
    if boundary is None:
        result = conn.execute(sa.delete(table).where(column < cutoff))
        return max(result.rowcount, 0), True
    result = conn.execute(sa.delete(table).where(column <= boundary))
    return max(result.rowcount, 0), False


class BulkWrite:
    """One INSERT (or upsert) as driver SQL text, for many parameter tuples at once.

    Built once per table and dialect; runs through ``Connection.exec_driver_sql``, which binds
    the tuples as they are (no per-row SQLAlchemy processing) while SQLAlchemy still wraps the
    driver's errors and notices lost connections. Values must be what the driver takes as is:
    int, float, str, bytes, None (the row builders in ``rows`` make them so).

    SQLite, psycopg 3 and the MySQL drivers batch ``executemany`` themselves (PyMySQL and
    mysqlclient rewrite it into multi-row INSERTs); other PostgreSQL drivers (psycopg2) get
    multi-row VALUES statements of up to VALUES_ROWS rows. Rows that share a key in one call
    are not allowed (PostgreSQL refuses them in a multi-row upsert); the writer coalesces them.
    """

    def __init__(self, dialect: Dialect, table: sa.Table, columns: Sequence[str], *, upsert: bool):
        placeholder = _PLACEHOLDERS.get(str(dialect.paramstyle))
        if placeholder is None:
            raise ValueError(f"no bulk statements for paramstyle {dialect.paramstyle!r}")
        prep = dialect.identifier_preparer
        names = [prep.format_column(table.c[name]) for name in columns]
        table_name = prep.format_table(table)  # our schema's names, quoted by the dialect
        head = f"INSERT INTO {table_name} ({', '.join(names)}) VALUES "  # noqa: S608
        self.columns = tuple(columns)
        self.row = f"({', '.join([placeholder] * len(names))})"
        self.tail = ""
        if upsert:
            keys = [c.name for c in table.primary_key.columns]
            quoted = dict(zip(columns, names, strict=True))
            update = [quoted[name] for name in columns if name not in keys]
            if dialect.name in ("mysql", "mariadb"):
                # VALUES(col), not the 8.0.20 row alias: MariaDB has no alias, and older PyMySQL
                # only rewrites executemany into multi-row INSERTs for this form
                self.tail = " ON DUPLICATE KEY UPDATE " + ", ".join(
                    f"{name} = VALUES({name})" for name in update
                )
            elif dialect.name in ("sqlite", "postgresql"):
                target = ", ".join(prep.format_column(table.c[name]) for name in keys)
                self.tail = f" ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(
                    f"{name} = excluded.{name}" for name in update
                )
            else:
                raise ValueError(f"unsupported database: {dialect.name}")
        self.head = head
        self.sql = head + self.row + self.tail
        self.multi_values = dialect.name == "postgresql" and dialect.driver not in _EXECUTEMANY_PG

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write ``rows`` (tuples in ``columns`` order)."""
        if not rows:
            return
        if len(rows) == 1:
            conn.exec_driver_sql(self.sql, rows[0])
        elif not self.multi_values:
            conn.exec_driver_sql(self.sql, list(rows))
        else:
            for start in range(0, len(rows), VALUES_ROWS):
                chunk = rows[start : start + VALUES_ROWS]
                sql = self.head + ", ".join([self.row] * len(chunk)) + self.tail
                conn.exec_driver_sql(sql, tuple([value for row in chunk for value in row]))
