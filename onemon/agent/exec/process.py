"""Stopping a probe's process group: SIGTERM, a grace period, SIGKILL, and reaping."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from onemon.agent.exec.limits import POLL_INTERVAL


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal still exists
        return True
    return True


def reap_group(pgid: int) -> None:
    """Reap exited children of ours in group ``pgid`` (orphans adopted by a PID 1 or subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True if it is set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _member_states(pgid: int, proc: str = "/proc") -> list[str]:
    """States (``R``, ``S``, ``Z``…) of the processes of group ``pgid``, from ``/proc``."""
    states = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode():
            states.append(fields[0].decode("ascii", "replace"))
    return states


def group_alive(pgid: int) -> bool:
    """True while group ``pgid`` has a live member; zombies are dead, waiting for their reaper."""
    if not signal_group(pgid, 0):
        return False
    return any(state != "Z" for state in _member_states(pgid))


async def group_gone(pgid: int, within: float) -> bool:
    """Reap and poll until group ``pgid`` has no live member, at most ``within`` seconds."""
    deadline = time.monotonic() + within
    pause = POLL_INTERVAL
    while True:
        reap_group(pgid)
        if not group_alive(pgid):
            reap_group(pgid)  # members that died between the reap and the check
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


async def stop_group(pgid: int, exited: asyncio.Event, grace: float) -> None:
    """End group ``pgid`` whose leader sets ``exited`` once reaped: SIGTERM, ``grace``, SIGKILL.

    Also used after a leader exits by itself, to end what it left running in its group. Returns
    once no member is alive. The leader is reaped by asyncio's child watcher; orphaned members
    by init, or here with ``waitpid(-pgid)`` when this process is PID 1 or a child subreaper
    (only after the leader was reaped, so the watcher's status is never stolen).
    """
    termed_at = None
    if not exited.is_set():
        signal_group(pgid, signal.SIGTERM)
        termed_at = time.monotonic()
        if not await wait_event(exited, grace):
            signal_group(pgid, signal.SIGKILL)
            if await wait_event(exited, grace):
                await group_gone(pgid, grace)
            return  # else: a leader SIGKILL cannot end (D state) is left to the watcher
    if termed_at is None:
        if await group_gone(pgid, 0):
            return
        signal_group(pgid, signal.SIGTERM)
        termed_at = time.monotonic()
    if await group_gone(pgid, max(0.0, termed_at + grace - time.monotonic())):
        return
    signal_group(pgid, signal.SIGKILL)
    await group_gone(pgid, grace)
