"""START_MONITOR / STOP_MONITOR / sync for one host, as OpenNebula's IM driver (§1.7, §5.2).

start: rsync the remote dir (probe tree, agent configuration, key), then over SSH
``<agent_command> start <agent.toml>``, whose stdout is the agent's first full report
(``<MONITOR_MESSAGES>``); stop: ``<agent_command> stop <state dir>``; sync: the rsync alone.
At most ``threads`` hosts are worked on at once (-t), one action at a time per host; every
command has the ``timeout`` (-w) and is tried ``1 + retries`` times (-r).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from onemon.front.im import reply as start_reply
from onemon.front.im.node import Host, agent_toml, paths, staged
from onemon.front.im.run import Outcome, run_retried
from onemon.front.im.runtime import Runtime
from onemon.front.im.ssh import destination, rsync_argv, ssh_argv
from onemon.wire.keys import KeyFileError

log = logging.getLogger("onemon.front.im")


@dataclass(frozen=True)
class Result:
    """How one action on one host ended; ``message`` is the failure text OpenNebula shows."""

    host: Host
    action: str
    ok: bool
    message: str = ""
    reply: start_reply.StartReply | None = None


RSYNC_NOISE = ("rsync: connection unexpectedly closed", "rsync error: ")
"""rsync's own lines after an ssh failure, which say nothing the ssh line does not."""


def _failure(what: str, outcome: Outcome, command: str) -> str:
    tries = f" ({outcome.attempts} attempts)" if outcome.attempts > 1 else ""
    noise = RSYNC_NOISE if command == "rsync" else ()
    return f"{what}: {outcome.error(command, noise)}{tries}"


class ImDriver:
    """Starts, stops and syncs agents on nodes over SSH."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self._slots = asyncio.Semaphore(runtime.config.threads)
        self._locks: dict[int, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def _turn(self, host: Host) -> AsyncIterator[None]:
        """One action per host, at most ``threads`` hosts at once."""
        lock = self._locks.setdefault(host.id, asyncio.Lock())
        async with lock, self._slots:
            yield

    async def _run(self, argv: list[str], cwd: Path | None = None) -> Outcome:
        cfg = self.config
        return await run_retried(argv, cfg.timeout, cfg.retries, cfg.retry_delay, cwd=cwd)

    async def _push(self, host: Host) -> str:
        """rsync the remote dir to the host; why it failed, or "" on success."""
        cfg = self.config
        try:
            destination(host.name)
            text = agent_toml(host, cfg.node, self.runtime.collector_port)
            key = self.runtime.key_text(host.id)
        except (ValueError, KeyFileError) as exc:
            return str(exc)
        with staged(cfg.probe_tree, text, key) as stage:
            argv = rsync_argv(cfg.ssh, host.name, cfg.node.remote_dir, cfg.timeout)
            outcome = await self._run(argv, cwd=stage)
        return "" if outcome.ok else _failure("rsync failed", outcome, "rsync")

    async def start(self, host: Host) -> Result:
        """Sync, then (re)start the host's agent and read its start reply."""
        async with self._turn(host):
            log.info("starting the agent of host %d (%s)", host.id, host.name)
            what = f"Cannot start the agent on {host.name}"
            failed = await self._push(host)
            if failed:
                return Result(host, "start", False, f"{what}: {failed}")
            cfg = self.config
            command = [*cfg.node.agent_command, "start", paths(cfg.node, host.id).config]
            outcome = await self._run(ssh_argv(cfg.ssh, host.name, command, cfg.timeout))
            if not outcome.ok:
                return Result(host, "start", False, _failure(what, outcome, "the agent"))
            try:
                answer = start_reply.parse(outcome.stdout)
            except start_reply.ReplyError as exc:
                return Result(host, "start", False, f"{what}: {exc}")
            return Result(host, "start", True, reply=answer)

    async def stop(self, host: Host) -> Result:
        """Stop the host's agent (STOP_MONITOR)."""
        async with self._turn(host):
            log.info("stopping the agent of host %d (%s)", host.id, host.name)
            cfg = self.config
            command = [*cfg.node.agent_command, "stop", paths(cfg.node, host.id).state_dir]
            try:
                argv = ssh_argv(cfg.ssh, host.name, command, cfg.timeout)
            except ValueError as exc:
                return Result(host, "stop", False, str(exc))
            outcome = await self._run(argv)
            if not outcome.ok:
                what = f"Cannot stop the agent on {host.name}"
                return Result(host, "stop", False, _failure(what, outcome, "the agent"))
            return Result(host, "stop", True, outcome.stdout.decode(errors="replace").strip())

    async def sync(self, host: Host) -> Result:
        """Push the probe tree (and the agent's files) without restarting the agent."""
        async with self._turn(host):
            log.info("syncing host %d (%s)", host.id, host.name)
            failed = await self._push(host)
            if failed:
                return Result(host, "sync", False, f"Cannot sync {host.name}: {failed}")
            return Result(host, "sync", True)
