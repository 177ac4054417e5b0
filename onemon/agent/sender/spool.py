"""The on-disk spool of TCP messages: SQLite (WAL), bounded by bytes and count, oldest dropped.

Rows hold messages, not encoded bytes (CBOR ``[type, status, host_id, timestamp, payload,
error]``) with the boot id and seq they were given, so a restart can re-number them.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cbor2

from onemon.wire.model import Message, MessageType, Status

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_COUNT: Final = 100_000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot BLOB NOT NULL,
    seq INTEGER NOT NULL,
    type INTEGER NOT NULL,
    data BLOB NOT NULL
)
"""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled message with its row id and the seq it travels with."""

    id: int
    seq: int
    message: Message


def pack(message: Message) -> bytes:
    """The stored form of a message."""
    return bytes(
        cbor2.dumps(
            [
                int(message.type),
                int(message.status),
                message.host_id,
                message.timestamp,
                message.payload,
                message.error,
            ]
        )
    )


def unpack(data: bytes) -> Message:
    """Read back a stored message; ValueError when the row is not one."""
    try:
        kind, status, host_id, timestamp, payload, error = cbor2.loads(data)
        return Message(MessageType(kind), Status(status), host_id, timestamp, payload, error)
    except Exception as exc:  # any decoder failure means the row is unusable
        raise ValueError(f"bad spool row: {exc}") from None


class Spool:
    """FIFO of messages awaiting an acknowledgement, persisted in a SQLite file."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_count: int = DEFAULT_MAX_COUNT,
    ) -> None:
        if max_bytes <= 0 or max_count <= 0:
            raise ValueError("spool bounds must be positive")
        self.max_bytes = max_bytes
        self.max_count = max_count
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        row = self._db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM spool")
        self.count, self.bytes = row.fetchone()
        self.dropped = 0

    def append(self, message: Message, boot: bytes, seq: int) -> int:
        """Store ``message`` after dropping the oldest entries it needs room from; return drops."""
        data = pack(message)
        if len(data) > self.max_bytes:
            raise ValueError(f"message of {len(data)} bytes exceeds the spool's {self.max_bytes}")
        dropped = 0
        with self._transaction():
            while self.count >= self.max_count or self.bytes + len(data) > self.max_bytes:
                oldest = self._db.execute(
                    "SELECT id, length(data) FROM spool ORDER BY id LIMIT 1"
                ).fetchone()
                self._db.execute("DELETE FROM spool WHERE id = ?", (oldest[0],))
                self.count -= 1
                self.bytes -= oldest[1]
                dropped += 1
            self._db.execute(
                "INSERT INTO spool (boot, seq, type, data) VALUES (?, ?, ?, ?)",
                (boot, seq, int(message.type), data),
            )
            self.count += 1
            self.bytes += len(data)
        self.dropped += dropped
        return dropped

    def after(self, last_id: int, limit: int) -> list[SpoolEntry]:
        """Up to ``limit`` entries with an id above ``last_id``, oldest first."""
        rows = self._db.execute(
            "SELECT id, seq, data FROM spool WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
        ).fetchall()
        entries = []
        for entry_id, seq, data in rows:
            try:
                entries.append(SpoolEntry(entry_id, seq, unpack(data)))
            except ValueError as exc:
                log.error("spool row %d dropped: %s", entry_id, exc)
                self.discard(entry_id)
        return entries

    def discard(self, entry_id: int) -> None:
        """Remove an entry that can never be sent, counting it as dropped."""
        if self.delete(entry_id):
            self.dropped += 1

    def delete(self, entry_id: int) -> bool:
        """Remove one entry; False when it was already gone (e.g. dropped when full)."""
        row = self._db.execute("SELECT length(data) FROM spool WHERE id = ?", (entry_id,))
        size = row.fetchone()
        if size is None:
            return False
        self._db.execute("DELETE FROM spool WHERE id = ?", (entry_id,))
        self.count -= 1
        self.bytes -= size[0]
        return True

    def rebase(self, boot: bytes, next_seq: Callable[[MessageType], int]) -> int:
        """Give entries of other boots, in order, ``boot`` and fresh seqs; return how many."""
        rows = self._db.execute(
            "SELECT id, type FROM spool WHERE boot != ? ORDER BY id", (boot,)
        ).fetchall()
        with self._transaction():
            for entry_id, kind in rows:
                self._db.execute(
                    "UPDATE spool SET boot = ?, seq = ? WHERE id = ?",
                    (boot, next_seq(MessageType(kind)), entry_id),
                )
        return len(rows)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
