"""Column types shared by the schema and its migrations."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

if TYPE_CHECKING:
    _Base = TypeDecorator[Any]
else:
    _Base = TypeDecorator  # SQLAlchemy 1.4's TypeDecorator is not subscriptable

compact_json = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode
"""How JSON text is written: no spaces, UTF-8 kept as is, strict (no NaN); a container holding
itself raises RecursionError (``rows.to_json`` handles it)."""

DOUBLE = sa.Float(precision=53)
"""A double on every backend (FLOAT(53): DOUBLE on MySQL, REAL on SQLite)."""

TIME = DOUBLE
"""Unix time in seconds."""

MYSQL_TABLE: dict[str, Any] = {"mysql_charset": "utf8mb4"}
"""Table options: full UTF-8 on MySQL/MariaDB (whose default may be latin1)."""


class JsonText(_Base):
    """Compact JSON kept as text: bound as the str the row builder made, read back parsed.

    Text rather than a JSON column type, so rows are serialized once, by the row builders in the
    writer thread, and nothing re-encodes or re-validates them on the write path (the writer
    binds that text directly through the driver).
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """MEDIUMTEXT on MySQL (TEXT stops at 64 KB), TEXT elsewhere."""
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Pass JSON text through; serialize anything else."""
        if value is None or isinstance(value, str):
            return value
        return compact_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Parse the stored text."""
        return None if value is None else json.loads(value)
