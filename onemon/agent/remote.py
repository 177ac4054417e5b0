"""one-agent as onemon's IM driver starts it over SSH (``python -m onemon.agent.remote``).

``start <agent.toml>`` (the configuration and key the driver rsynced with the probe tree):
stop this host's previous agent, run every group once and print the ``<MONITOR_MESSAGES>``
start reply (reference §1.7, §4.1); exit 255 with the reason on stderr when the configuration,
the key or a host group fails; else detach and push the native wire. A ``collectors`` entry
``auto`` is the front-end's address from ``$SSH_CLIENT``, as OpenNebula's ``MONITOR_ADDRESS``.
SYSTEM_HOST ``VERSION`` is the probe tree's ``VERSION`` file, which ``onemon host sync``
compares. ``stop <state_dir>``: SIGTERM (then SIGKILL) the agent named by its pid file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from onemon.agent.config import AgentConfig
from onemon.agent.daemon import AgentDaemon, collector_addresses
from onemon.agent.groups import ProbeGroups
from onemon.agent.opennebula import monitor_messages
from onemon.agent.scheduler import Scheduler
from onemon.settings import ConfigError, load_file
from onemon.wire.keys import KeyFileError, load_key_file
from onemon.wire.model import Message, MessageType

log = logging.getLogger("onemon.agent.remote")

FAILED = 255
PID_FILE = "one-agent.pid"
MARK = b"onemon.agent.remote"
"""In the agent's command line; a pid file naming another program is never signalled."""
HOST_GROUPS = frozenset(
    {MessageType.BEACON_HOST, MessageType.SYSTEM_HOST, MessageType.MONITOR_HOST}
)
"""Groups whose FAILURE puts a host in ERROR (§1.6), so they fail the start as well."""
STOP_WAIT = 8.0


class StartError(Exception):
    """Why the agent cannot start (printed on stderr, the driver's failure text)."""


def tree_version(tree: Path) -> str:
    """The probe tree's ``VERSION`` (empty when it has none)."""
    try:
        return (tree / "VERSION").read_text().strip()
    except OSError:
        return ""


class VersionedGroups(ProbeGroups):
    """Probe groups whose SYSTEM_HOST reports the tree's VERSION, read at every run."""

    async def system_host(self) -> Message | None:
        """SYSTEM_HOST with VERSION set to the tree's (as OpenNebula's version.sh)."""
        message = await super().system_host()
        version = tree_version(self.config.probes.tree)
        if message is not None and message.ok and version:
            message.payload["VERSION"] = version
        return message


class RemoteDaemon(AgentDaemon):
    """The daemon with :class:`VersionedGroups` (no config path, so no reload: restart it)."""

    def _start_groups(self) -> None:
        assert self.sender is not None
        self.groups = VersionedGroups(self.config, self.agent_metrics)
        self.scheduler = Scheduler(self.groups.groups(), self.sender.send)
        self.scheduler.start()


def load(path: Path) -> AgentConfig:
    """The pushed configuration, ``auto`` collectors resolved, the key and addresses checked."""
    try:
        config = load_file(AgentConfig, path).config
    except ConfigError as exc:
        raise StartError(f"configuration error: {exc}") from None
    if "auto" in config.send.collectors:
        front = os.environ.get("SSH_CLIENT", "").split(" ")[0]
        if not front:
            raise StartError("collector address is auto and SSH_CLIENT is empty")
        collectors = tuple(front if c == "auto" else c for c in config.send.collectors)
        config = replace(config, send=replace(config.send, collectors=collectors))
    try:
        collector_addresses(config)
        if config.send.wire_format == "native":
            load_key_file(config.send.key_file)
    except (ValueError, KeyFileError, OSError) as exc:
        raise StartError(str(exc)) from None
    return config


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stop(state_dir: Path, wait: float = STOP_WAIT) -> str:
    """Stop the agent whose pid file is in ``state_dir``; says what it did."""
    pid_file = state_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return "no agent running"
    if pid == os.getpid() or MARK not in _cmdline(pid):
        pid_file.unlink(missing_ok=True)
        return f"no agent running (stale pid {pid})"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while MARK in _cmdline(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if MARK in _cmdline(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return f"stopped agent {pid}"


async def first_report(config: AgentConfig) -> list[Message]:
    """Every group once, as the start reply (nothing sent, no tracker state written)."""
    groups = VersionedGroups(config, dict, persistent=False)
    try:
        found = [await group.collect() for group in groups.groups()]
    finally:
        groups.close()
    return [m for m in found if m is not None]


def _settle_threads(timeout: float = 2.0) -> None:
    """Let the probe worker threads end before fork()ing (a fork copies held locks)."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def daemonize(pid_file: Path) -> None:
    """Detach (new session, stdio on /dev/null) with the pid file written before SSH returns."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child > 0:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            written = ready.read(1) == b"1"
        os.waitpid(child, 0)
        os._exit(0 if written else FAILED)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    pid_file.write_text(f"{os.getpid()}\n")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.write(write_end, b"1")
    os.close(write_end)


def start(path: Path) -> int:
    """Replace the previous agent, print the start reply, detach and serve."""
    try:
        config = load(path)
    except StartError as exc:
        print(f"one-agent: {exc}", file=sys.stderr)
        return FAILED
    stop(config.state_dir)
    results = asyncio.run(first_report(config))
    print(monitor_messages(results, int(time.time())), flush=True)
    failed = [m for m in results if m.type in HOST_GROUPS and not m.ok]
    if failed:
        print("; ".join(m.error or f"{m.type.name} failed" for m in failed), file=sys.stderr)
        return FAILED
    config.state_dir.mkdir(parents=True, exist_ok=True)
    _settle_threads()
    daemonize(config.state_dir / PID_FILE)
    logging.basicConfig(
        level=config.log_level,
        filename=str(config.state_dir / "one-agent.log"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(RemoteDaemon(config).run())
    except Exception:
        log.exception("one-agent stopped on an error")
        return FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    """``start <agent.toml>`` or ``stop <state_dir>``."""
    parser = argparse.ArgumentParser(prog="python -m onemon.agent.remote", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("start", help="start this host's agent").add_argument("config", type=Path)
    sub.add_parser("stop", help="stop this host's agent").add_argument("state_dir", type=Path)
    args = parser.parse_args(argv)
    if args.action == "stop":
        print(stop(args.state_dir))
        return 0
    return start(args.config)


if __name__ == "__main__":
    sys.exit(main())
