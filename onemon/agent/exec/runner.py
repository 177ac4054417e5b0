"""Running a probe group: each probe in its own session, bounded, timed, killed with its group.

Overflow policy: a probe's stdout beyond ``max_output`` bytes makes it fail at once (its group
is killed; a partial template could silently drop VMs or figures), while stderr beyond the bound
is drained and discarded until the probe ends (a chatty but working probe stays a success).
Either is reported in ``truncated``.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from onemon.agent.exec.capture import ProbeProtocol
from onemon.agent.exec.limits import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, DRAIN_TIMEOUT, KILL_GRACE
from onemon.agent.exec.process import signal_group, stop_group, wait_event


class Span(NamedTuple):
    """Where one probe's output sits in a group's concatenated output."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """What one probe did."""

    name: str
    returncode: int | None
    """Exit status (negative: killed by that signal); None if it did not start or never ended."""
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: str = ""
    """``Error executing <name>: …`` when the probe failed, else empty."""

    @property
    def ok(self) -> bool:
        """True when the probe succeeded."""
        return not self.error


@dataclass(frozen=True, slots=True)
class GroupResult:
    """Outcome of one run of a probe group."""

    ok: bool
    output: str = ""
    """Successful probes' stdout concatenated as-is (empty on failure)."""
    error: str = ""
    """For a failure: OpenNebula's ``Error executing <probe>: <stderr>``, whitespace-stripped."""
    durations: Mapping[str, float] = field(default_factory=dict)
    """Seconds each probe that ran took, in run order."""
    timed_out: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()
    """Probes whose stdout or stderr went beyond ``max_output``."""
    failed: str | None = None
    """The probe that made the group fail."""
    spans: tuple[Span, ...] = ()
    """Each successful probe's part of ``output``."""


def _failure(name: str, why: str) -> str:
    """OpenNebula's failure text, stripped as its agent strips a payload before sending."""
    return f"Error executing {name}: {why}".strip()


async def _spawn(
    protocol: ProbeProtocol, probe: Path, args: Sequence[str], env: Mapping[str, str] | None
) -> asyncio.SubprocessTransport:
    """Start ``probe`` in a new session; a file without ``#!`` runs under /bin/sh, as execvp."""
    loop = asyncio.get_running_loop()
    argv = [str(probe), *args]
    for attempt in (argv, ["/bin/sh", *argv]):
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: protocol,
                *attempt,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                cwd=probe.parent,
                env=env,
            )
        except OSError as exc:
            if exc.errno != errno.ENOEXEC or attempt[0] == "/bin/sh":
                raise
        else:
            return transport
    raise AssertionError("unreachable")


def _feed(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    """Write the probe's stdin and close it (flushed by the transport; EPIPE is ignored)."""
    pipe = transport.get_pipe_transport(0)
    if pipe is not None:
        assert isinstance(pipe, asyncio.WriteTransport)
        pipe.write(data)
        pipe.close()


async def run_probe(
    probe: Path,
    args: Sequence[str],
    stdin: bytes,
    timeout: float = DEFAULT_TIMEOUT,
    max_output: int = DEFAULT_MAX_OUTPUT,
    *,
    grace: float = KILL_GRACE,
    env: Mapping[str, str] | None = None,
) -> ProbeRun:
    """Run one probe; its process group never outlives this call (unless SIGKILL cannot end it)."""
    name = probe.name
    started = time.monotonic()
    protocol = ProbeProtocol(max_output)
    try:
        transport = await _spawn(protocol, probe, args, env)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return ProbeRun(name, None, b"", b"", time.monotonic() - started, error=_failure(name, why))
    pgid = transport.get_pid()
    timed_out = False
    try:
        _feed(transport, stdin)
        timed_out = not await wait_event(protocol.wake, timeout)
        await stop_group(pgid, protocol.exited, grace)
        await wait_event(protocol.closed, DRAIN_TIMEOUT)
    except BaseException:  # cancelled: leave nothing running behind
        signal_group(pgid, signal.SIGKILL)
        raise
    finally:
        transport.close()
    returncode = transport.get_returncode()
    out, err = protocol.stdout, protocol.stderr
    if timed_out:
        error = _failure(name, f"timed out after {timeout:g} s")
    elif out.truncated:
        error = _failure(name, f"output exceeds {max_output} bytes")
    elif returncode != 0:
        error = _failure(name, bytes(err.data).decode("utf-8", "replace"))
    else:
        error = ""
    return ProbeRun(
        name,
        returncode,
        bytes(out.data),
        bytes(err.data),
        time.monotonic() - started,
        timed_out=timed_out,
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        error=error,
    )


async def run_group(
    probes: Sequence[Path],
    args: Sequence[str],
    stdin: bytes,
    timeout: float = DEFAULT_TIMEOUT,
    max_output: int = DEFAULT_MAX_OUTPUT,
    *,
    grace: float = KILL_GRACE,
    env: Mapping[str, str] | None = None,
) -> GroupResult:
    """Run ``probes`` in order with ``args`` (``<hv> <host_id> <host_name>``) and ``stdin``.

    The first probe that fails (non-zero exit, timeout, stdout overflow, cannot start) ends the
    group with FAILURE and its text; earlier output is discarded, later probes do not run.
    """
    parts: list[str] = []
    spans: list[Span] = []
    durations: dict[str, float] = {}
    truncated: list[str] = []
    position = 0
    for probe in probes:
        run = await run_probe(probe, args, stdin, timeout, max_output, grace=grace, env=env)
        durations[run.name] = run.duration
        if run.stdout_truncated or run.stderr_truncated:
            truncated.append(run.name)
        if not run.ok:
            return GroupResult(
                ok=False,
                error=run.error,
                durations=durations,
                timed_out=(run.name,) if run.timed_out else (),
                truncated=tuple(truncated),
                failed=run.name,
            )
        text = run.stdout.decode("utf-8", "replace")
        parts.append(text)
        spans.append(Span(run.name, position, position + len(text)))
        position += len(text)
    return GroupResult(
        ok=True,
        output="".join(parts),
        durations=durations,
        truncated=tuple(truncated),
        spans=tuple(spans),
    )
