"""The agent's boot id: a boot counter persisted and incremented at every start, 8 random bytes."""

from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

COUNTER_FILE: Final = "boot_counter"
_COUNTER: Final = struct.Struct(">Q")
_MAX_COUNTER: Final = 2**64 - 1

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BootId:
    """16 bytes on the wire: u64 big-endian boot counter | 8 random bytes."""

    counter: int
    nonce: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.counter <= _MAX_COUNTER:
            raise ValueError(f"boot counter {self.counter} out of u64 range")
        if len(self.nonce) != 8:
            raise ValueError("boot id nonce must be 8 bytes")

    def __bytes__(self) -> bytes:
        return _COUNTER.pack(self.counter) + self.nonce

    @property
    def raw(self) -> bytes:
        """The 16 bytes the envelope carries."""
        return bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> BootId:
        """Parse the 16 wire bytes."""
        if len(data) != 16:
            raise ValueError("boot id must be 16 bytes")
        return cls(_COUNTER.unpack_from(data)[0], data[8:])

    @classmethod
    def new(cls, state_dir: Path) -> BootId:
        """Increment the counter persisted in ``state_dir`` (time in µs when fresh) and use it."""
        path = state_dir / COUNTER_FILE
        previous = read_counter(path)
        counter = time.time_ns() // 1000 if previous is None else previous + 1
        write_counter(path, counter)
        return cls(counter, os.urandom(8))


def read_counter(path: Path) -> int | None:
    """The stored counter, or None when there is none (or it is unreadable text)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        text = ""
    if text.isdigit() and int(text) < _MAX_COUNTER:
        return int(text)
    log.warning("%s: unusable boot counter %r; restarting from the clock", path, text[:32])
    return None


def write_counter(path: Path, counter: int) -> None:
    """Replace the counter file atomically (temporary file, fsync, rename, fsync directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{counter}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
