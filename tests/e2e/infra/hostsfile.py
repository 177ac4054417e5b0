"""Run a process that resolves names through its own ``/etc/hosts`` (a private mount namespace).

The way ``ip netns exec`` gives a namespace its ``/etc/netns/<name>/hosts``, without a network
namespace: a launcher unshares the mount namespace, makes every mount private (nothing leaks to
the machine), bind-mounts the given file over ``/etc/hosts`` and execs the command. glibc's
``files`` backend returns every line of a name, in file order, so one name can stand for several
addresses, as a DNS name with several A records does. Needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

LAUNCHER = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 4096, 16384, 1 << 18
def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        sys.exit(f"hostsfile launcher: {what}: {os.strerror(err)}")
check(libc.unshare(CLONE_NEWNS), "unshare")
check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
check(libc.mount(sys.argv[1].encode(), b"/etc/hosts", None, MS_BIND, None), "bind /etc/hosts")
os.execv(sys.argv[2], sys.argv[2:])
"""


def write(path: Path, names: Iterable[tuple[str, str]]) -> Path:
    """A hosts file with ``localhost`` and one line per (address, name), in order."""
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for address, name in names)]
    path.write_text("\n".join(lines) + "\n")
    return path


def argv(hosts: Path, command: Sequence[str]) -> list[str]:
    """``command`` (an absolute executable first) run with ``hosts`` as its ``/etc/hosts``."""
    return [sys.executable, "-c", LAUNCHER, str(hosts), *command]
