"""Private PostgreSQL and MariaDB servers for the sharding tests (real servers, throw-away).

Each server runs from the distribution's binaries in a temporary directory, on a free port,
listening on 127.0.0.1 plus any extra addresses given (a namespace's veth end, for the e2e
partition test). As root they run as the ``postgres`` / ``mysql`` users. When one cannot run,
``Unavailable`` says why (the fixtures turn that into a skip with the reason).
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
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa


class Unavailable(Exception):
    """Why a private server cannot run here."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _owner(user: str) -> tuple[list[str], pwd.struct_passwd | None]:
    """The runuser prefix and account to run a server as, when we are root."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam(user)
    except KeyError as exc:
        raise Unavailable(f"running as root and there is no {user!r} user") from exc
    if not shutil.which("runuser"):
        raise Unavailable("running as root and runuser(1) is missing")
    return ["runuser", "-u", user, "--"], account


def _run(argv: Sequence[str], what: str, timeout: float = 120) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise Unavailable(f"{what} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")


class PgServer:
    """A PostgreSQL cluster with trust authentication (fsync off unless ``fast=False``)."""

    kind = "postgresql"

    def __init__(self, listen: Sequence[str] = ("127.0.0.1",), *, fast: bool = True) -> None:
        self.fast = fast
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise Unavailable("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = Path(found[-1]).parent
        self.runas, account = _owner("postgres")
        self.base = Path(tempfile.mkdtemp(prefix="onemon-shard-pg-"))
        if account is not None:
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.port = free_port()
        self.listen = list(listen)
        self.data = self.base / "data"
        try:
            _run([*self.runas, str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                  "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                 "initdb")  # fmt: skip
            hba = self.data / "pg_hba.conf"
            hba.write_text(hba.read_text() + "host all all 0.0.0.0/0 trust\n")
            self.start()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses={','.join(self.listen)} "
            "-c max_connections=200"
        )
        if self.fast:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run([*self.runas, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
              str(self.base / "server.log"), "-w", "-t", "60", "-o", options, "start"],
             "pg_ctl start")  # fmt: skip

    def stop(self) -> None:
        """Stop (fast: sessions are cut)."""
        _run([*self.runas, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
              "-w", "-t", "60", "stop"], "pg_ctl stop")  # fmt: skip

    def destroy(self) -> None:
        """Stop and delete."""
        with contextlib.suppress(Unavailable, subprocess.TimeoutExpired):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        """SQLAlchemy URL of ``database``."""
        return f"postgresql+psycopg://postgres@{host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database's name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        _admin(self.url(), f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, cutting its sessions."""
        _admin(self.url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MariaDbServer:
    """A MariaDB server; root without a password from anywhere (a test server)."""

    kind = "mysql"

    def __init__(self, listen: str = "127.0.0.1") -> None:
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not Path(mariadbd).exists() or install is None:
            raise Unavailable("MariaDB is not installed (apt-get install mariadb-server)")
        self.runas, account = _owner("mysql")
        self.base = Path(tempfile.mkdtemp(prefix="onemon-shard-maria-"))
        self.data = self.base / "data"
        self.data.mkdir()
        if account is not None:
            for path in (self.base, self.data):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.port = free_port()
        self.socket = self.base / "mysqld.sock"
        user = ["--user=mysql"] if account is not None else []
        try:
            _run([install, "--no-defaults", f"--datadir={self.data}", *user,
                  "--auth-root-authentication-method=normal", "--skip-test-db"],
                 "mariadb-install-db")  # fmt: skip
            argv = [mariadbd, "--no-defaults", f"--datadir={self.data}", *user,
                    f"--port={self.port}", f"--bind-address={listen}", f"--socket={self.socket}",
                    f"--pid-file={self.base / 'mysqld.pid'}", "--skip-name-resolve",
                    "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
                    "--skip-log-bin", "--max-connections=300",
                    f"--log-error={self.base / 'error.log'}"]  # fmt: skip
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait()
            _admin(self.url(""), "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ''")
            _admin(self.url(""), "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION")
        except BaseException:
            self.destroy()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.base / "error.log").read_text(errors="replace")[-1500:]
                raise Unavailable(f"mariadbd exited: {log}")
            try:
                _admin(self.url(""), "SELECT 1")
                return
            except sa.exc.OperationalError:
                time.sleep(0.2)
        raise Unavailable("mariadbd did not accept connections in 60 s")

    def destroy(self) -> None:
        """Stop and delete."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "", host: str = "127.0.0.1") -> str:
        """SQLAlchemy URL of ``database``."""
        return f"mysql+pymysql://root@{host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database's name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        _admin(self.url(""), f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``."""
        _admin(self.url(""), f"DROP DATABASE IF EXISTS {name}")


def _admin(url: str, sql: str) -> None:
    """One statement outside a transaction."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()
