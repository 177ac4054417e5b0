"""A real PostgreSQL for collector tests: a private cluster per session, a fresh database per test.

The cluster runs from Debian's binaries (``/usr/lib/postgresql/<ver>/bin``, else ``initdb`` on
PATH) in a temporary directory, on a free 127.0.0.1 port with its socket in that directory.
PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user. When it cannot
run, the tests that need it are skipped with the reason; they never pass silently.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


class PgUnavailable(Exception):
    """Why a private PostgreSQL cannot run here."""


def _bindir() -> Path:
    """Debian's newest PostgreSQL bin directory, else the one holding ``initdb`` on PATH."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    raise PgUnavailable(
        "PostgreSQL not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH "
        "(apt-get install postgresql)"
    )


def _driver() -> str:
    """The PostgreSQL driver to test with: psycopg (3) on SQLAlchemy 2, else psycopg2."""
    import importlib.util

    import sqlalchemy as sa

    names = ["psycopg2"] if sa.__version__.startswith("1.") else ["psycopg", "psycopg2"]
    for name in names:
        if importlib.util.find_spec(name) is not None:
            return name
    raise PgUnavailable(f"no PostgreSQL driver installed (tried {', '.join(names)})")


def _free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """A throw-away PostgreSQL cluster: initdb, start, stop, destroy; trust auth on 127.0.0.1."""

    def __init__(self, *, fast: bool = True) -> None:
        self.driver = _driver()
        self.bindir = _bindir()
        self.runas: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgUnavailable(
                    "running as root and there is no 'postgres' user to run PostgreSQL as"
                ) from exc
            if not shutil.which("runuser"):
                raise PgUnavailable("running as root and runuser(1) is missing")
            self.runas = ["runuser", "-u", "postgres", "--"]
        self.base = Path(tempfile.mkdtemp(prefix="onemon-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = _free_port()
        self.fast = fast
        if owner is not None:
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
            self.start()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise

    def _run(self, tool: str, *args: str) -> None:
        """Run a PostgreSQL tool as the cluster's owner; PgUnavailable with its output on error."""
        cmd = [*self.runas, str(self.bindir / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgUnavailable(
                f"{tool} failed ({done.returncode}): {done.stderr.strip()[-1000:]} {log}".strip()
            )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        """Stop the server if running and delete its files."""
        with contextlib.suppress(PgUnavailable, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+{self.driver}://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import sqlalchemy as sa

        engine = sa.create_engine(
            self.url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            engine.dispose()

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still on it."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PgCluster]:
    """The session's private PostgreSQL cluster (skips with the reason when it cannot run)."""
    try:
        cluster = PgCluster()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_url(postgres_cluster: PgCluster) -> Iterator[str]:
    """URL of a fresh database on the session's cluster, dropped after the test."""
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        with contextlib.suppress(Exception):
            postgres_cluster.drop_database(name)
