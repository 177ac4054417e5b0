"""A machine-wide lock so two test sessions never share one-<id> domains, containers, netns.

The e2e fixtures use fixed names (``one-101``, ``onemon-vm101``, …) and sweep leftovers of
crashed runs, which is only safe while one session owns the real parts. flock() is released by
the kernel when the holder dies, so a crashed session never leaves the lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_FILE = Path("/run/onemon-e2e.lock")


@dataclass
class MachineLock:
    """A held lock; release() gives it up (idempotent)."""

    handle: IO[str] | None

    def release(self) -> None:
        """Release the lock."""
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def acquire(timeout: float = 900.0, path: Path = LOCK_FILE) -> MachineLock:
    """Wait up to timeout seconds for the lock; raise TimeoutError naming the holder."""
    handle = path.open("a+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                msg = f"{path} held by {holder} for more than {timeout:.0f}s"
                raise TimeoutError(msg) from None
            time.sleep(0.5)
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        return MachineLock(handle)
