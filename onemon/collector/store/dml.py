"""Statements the writer runs: per-dialect upserts and chunked retention deletes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection


def upsert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that replaces the row with the same primary key (for executemany)."""
    keys = [c.name for c in table.primary_key.columns]
    others = [c.name for c in table.columns if c.name not in keys]
    if dialect in ("sqlite", "postgresql"):
        module: Any = sqlite if dialect == "sqlite" else postgresql
        stmt = module.insert(table)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in others}
        )
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        return my.on_duplicate_key_update({name: my.inserted[name] for name in others})
    raise ValueError(f"unsupported database: {dialect}")


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
