"""The store's tests run against every backend: an SQLite file and a real PostgreSQL.

MySQL/MariaDB joins when ``ONEMON_TEST_MYSQL_URL`` names a server and a user that may create
databases (e.g. ``mysql+pymysql://root@127.0.0.1:3306/``); each test gets a fresh database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from onemon.collector.store.engine import make_engine


@dataclass
class Backend:
    """A database for one test: its URL and a way to make it unavailable for a while."""

    name: str
    url: str
    outage: Callable[[], AbstractContextManager[None]]

    def engine(self) -> sa.Engine:
        """A separate engine (its own connections) to look at what was committed."""
        return make_engine(self.url, writer=False)

    def count(self, table: str) -> int:
        """Rows in ``table``, read through a connection of its own."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()


@contextlib.contextmanager
def _sqlite_locked(path: Path) -> Iterator[None]:
    """Another connection holds an exclusive transaction: every writer gets SQLITE_BUSY."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


MYSQL_URL = os.environ.get("ONEMON_TEST_MYSQL_URL", "")
BACKENDS = ["sqlite", "postgresql"] + (["mysql"] if MYSQL_URL else [])


@contextlib.contextmanager
def _mysql_read_locked(server: str) -> Iterator[None]:
    """Another session holds the global read lock: every write waits, then times out."""
    engine = sa.create_engine(server, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text("FLUSH TABLES WITH READ LOCK"))
        try:
            yield
        finally:
            conn.execute(sa.text("UNLOCK TABLES"))
    engine.dispose()


@pytest.fixture
def mysql_backend() -> Iterator[Backend]:
    """A fresh database on the server ``ONEMON_TEST_MYSQL_URL`` names, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    url = sa.engine.make_url(MYSQL_URL).set(database=name)
    try:
        yield Backend(
            "mysql",
            url.render_as_string(hide_password=False),
            lambda: _mysql_read_locked(MYSQL_URL),
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store test runs once per backend."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        return Backend("sqlite", f"sqlite:///{path}", lambda: _sqlite_locked(path))
    if request.param == "mysql":
        mysql: Backend = request.getfixturevalue("mysql_backend")
        return mysql
    cluster = request.getfixturevalue("postgres_cluster")
    url = request.getfixturevalue("postgres_url")

    @contextlib.contextmanager
    def stopped() -> Iterator[None]:
        cluster.stop()
        try:
            yield
        finally:
            cluster.start()

    return Backend("postgresql", url, stopped)
