"""run_group with real processes: order, arguments, stdin, FAILURE text, stderr handling."""

from __future__ import annotations

import os
from pathlib import Path

from onemon.agent import monitor_config
from onemon.agent.exec import discover, run_group

FIXTURES = Path(__file__).parents[2] / "fixtures" / "probes"
HOSTILE_NAME = "node 1; rm -rf / $(reboot) `id`"


def _env(log: Path) -> dict[str, str]:
    return {**os.environ, "PROBE_LOG": str(log)}


async def test_order_arguments_and_stdin_seen_by_probes(tmp_path: Path) -> None:
    config = monitor_config.build(3, datastore_location="/srv/ds")
    probes = discover(FIXTURES, "kvm", "order")
    result = await run_group(probes, ["kvm", "3", HOSTILE_NAME], config, env=_env(tmp_path))
    assert result.ok, result.error
    names = ["10_b", "2_a", "B_upper", "a_lower", "z_link"]
    assert result.output == "".join(f'RAN = "{n}"\n' for n in names)
    assert list(result.durations) == names
    assert all(d > 0 for d in result.durations.values())
    assert [s.name for s in result.spans] == names
    for name in names:
        args = (tmp_path / f"{name}.args").read_text()
        assert args == f"kvm\n3\n{HOSTILE_NAME}\n"  # an argument list: no shell ever saw it
        assert (tmp_path / f"{name}.stdin").read_bytes() == config
    assert result.error == ""
    assert result.timed_out == result.truncated == ()


async def test_non_zero_exit_fails_the_group_with_its_stderr(tmp_path: Path) -> None:
    probes = discover(FIXTURES, "kvm", "failing")
    result = await run_group(probes, ["kvm", "0", "h"], b"<x/>", env=_env(tmp_path))
    assert not result.ok
    assert result.error == "Error executing 2_fail: boom: it broke"
    assert result.failed == "2_fail"
    assert result.output == ""  # earlier output discarded
    assert list(result.durations) == ["1_ok", "2_fail"]
    assert not (tmp_path / "3_never.ran").exists()


async def test_stderr_of_successful_probes_is_discarded() -> None:
    result = await run_group(discover(FIXTURES, "kvm", "noisy"), ["kvm", "0", "h"], b"")
    assert result.ok
    assert result.output == 'A = 1\nB = "two"\n'


async def test_file_without_shebang_runs_under_sh() -> None:
    result = await run_group(discover(FIXTURES, "kvm", "noshebang"), ["kvm", "0", "h"], b"")
    assert result.ok, result.error
    assert result.output == 'SH = "yes"\n'


async def test_probe_that_cannot_start_fails_the_group(tmp_path: Path) -> None:
    probe = tmp_path / "gone"
    result = await run_group([probe], ["kvm", "0", "h"], b"")
    assert not result.ok
    assert result.error.startswith("Error executing gone: ")
    assert result.failed == "gone"


async def test_probe_that_ignores_stdin_and_exits_at_once(tmp_path: Path) -> None:
    probe = tmp_path / "quick"
    probe.write_text("#!/bin/sh\necho 'Q = 1'\n")
    probe.chmod(0o755)
    big_stdin = b"<MONITOR_CONFIGURATION>" + b"x" * 1_000_000 + b"</MONITOR_CONFIGURATION>"
    result = await run_group([probe], ["kvm", "0", "h"], big_stdin)
    assert result.ok, result.error
    assert result.output == "Q = 1\n"


async def test_killed_by_signal_is_a_failure(tmp_path: Path) -> None:
    probe = tmp_path / "suicide"
    probe.write_text("#!/bin/sh\necho 'dying' >&2\nkill -9 $$\n")
    probe.chmod(0o755)
    result = await run_group([probe], ["kvm", "0", "h"], b"")
    assert not result.ok
    assert result.error == "Error executing suicide: dying"


async def test_empty_group_succeeds_with_no_output() -> None:
    result = await run_group([], ["kvm", "0", "h"], b"")
    assert result.ok
    assert result.output == ""
