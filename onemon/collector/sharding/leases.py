"""The database side of leadership: a dedicated lock session, the lease table, the writers' fence.

Leadership of a shard is a lock of the database's own, held by one dedicated session per
collector (never a home-made consensus):

- PostgreSQL: the session-level advisory lock ``(LOCK_CLASS, shard)`` of the store's database;
- MySQL/MariaDB: the named lock ``onemon:<database>:<shard>`` (``GET_LOCK``).

The server keeps the lock only while the session lives, and the session lives only while the
collector keeps talking: PostgreSQL ends it after ``idle_session_timeout`` = the lease, MySQL
after ``wait_timeout`` = the lease (a killed collector's socket closes at once, so its locks go
at once). The collector checks its locks every ``check_interval`` and stops applying after lease/2
without a good check, so it has stopped before the server can hand its locks to anybody else.

Whoever takes a lock bumps the shard's ``epoch`` in ``shard_leases``; every write transaction of
a leader first reads its shards' epochs ``FOR SHARE`` (:func:`check_epochs`) and gives up when
one moved. The bump waits for a transaction holding that row lock, so each write of a former
leader is either committed before the new leader reads the shard back, or not at all.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from onemon.collector.store import schema
from onemon.collector.store.engine import normalize_url
from onemon.collector.store.errors import Fenced

LOCK_CLASS = 0x6F6E6D73
"""PostgreSQL advisory lock class id of shard locks ("onms"); the shard is the object id."""

_T = schema.shard_leases
log = logging.getLogger("onemon.collector.sharding")


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One shard's row of ``shard_leases``."""

    shard: int
    epoch: int
    owner: str
    address: str
    since: float
    wanted_by: str
    wanted_address: str
    wanted_seq: int


@dataclass(frozen=True, slots=True)
class Poll:
    """One lease check: the locks this session holds, those anyone holds, the lease rows."""

    held: frozenset[int]
    locked: frozenset[int]
    rows: Mapping[int, LeaseRow]
    started: float
    """``time.monotonic()`` before the check was sent (the server's idle clock restarts later)."""


def check_epochs(conn: Connection, epochs: Mapping[int, int]) -> None:
    """The writers' fence: raise :class:`Fenced` unless ``epochs`` are still the shards' epochs.

    Run first in a write transaction; the rows stay share-locked until it ends, so a takeover's
    epoch bump waits for it. Driver SQL made once per set of shards (it runs once per batch).
    """
    if not epochs:
        raise Fenced("this collector leads no shard")
    sql = _fence_sql(conn.dialect.name, tuple(sorted(epochs)))
    found = {int(shard): int(epoch) for shard, epoch in conn.exec_driver_sql(sql)}
    lost = sorted(s for s, e in epochs.items() if found.get(s) != e)
    if lost:
        raise Fenced(f"shard(s) {lost} were taken over by another collector")


@functools.lru_cache(maxsize=64)
def _fence_sql(dialect: str, shards: tuple[int, ...]) -> str:
    """``SELECT shard, epoch … FOR SHARE`` of ``shards`` (integers, written in the text)."""
    lock = "LOCK IN SHARE MODE" if dialect in ("mysql", "mariadb") else "FOR SHARE"
    listed = ", ".join(str(int(shard)) for shard in shards)
    return f"SELECT shard, epoch FROM shard_leases WHERE shard IN ({listed}) {lock}"  # noqa: S608


class LeaseSession:
    """This collector's lock session. Blocking: use it from one thread at a time."""

    def __init__(
        self,
        url: str,
        *,
        lease: float,
        connect_timeout: float,
        name: str,
        shards: int,
    ) -> None:
        parsed = normalize_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend not in ("postgresql", "mysql", "mariadb"):
            raise ValueError(f"sharding needs PostgreSQL or MySQL/MariaDB, not {self.backend}")
        self.shards = shards
        self.lease = lease
        self._database = parsed.database or ""
        connect_args: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout))}
        check_ms = max(100, int(lease * 500))  # one check may take at most lease/2
        if self.backend == "postgresql":
            connect_args.update(
                application_name=f"onemon-lease {name}"[:63],
                keepalives=1,
                keepalives_idle=1,
                keepalives_interval=1,
                keepalives_count=2,
                tcp_user_timeout=check_ms,
                options=f"-c statement_timeout={check_ms} -c lock_timeout={check_ms // 2}",
            )
        else:
            connect_args.update(read_timeout=check_ms / 1000, write_timeout=check_ms / 1000)
            connect_args["init_command"] = (
                f"SET SESSION wait_timeout={max(1, round(lease))}, lock_wait_timeout=1, "
                "innodb_lock_wait_timeout=1"
            )
        self._engine: Engine = sa.create_engine(
            parsed,
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args=connect_args,
        )
        self._conn: Connection | None = None

    # --- connection ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the session (no lock held yet)."""
        if self._conn is not None:
            return
        conn = self._engine.connect()
        if self.backend == "postgresql":
            lease_ms = max(1000, int(self.lease * 1000))
            # the server also drops a peer its keepalives find gone
            keepalive = ("tcp_keepalives_idle = 1", "tcp_keepalives_interval = 1",
                         "tcp_keepalives_count = 2", f"tcp_user_timeout = {lease_ms}")  # fmt: skip
            for setting in keepalive:
                conn.exec_driver_sql(f"SET {setting}")
            try:  # PostgreSQL 14+: a silent leader's locks go after the lease, even if frozen
                conn.exec_driver_sql(f"SET idle_session_timeout = {lease_ms}")
            except sa.exc.DBAPIError:
                log.warning("PostgreSQL < 14: a frozen (not dead) leader keeps its shards")
        self._conn = conn

    def close(self) -> None:
        """End the session: the server releases every lock it held."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        finally:
            self._engine.dispose()

    @property
    def conn(self) -> Connection:
        """The open session."""
        if self._conn is None:
            raise RuntimeError("lease session not connected")
        return self._conn

    # --- locks --------------------------------------------------------------------------------

    def lock_name(self, shard: int) -> str:
        """MySQL: the named lock of ``shard`` (server-wide, so the database name is in it)."""
        return f"onemon:{self._database[:40]}:{shard}"

    def poll(self) -> Poll:
        """Check the session and its locks; see who holds which shard; read the lease rows."""
        started = time.monotonic()
        conn = self.conn
        if self.backend == "postgresql":
            rows = conn.execute(
                sa.text(
                    "SELECT objid::bigint, pid = pg_backend_pid() FROM pg_locks "
                    "WHERE locktype = 'advisory' AND classid = CAST(:c AS oid) "
                    "AND objsubid = 2 AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"c": LOCK_CLASS},
            ).all()
            held = frozenset(int(r[0]) for r in rows if r[1])
            locked = frozenset(int(r[0]) for r in rows)
        else:
            names = [self.lock_name(s) for s in range(self.shards)]
            owners = self._mysql_owners(names)
            me = owners.pop()
            held = frozenset(s for s, o in enumerate(owners) if o is not None and o == me)
            locked = frozenset(s for s, o in enumerate(owners) if o is not None)
        leases = {row.shard: row for row in self._rows(conn)}
        return Poll(held, locked, leases, started)

    def _mysql_owners(self, names: list[str]) -> list[Any]:
        """``IS_USED_LOCK`` of each name, then ``CONNECTION_ID()`` last."""
        out: list[Any] = []
        for start in range(0, len(names), 256):
            chunk = names[start : start + 256]
            columns = ", ".join(f"IS_USED_LOCK(:n{i})" for i in range(len(chunk)))
            params = {f"n{i}": name for i, name in enumerate(chunk)}
            out += list(self.conn.execute(sa.text(f"SELECT {columns}"), params).one())
        out.append(self.conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one())
        return out

    def try_lock(self, shard: int) -> bool:
        """Take ``shard``'s lock if it is free (never waits)."""
        if self.backend == "postgresql":
            query = sa.text("SELECT pg_try_advisory_lock(:c, :s)")
            return bool(self.conn.execute(query, {"c": LOCK_CLASS, "s": shard}).scalar_one())
        got = self.conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": self.lock_name(shard)})
        return bool(got.scalar_one() == 1)

    def unlock(self, shard: int) -> None:
        """Release ``shard``'s lock."""
        if self.backend == "postgresql":
            query = sa.text("SELECT pg_advisory_unlock(:c, :s)")
            self.conn.execute(query, {"c": LOCK_CLASS, "s": shard})
        else:
            self.conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": self.lock_name(shard)})

    # --- the lease table ----------------------------------------------------------------------

    def take(self, shard: int, owner: str, address: str) -> int:
        """Record this session's leadership of ``shard`` (lock held): a new epoch, returned.

        The bump waits (bounded by the session's lock timeout) for any write transaction of
        the former leader that holds the row ``FOR SHARE``.
        """
        conn = self.conn
        values = {
            "owner": owner[:255],
            "address": address[:255],
            "since": time.time(),
            "wanted_by": "",
            "wanted_address": "",
            "wanted_seq": 0,
        }
        done = conn.execute(
            sa.update(_T).where(_T.c.shard == shard).values(epoch=_T.c.epoch + 1, **values)
        )
        if not done.rowcount:
            conn.execute(sa.insert(_T).values(shard=shard, epoch=1, **values))
        epoch = conn.execute(sa.select(_T.c.epoch).where(_T.c.shard == shard)).scalar_one()
        return int(epoch)

    def want(self, shard: int, me: str, address: str) -> None:
        """Ask the stand-in leading one of this collector's home shards to hand it back."""
        self.conn.execute(
            sa.update(_T)
            .where(_T.c.shard == shard, _T.c.owner != me)
            .values(
                wanted_by=me[:255], wanted_address=address[:255], wanted_seq=_T.c.wanted_seq + 1
            )
        )

    @staticmethod
    def _rows(conn: Connection) -> Iterable[LeaseRow]:
        for r in conn.execute(sa.select(_T)):
            m = r._mapping
            yield LeaseRow(
                int(m["shard"]), int(m["epoch"]), str(m["owner"]), str(m["address"]),
                float(m["since"]), str(m["wanted_by"]), str(m["wanted_address"]),
                int(m["wanted_seq"]),
            )  # fmt: skip
