"""Run one command as OpenNebula's drivers do: argument list, timeout (-w), retries (-r).

Each run gets its own process group; on timeout the group gets SIGTERM, then SIGKILL. Output
is read in full but kept only up to a bound, so a hostile node cannot fill the front's memory.
The failure text is what OpenNebula returns: the command's stderr lines, joined, or
``Timeout executing <command>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_STDOUT = 16 * 1024 * 1024
MAX_STDERR = 64 * 1024
KILL_GRACE = 2.0
NOT_FOUND = 127


@dataclass(frozen=True)
class Outcome:
    """How one command ended."""

    code: int
    stdout: bytes = b""
    stderr: str = ""
    timed_out: bool = False
    attempts: int = 1

    @property
    def ok(self) -> bool:
        """Exit 0 within the time allowed."""
        return self.code == 0 and not self.timed_out

    def error(self, what: str, noise: tuple[str, ...] = ()) -> str:
        """OpenNebula's failure text: stderr lines (less ``noise`` if others remain), or timeout."""
        if self.timed_out:
            return f"Timeout executing {what}"
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        kept = [line for line in lines if not line.startswith(noise)] if noise else lines
        return " ".join(kept or lines) or f"{what} exited with code {self.code}"


async def _drain(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """Everything ``stream`` yields, kept up to ``limit`` bytes."""
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _kill_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def run(argv: Sequence[str], timeout: float, *, cwd: Path | None = None) -> Outcome:
    """Run ``argv`` (never through a shell) for at most ``timeout`` seconds."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return Outcome(NOT_FOUND, stderr=str(exc))
    reading = asyncio.gather(_drain(proc.stdout, MAX_STDOUT), _drain(proc.stderr, MAX_STDERR))
    try:
        async with asyncio.timeout(timeout):
            out, err = await reading
            code = await proc.wait()
    except TimeoutError:
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
        except TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        return Outcome(255, timed_out=True)
    except asyncio.CancelledError:
        _kill_group(proc.pid, signal.SIGKILL)
        raise
    return Outcome(code, out, err.decode(errors="replace"))


async def run_retried(
    argv: Sequence[str],
    timeout: float,
    retries: int,
    delay: float,
    *,
    cwd: Path | None = None,
) -> Outcome:
    """:func:`run`, tried again up to ``retries`` times after any failure (RemotesCommand)."""
    attempt = 0
    while True:
        attempt += 1
        outcome = await run(argv, timeout, cwd=cwd)
        if outcome.ok or attempt > retries:
            return Outcome(outcome.code, outcome.stdout, outcome.stderr, outcome.timed_out, attempt)
        await asyncio.sleep(delay)
