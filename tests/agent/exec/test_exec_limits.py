"""Timeouts, leftovers and floods with real processes: whole process groups die, nothing lingers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

from onemon.agent.exec import discover, run_group
from onemon.agent.exec.capture import BoundedBuffer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "probes"
ARGS = ["kvm", "0", "h"]
GRACE = 0.3


def _stat(pid: str) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process from /proc, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _members(pgid: int) -> list[tuple[str, int, int]]:
    """Processes (zombies too) still in group ``pgid``."""
    found = (_stat(pid) for pid in os.listdir("/proc") if pid.isdigit())
    return [s for s in found if s is not None and s[2] == pgid]


def _live(pgid: int) -> list[tuple[str, int, int]]:
    """Members of group ``pgid`` that are not zombies."""
    return [s for s in _members(pgid) if s[0] != "Z"]


async def _vanishes(pgid: int, within: float = 5.0) -> bool:
    """True once group ``pgid`` has no process at all (init reaped the orphans' zombies)."""
    deadline = time.monotonic() + within
    while _members(pgid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _our_zombies() -> list[tuple[str, int, int]]:
    """Zombie children of this test process."""
    found = (_stat(pid) for pid in os.listdir("/proc") if pid.isdigit())
    return [s for s in found if s is not None and s[0] == "Z" and s[1] == os.getpid()]


async def test_hung_probe_and_all_its_children_are_killed_on_time(tmp_path: Path) -> None:
    env = {**os.environ, "PROBE_LOG": str(tmp_path)}
    started = time.monotonic()
    result = await run_group(
        discover(FIXTURES, "kvm", "hang"), ARGS, b"", timeout=1.0, grace=GRACE, env=env
    )
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.error == "Error executing forker: timed out after 1 s"
    assert result.timed_out == ("forker",)
    assert result.output == ""
    assert 1.0 <= elapsed < 1.0 + 3 * GRACE + 1.0, elapsed
    pgid = int((tmp_path / "pgid").read_text())
    assert _live(pgid) == []  # the child ignoring SIGTERM got SIGKILL too
    assert _our_zombies() == []  # the probe itself was reaped
    assert await _vanishes(pgid)  # orphans' zombies are init's to reap (test below: or ours)


async def test_leftover_background_child_is_killed_when_probe_exits(tmp_path: Path) -> None:
    env = {**os.environ, "PROBE_LOG": str(tmp_path)}
    started = time.monotonic()
    result = await run_group(
        discover(FIXTURES, "kvm", "leftover"), ARGS, b"", timeout=10.0, grace=GRACE, env=env
    )
    assert time.monotonic() - started < 2.0  # not held until the timeout by the child's pipe
    assert result.ok, result.error
    assert result.output == "A = 1\n"
    child = _stat((tmp_path / "child").read_text().strip())
    assert child is None or child[0] == "Z"
    assert _our_zombies() == []


async def test_stdout_flood_is_cut_and_killed_promptly() -> None:
    limit = 1024 * 1024
    started = time.monotonic()
    result = await run_group(
        discover(FIXTURES, "kvm", "flood_stdout"), ARGS, b"", max_output=limit, grace=GRACE
    )
    assert time.monotonic() - started < 3.0
    assert not result.ok
    assert result.error == f"Error executing yes: output exceeds {limit} bytes"
    assert result.truncated == ("yes",)
    assert result.output == ""
    assert len(result.error) < 100
    assert _our_zombies() == []


async def test_stderr_flood_is_drained_within_bounded_memory() -> None:
    limit = 64 * 1024
    tracemalloc.start()
    try:
        result = await run_group(
            discover(FIXTURES, "kvm", "flood_stderr"), ARGS, b"", max_output=limit
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result.error
    assert result.output == "A = 1\n"
    assert result.truncated == ("chatty",)
    assert peak < 4 * 1024 * 1024, peak  # 20 MB went through; far less was ever held


def test_bounded_buffer_keeps_the_first_bytes() -> None:
    buffer = BoundedBuffer(10)
    assert not buffer.feed(b"12345")
    assert buffer.feed(b"6789abcdef")
    assert buffer.feed(b"more")
    assert bytes(buffer.data) == b"123456789a"
    assert buffer.dropped == 9
    assert buffer.truncated


async def test_hung_group_does_not_delay_another_group(tmp_path: Path) -> None:
    env = {**os.environ, "PROBE_LOG": str(tmp_path)}
    finished: dict[str, float] = {}
    started = time.monotonic()

    async def timed(name: str, group: str, timeout: float) -> bool:
        result = await run_group(
            discover(FIXTURES, "kvm", group), ARGS, b"", timeout=timeout, grace=GRACE, env=env
        )
        finished[name] = time.monotonic() - started
        return result.ok

    hung, good = await asyncio.gather(timed("hung", "hang", 2.0), timed("good", "order", 2.0))
    assert (hung, good) == (False, True)
    assert finished["good"] < 1.0, finished
    assert finished["hung"] >= 2.0, finished


async def test_cancelled_run_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {**os.environ, "PROBE_LOG": str(tmp_path)}
    task = asyncio.create_task(
        run_group(discover(FIXTURES, "kvm", "hang"), ARGS, b"", timeout=30.0, env=env)
    )
    for _ in range(200):
        if (tmp_path / "pgid").exists():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    pgid = int((tmp_path / "pgid").read_text())
    assert await _vanishes(pgid)


SUBREAPER_RUN = """
import asyncio, ctypes, json, os, sys
from pathlib import Path
from onemon.agent.exec import discover, run_group
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
log = Path(sys.argv[1])
probes = discover(Path(sys.argv[2]), "kvm", "hang")
env = {**os.environ, "PROBE_LOG": str(log)}
result = asyncio.run(run_group(probes, ["kvm", "0", "h"], b"", timeout=0.5, grace=0.2, env=env))
pgid = (log / "pgid").read_text().strip().encode()
left = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()
    except OSError:
        continue
    if fields[2] == pgid or (fields[0] == b"Z" and int(fields[1]) == os.getpid()):
        left.append(pid)
print(json.dumps({"ok": result.ok, "left": left}))
"""


async def test_as_subreaper_the_runner_reaps_orphans_itself(tmp_path: Path) -> None:
    """A PID 1 or subreaper agent adopts the probe's orphans and reaps them: no zombie at all."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SUBREAPER_RUN,
        str(tmp_path),
        str(FIXTURES),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert json.loads(out) == {"ok": False, "left": []}
