"""The command runner: timeout kills the whole group, retries, bounded output, failure text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from onemon.front.im import run as runner
from onemon.front.im.run import Outcome, run, run_retried


async def test_output_and_exit_code() -> None:
    outcome = await run(["sh", "-c", "echo out; echo err >&2; exit 3"], 5)
    assert (outcome.code, outcome.stdout, outcome.stderr) == (3, b"out\n", "err\n")
    assert not outcome.ok and outcome.error("x") == "err"


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    started = time.monotonic()
    outcome = await run(["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"], 0.5)
    assert outcome.timed_out and not outcome.ok
    assert time.monotonic() - started < 5
    assert outcome.error("ssh node1") == "Timeout executing ssh node1"
    child = int(pid_file.read_text())
    for _ in range(100):
        if not alive(child):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the background child survived the timeout")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_a_missing_program_is_a_failure_not_an_exception() -> None:
    outcome = await run(["/nonexistent/ssh"], 5)
    assert outcome.code == runner.NOT_FOUND and "No such file" in outcome.error("ssh")


async def test_output_is_kept_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "MAX_STDOUT", 1000)
    outcome = await run(["sh", "-c", "head -c 100000 /dev/zero"], 5)
    assert outcome.ok and len(outcome.stdout) == 1000


async def test_retries_until_success(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ "$n" -ge 2 ]'
    outcome = await run_retried(["sh", "-c", script], 5, retries=3, delay=0.01)
    assert outcome.ok and outcome.attempts == 3


async def test_retries_give_up_with_the_last_error(tmp_path: Path) -> None:
    outcome = await run_retried(["sh", "-c", "echo nope >&2; exit 255"], 5, retries=2, delay=0)
    assert outcome.attempts == 3 and outcome.error("ssh") == "nope"


def test_failure_text_without_stderr() -> None:
    assert Outcome(4).error("rsync") == "rsync exited with code 4"


def test_noise_lines_are_dropped_when_something_else_was_said() -> None:
    stderr = "ssh: connect to host n port 22: Connection refused\nrsync error: code 255\n"
    noise = ("rsync error:",)
    assert Outcome(255, stderr=stderr).error("rsync", noise).endswith("Connection refused")
    assert Outcome(255, stderr="rsync error: x\n").error("rsync", noise) == "rsync error: x"
