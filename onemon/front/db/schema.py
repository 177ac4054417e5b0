"""The front's tables (SQLAlchemy Core), prefixed ``front_`` so they may share a database."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "front_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("password", sa.String(256), nullable=False),
    sa.Column("driver", sa.String(64), nullable=False),
    sa.Column("gid", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

host_overrides = sa.Table(
    "front_host_overrides",
    metadata,
    sa.Column("host_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128)),
    sa.Column("template", sa.Text),
    sa.Column("updated", sa.Float, nullable=False),
)
"""What ``one.host.rename`` and ``one.host.update`` set, until the collector can hold it."""
