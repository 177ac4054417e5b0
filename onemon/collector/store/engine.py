"""Engines for the store: SQLite tuned for one writer (WAL), PostgreSQL and MySQL with pre-ping."""

from __future__ import annotations

import importlib.util
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL

_SA1 = sa.__version__.startswith("1.")


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; a bare ``postgresql://`` or ``mysql://`` picks an installed driver."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if driver:
        return parsed
    if backend == "postgresql" and not _has("psycopg2") and _has("psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend in ("mysql", "mariadb") and not _has("MySQLdb") and _has("pymysql"):
        return parsed.set(drivername=f"{backend}+pymysql")
    return parsed


def _has(module: str) -> bool:
    """True when ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


def make_engine(
    url: str | URL,
    *,
    writer: bool,
    busy_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    pool_size: int = 4,
    session_timeout: float = 0.0,
) -> Engine:
    """An engine for the writer thread (one connection) or for readers (a small pool).

    ``session_timeout`` (PostgreSQL/MySQL writer, 0 = off): the server ends a session left idle
    inside a transaction (PostgreSQL) or idle at all (MySQL ``wait_timeout``) for that long, so
    a writer cut off from the database cannot hold row locks for ever (``docs/sharding.md``).
    """
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {}
    if _SA1:
        kwargs["future"] = True
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ValueError("the store needs an SQLite file, not an in-memory database")
        kwargs["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
        kwargs["poolclass"] = sa.pool.QueuePool
        kwargs["pool_size"] = 1 if writer else pool_size
        kwargs["max_overflow"] = 0 if writer else pool_size
        engine = sa.create_engine(parsed, **kwargs)
        _tune_sqlite(engine, writer=writer, busy_timeout=busy_timeout)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout))}
    if backend == "postgresql":
        if writer:  # wait for another session's lock as long as SQLite would, then retry
            connect_args["options"] = f"-c lock_timeout={max(1, int(busy_timeout * 1000))}"
            if session_timeout > 0:  # and a writer cut off notices within about as long
                idle = max(1, int(session_timeout * 1000))
                connect_args["options"] += f" -c idle_in_transaction_session_timeout={idle}"
                connect_args.update(keepalives=1, keepalives_idle=1, keepalives_interval=1,
                                    keepalives_count=3, tcp_user_timeout=2 * idle)  # fmt: skip
    elif backend in ("mysql", "mariadb"):
        if writer:
            wait = max(1, round(busy_timeout))
            connect_args["init_command"] = (
                f"SET SESSION lock_wait_timeout={wait}, innodb_lock_wait_timeout={wait}"
            )
            if session_timeout > 0:
                connect_args["init_command"] += f", wait_timeout={max(1, round(session_timeout))}"
        kwargs["pool_recycle"] = 3600
    kwargs["connect_args"] = connect_args
    kwargs["pool_pre_ping"] = True
    kwargs["pool_size"] = 1 if writer else pool_size
    kwargs["max_overflow"] = 0 if writer else pool_size
    return sa.create_engine(parsed, **kwargs)


def _tune_sqlite(engine: Engine, *, writer: bool, busy_timeout: float) -> None:
    """WAL, synchronous=NORMAL, a busy timeout, and real transactions (DDL included)."""
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if writer:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
