"""Fixtures: a store URL on each backend sharding supports, both real servers.

PostgreSQL is the collector tests' private cluster (``tests/collector/conftest.py``); MariaDB
is a private server started here for the session, or the one ``ONEMON_TEST_MYSQL_URL`` names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from dbservers import MariaDbServer, Unavailable, _admin

from onemon.collector.store import migrate
from onemon.collector.store.engine import make_engine

MYSQL_URL = os.environ.get("ONEMON_TEST_MYSQL_URL", "")


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDbServer | None]:
    """The session's private MariaDB (None when ONEMON_TEST_MYSQL_URL names one instead)."""
    if MYSQL_URL:
        yield None
        return
    try:
        server = MariaDbServer()
    except Unavailable as exc:
        pytest.skip(f"MariaDB cannot run here: {exc}")
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def mysql_url(mariadb_server: MariaDbServer | None) -> Iterator[str]:
    """A fresh MySQL/MariaDB database, dropped after the test."""
    if mariadb_server is None:
        name = f"t_{os.urandom(6).hex()}"
        _admin(MYSQL_URL, f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        url = sa.engine.make_url(MYSQL_URL).set(database=name).render_as_string(False)
        try:
            yield url
        finally:
            _admin(MYSQL_URL, f"DROP DATABASE IF EXISTS {name}")
        return
    name = mariadb_server.create_database()
    try:
        yield mariadb_server.url(name)
    finally:
        with contextlib.suppress(Exception):
            mariadb_server.drop_database(name)


@pytest.fixture(params=["postgresql", "mariadb"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated store on each backend."""
    fixture = "postgres_url" if request.param == "postgresql" else "mysql_url"
    url: str = request.getfixturevalue(fixture)
    engine = make_engine(url, writer=True)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url
