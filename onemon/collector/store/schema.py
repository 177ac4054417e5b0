"""The store's current schema (SQLAlchemy Core), one definition for SQLite, PostgreSQL and MySQL.

Migrations (``migrations.py``) build the database; this module is what queries use, and a test
checks that both agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from onemon.collector.store.coltypes import DOUBLE, MYSQL_TABLE, TIME, JsonText

JSON_DOC = JsonText()
"""A compact JSON document (as text); NULL when empty."""

JOURNAL_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""SQLite auto-increments only an ``INTEGER PRIMARY KEY``."""

metadata = sa.MetaData()

hosts = sa.Table(
    "hosts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("prev_state", sa.SmallInteger, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("im_mad", sa.String(64), nullable=False),
    sa.Column("vm_mad", sa.String(64), nullable=False),
    sa.Column("cluster_id", sa.Integer, nullable=False),
    sa.Column("last_seen", TIME, nullable=False),
    sa.Column("last_monitored", TIME, nullable=False),
    sa.Column("system", JSON_DOC),
    sa.Column("capacity", JSON_DOC),
    sa.Column("wilds", JSON_DOC),
    sa.Column("zombies", JSON_DOC),
    sa.Column("agent", JSON_DOC),
    **MYSQL_TABLE,
)

vms = sa.Table(
    "vms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("host_id", sa.Integer, nullable=False),
    sa.Column("deploy_id", sa.Text, nullable=False),
    sa.Column("report", sa.String(16), nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("lcm_state", sa.SmallInteger, nullable=False),
    sa.Column("last_poll", TIME, nullable=False),
    sa.Column("state_changed", TIME, nullable=False),
    sa.Column("monitoring", JSON_DOC),
    sa.Column("exec_result", JSON_DOC),
    sa.Index("ix_vms_host_id", "host_id"),
    **MYSQL_TABLE,
)

host_monitoring = sa.Table(
    "host_monitoring",
    metadata,
    sa.Column("hid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_mon_time", TIME, primary_key=True),
    sa.Column("free_cpu", DOUBLE),
    sa.Column("used_cpu", DOUBLE),
    sa.Column("free_memory", sa.BigInteger),
    sa.Column("used_memory", sa.BigInteger),
    sa.Column("netrx", sa.BigInteger),
    sa.Column("nettx", sa.BigInteger),
    sa.Column("numa", JSON_DOC),
    sa.Index("ix_host_monitoring_time", "last_mon_time"),  # OpenNebula issue 5147
    **MYSQL_TABLE,
)

vm_monitoring = sa.Table(
    "vm_monitoring",
    metadata,
    sa.Column("vmid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_poll", TIME, primary_key=True),
    sa.Column("cpu", DOUBLE),
    sa.Column("memory", sa.BigInteger),
    sa.Column("netrx", sa.BigInteger),
    sa.Column("nettx", sa.BigInteger),
    sa.Column("diskrdbytes", sa.BigInteger),
    sa.Column("diskwrbytes", sa.BigInteger),
    sa.Column("diskrdiops", sa.BigInteger),
    sa.Column("diskwriops", sa.BigInteger),
    sa.Column("extra", JSON_DOC),
    sa.Index("ix_vm_monitoring_time", "last_poll"),
    **MYSQL_TABLE,
)

state_changes = sa.Table(
    "state_changes",
    metadata,
    sa.Column("id", JOURNAL_ID, primary_key=True, autoincrement=True),
    sa.Column("ts", TIME, nullable=False),
    sa.Column("host_id", sa.Integer),
    sa.Column("vm_id", sa.Integer),
    sa.Column("report", sa.String(32), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Index("ix_state_changes_ts", "ts"),
    sa.Index("ix_state_changes_vm", "vm_id", "id"),
    **MYSQL_TABLE,
)

progress = sa.Table(
    "progress",
    metadata,
    sa.Column("host_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("msg_type", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("boot_id", sa.LargeBinary(16), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("window", sa.BigInteger, nullable=False, quote=True),
    **MYSQL_TABLE,
)

shard_leases = sa.Table(
    "shard_leases",
    metadata,
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("since", TIME, nullable=False),
    sa.Column("wanted_by", sa.String(255), nullable=False),
    sa.Column("wanted_address", sa.String(255), nullable=False),
    sa.Column("wanted_seq", sa.BigInteger, nullable=False),
    **MYSQL_TABLE,
)
"""Sharding (``collector/sharding``): one row per shard, its leader's epoch (the writers' fence),
who took it and where agents are sent, and who wants it back (``docs/sharding.md``)."""

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    **MYSQL_TABLE,
)
