"""glibc malloc tuning for the long-running agent: few arenas, free heap pages handed back.

glibc gives each thread that allocates its own arena (up to 8 per core), and keeps freed
memory resident inside them and in the main heap. The agent's probe and libvirt stats threads
allocate a little each, now and then: two shared arenas and a periodic ``malloc_trim`` keep the
agent's resident memory at what it holds. Without glibc (musl) both are no-ops.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Final

M_ARENA_MAX: Final = -8
"""``mallopt`` parameter of glibc's ``MALLOC_ARENA_MAX``."""
ARENAS: Final = 2
TRIM_SECONDS: Final = 60.0
"""How often the daemon hands freed heap memory back to the kernel."""


@functools.cache
def _libc() -> Any:
    """The process's C library if it has glibc's ``mallopt`` and ``malloc_trim``, else None."""
    try:
        import ctypes  # noqa: PLC0415  (only the daemon, only once: not for --once or the tests)

        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (ImportError, OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap malloc arenas as ``MALLOC_ARENA_MAX`` does, unless the environment already sets it."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return free heap memory to the kernel (``malloc_trim(0)``); True if some was."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))
