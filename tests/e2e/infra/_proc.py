"""Small process helpers shared by the infra modules: run, pid checks, kill by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60.0,
    input_bytes: bytes | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv (never a shell), capture output, raise with stderr on failure when check."""
    proc = subprocess.run(
        list(argv),
        input=input_bytes,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        msg = f"{' '.join(argv)} exited {proc.returncode}: {err}"
        raise RuntimeError(msg)
    return proc


def out(argv: Sequence[str], *, timeout: float = 60.0) -> str:
    """Run argv and return its stripped stdout as text."""
    return run(argv, timeout=timeout).stdout.decode().strip()


def comm(pid: int) -> str | None:
    """The process's command name, or None when it does not exist."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def alive(pid: int, name: str | None = None) -> bool:
    """Whether pid exists (and, if name is given, is that program and not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False
    return name is None or comm(pid) == name[:15]


def read_pidfile(path: Path) -> int | None:
    """The pid in a pid file, or None when missing or malformed."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def terminate(pid: int, name: str | None = None, timeout: float = 10.0) -> None:
    """SIGTERM pid (only if it still is name), wait, then SIGKILL; reap if it is our child."""
    if not alive(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return
        time.sleep(0.05)
    if alive(pid, name):
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            _reap(pid)
            if not alive(pid):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect pid's exit status if it is a child of ours."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
