"""Numbered schema upgrades, applied in order inside one transaction when the store opens.

Each step builds its own tables so it never changes when ``schema.py`` moves on: step ``n``
takes a database from version ``n - 1`` to ``n``. Append steps, never edit released ones.
MySQL commits DDL implicitly, so there a failed upgrade can leave a partial step behind.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from onemon.collector.store.coltypes import DOUBLE, MYSQL_TABLE, JsonText
from onemon.collector.store.errors import SchemaError

Migration = Callable[[Connection], None]

_TIME = DOUBLE
_JSON = JsonText()
_MY = MYSQL_TABLE
_LOCK_KEY = 0x6F6E656D6F6E  # "onemon"


def _v1_tables(conn: Connection) -> None:
    """Version 1: state, history, journal, progress and the version table, keys only."""
    md = sa.MetaData()
    sa.Table(
        "hosts",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("prev_state", sa.SmallInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("im_mad", sa.String(64), nullable=False),
        sa.Column("vm_mad", sa.String(64), nullable=False),
        sa.Column("cluster_id", sa.Integer, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("last_monitored", _TIME, nullable=False),
        *(sa.Column(name, _JSON) for name in ("system", "capacity", "wilds", "zombies", "agent")),
        **_MY,
    )
    sa.Table(
        "vms",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("host_id", sa.Integer, nullable=False),
        sa.Column("deploy_id", sa.Text, nullable=False),
        sa.Column("report", sa.String(16), nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("lcm_state", sa.SmallInteger, nullable=False),
        sa.Column("last_poll", _TIME, nullable=False),
        sa.Column("state_changed", _TIME, nullable=False),
        sa.Column("monitoring", _JSON),
        sa.Column("exec_result", _JSON),
        sa.Index("ix_vms_host_id", "host_id"),
        **_MY,
    )
    sa.Table(
        "host_monitoring",
        md,
        sa.Column("hid", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_mon_time", _TIME, primary_key=True),
        sa.Column("free_cpu", DOUBLE),
        sa.Column("used_cpu", DOUBLE),
        *(sa.Column(n, sa.BigInteger) for n in ("free_memory", "used_memory", "netrx", "nettx")),
        sa.Column("numa", _JSON),
        **_MY,
    )
    counters = (
        *("memory", "netrx", "nettx"),
        *("diskrdbytes", "diskwrbytes", "diskrdiops", "diskwriops"),
    )
    sa.Table(
        "vm_monitoring",
        md,
        sa.Column("vmid", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_poll", _TIME, primary_key=True),
        sa.Column("cpu", DOUBLE),
        *(sa.Column(n, sa.BigInteger) for n in counters),
        sa.Column("extra", _JSON),
        **_MY,
    )
    sa.Table(
        "state_changes",
        md,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("ts", _TIME, nullable=False),
        sa.Column("host_id", sa.Integer),
        sa.Column("vm_id", sa.Integer),
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        **_MY,
    )
    sa.Table(
        "progress",
        md,
        sa.Column("host_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("msg_type", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("boot_id", sa.LargeBinary(16), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("window", sa.BigInteger, nullable=False, quote=True),
        **_MY,
    )
    sa.Table("schema_version", md, sa.Column("version", sa.Integer, nullable=False), **_MY)
    md.create_all(conn)


def _v2_time_indexes(conn: Connection) -> None:
    """Version 2: time indexes for retention and pool queries (OpenNebula issue 5147)."""
    md = sa.MetaData()
    wanted = [
        ("ix_host_monitoring_time", "host_monitoring", ("last_mon_time",)),
        ("ix_vm_monitoring_time", "vm_monitoring", ("last_poll",)),
        ("ix_state_changes_ts", "state_changes", ("ts",)),
        ("ix_state_changes_vm", "state_changes", ("vm_id", "id")),
    ]
    for name, table_name, columns in wanted:
        table = sa.Table(table_name, md, *(sa.Column(c) for c in columns), extend_existing=True)
        sa.Index(name, *(table.c[c] for c in columns)).create(conn)


def _v3_shard_leases(conn: Connection) -> None:
    """Version 3: the shard lease table (leaders' epochs and addresses, docs/sharding.md)."""
    md = sa.MetaData()
    sa.Table(
        "shard_leases",
        md,
        sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("wanted_by", sa.String(255), nullable=False),
        sa.Column("wanted_address", sa.String(255), nullable=False),
        sa.Column("wanted_seq", sa.BigInteger, nullable=False),
        **_MY,
    )
    md.create_all(conn)


MIGRATIONS: list[Migration] = [_v1_tables, _v2_time_indexes, _v3_shard_leases]
"""Step ``i`` upgrades version ``i`` to ``i + 1``."""

LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The schema version of the connected database (0 when empty)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    version = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar()
    return int(version or 0)


def migrate(engine: Engine, target: int = LATEST) -> int:
    """Upgrade the database to ``target`` in one transaction; returns the version found."""
    mysql = engine.dialect.name in ("mysql", "mariadb")
    with engine.connect() as conn:
        try:
            with conn.begin():
                _lock(conn)
                found = current_version(conn)
                if found > LATEST:
                    raise SchemaError(f"store schema {found} is newer than this code ({LATEST})")
                for step in MIGRATIONS[found:target]:
                    step(conn)
                if target > found:
                    conn.execute(sa.text("DELETE FROM schema_version"))
                    conn.execute(
                        sa.text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": target}
                    )
        finally:
            if mysql:
                with conn.begin():
                    conn.execute(sa.text("SELECT RELEASE_LOCK('onemon_schema')"))
    return found


def _lock(conn: Connection) -> None:
    """Serialize concurrent upgrades (SQLite: the writer's BEGIN IMMEDIATE already does)."""
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    elif name in ("mysql", "mariadb"):  # session lock, released by migrate()
        conn.execute(sa.text("SELECT GET_LOCK('onemon_schema', 60)"))
