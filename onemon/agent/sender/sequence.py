"""Sequence numbers: one independent stream per message type within a boot."""

from __future__ import annotations

from onemon.wire.model import MessageType


class Sequencer:
    """Hands out seq 0, 1, 2… per message type."""

    def __init__(self) -> None:
        self._next: dict[MessageType, int] = {}

    def peek(self, kind: MessageType) -> int:
        """The seq the next message of ``kind`` will get."""
        return self._next.get(kind, 0)

    def next(self, kind: MessageType) -> int:
        """Assign the next seq of ``kind``."""
        seq = self._next.get(kind, 0)
        self._next[kind] = seq + 1
        return seq
