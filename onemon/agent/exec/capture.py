"""Bounded capture of a probe's stdout and stderr, as an asyncio subprocess protocol."""

from __future__ import annotations

import asyncio


class BoundedBuffer:
    """Bytes kept up to ``limit``; what comes beyond is counted and dropped."""

    __slots__ = ("data", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> bool:
        """Keep what fits of ``chunk``; True when some of it had to be dropped."""
        room = self.limit - len(self.data)
        if len(chunk) <= room:
            self.data += chunk
            return False
        if room > 0:
            self.data += chunk[:room]
        self.dropped += len(chunk) - max(room, 0)
        return True

    @property
    def truncated(self) -> bool:
        """True when anything was dropped."""
        return self.dropped > 0


class ProbeProtocol(asyncio.SubprocessProtocol):
    """Collects stdout and stderr separately, each bounded, and says when to act.

    ``wake`` is set when the process exits or its stdout overflows; ``exited`` once it is
    reaped; ``closed`` once stdout and stderr reached end of file.
    """

    def __init__(self, limit: int) -> None:
        self.stdout = BoundedBuffer(limit)
        self.stderr = BoundedBuffer(limit)
        self.wake = asyncio.Event()
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        """Keep a chunk of stdout (fd 1) or stderr (fd 2)."""
        if fd == 1:
            if self.stdout.feed(data):
                self.wake.set()
        elif fd == 2:
            self.stderr.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        """Note end of file on one pipe."""
        self._open.discard(fd)
        if not self._open:
            self.closed.set()

    def process_exited(self) -> None:
        """Note that the probe exited and was reaped."""
        self.exited.set()
        self.wake.set()
