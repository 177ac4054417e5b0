"""The front database's engine, its tables created at start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from onemon.collector.store.engine import make_engine
from onemon.front.db.schema import metadata


def open_database(url: str, busy_timeout: float = 5.0) -> Engine:
    """An engine for ``url`` (an SQLite file's directory is made, mode 700); tables created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(url, writer=True, busy_timeout=busy_timeout)
    with engine.begin() as conn:
        metadata.create_all(conn, checkfirst=True)
    return engine


def dispose(engine: Engine) -> None:
    """Close the engine's connections."""
    engine.dispose()
