"""The IM driver's configuration (TOML, ``/etc/one/onemon-im.toml``); the rest from the collector's.

Defaults are OpenNebula's: ``IM_MAD`` arguments ``-r 3 -t 15 -w 90``, ``SCRIPTS_REMOTE_DIR``
``/var/tmp/one``, the shipped ``monitord.conf`` periods; the monitoring interval, manager timer,
listen port, keys and API endpoint come from the collector's file unless set here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_PATH = Path("/etc/one/onemon-im.toml")
COLLECTOR_CONFIG = Path("/etc/one/one-collector.toml")
SHIPPED_TREE = Path(__file__).resolve().parents[2] / "probes"
SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+@,=-]*")
"""Node paths the driver accepts (they travel inside remote shell commands, quoted anyway)."""


@dataclass(frozen=True)
class SshConfig:
    """How the front reaches nodes: always ``BatchMode=yes``, never a password prompt."""

    user: str = ""
    """Remote user (empty: the front's own user, or the ssh configuration's)."""
    port: int = 0
    """0: ssh's default (22, or the ssh configuration's)."""
    identity_file: Path | None = None
    known_hosts_file: Path | None = None
    """None: ssh's usual files (``~/.ssh/known_hosts``)."""
    host_key_checking: Literal["yes", "accept-new"] = "accept-new"
    """accept-new: a node's first key is recorded, a changed key refuses the connection."""
    config_file: Path | None = None
    """An ssh_config for these connections (``-F``); None: the user's own."""
    connect_timeout: float = 10.0

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if not 0 <= self.port < 65536:
            problems.append(f"port: {self.port} is not a port number")
        if self.user and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.user):
            problems.append(f"user: {self.user!r} is not a user name")
        for name in ("identity_file", "known_hosts_file", "config_file"):
            value = getattr(self, name)
            if value is not None and any(c in str(value) for c in "'\"\\ "):
                problems.append(f"{name}: quotes, backslashes and spaces are not supported")
        if not self.connect_timeout > 0:
            problems.append("connect_timeout: must be > 0")
        return problems


@dataclass(frozen=True)
class AgentPeriods:
    """PROBES_PERIOD for the agents the driver starts (seconds, shipped monitord.conf)."""

    beacon_host: float = 30.0
    system_host: float = 600.0
    monitor_host: float = 120.0
    state_vm: float = 5.0
    exec_vm: float = 5.0
    monitor_vm: float = 30.0
    sync_state_vm: float = 180.0


@dataclass(frozen=True)
class NodeConfig:
    """Where things live on a node and how its agent runs."""

    remote_dir: str = "/var/tmp/one"  # noqa: S108 - OpenNebula's SCRIPTS_REMOTE_DIR, made 700
    """SCRIPTS_REMOTE_DIR: the probe tree, the agent's configuration and key (rsync --delete)."""
    state_dir: str = "/var/tmp/one_db/onemon"  # noqa: S108 - OpenNebula's node state dir
    """The agents' spool, pid and log, in ``<state_dir>/<host id>`` (kept across syncs)."""
    agent_command: tuple[str, ...] = ("python3", "-m", "onemon.agent.remote")
    collector_address: str = "auto"
    """Where agents send: ``auto`` is the front's address as the node sees it ($SSH_CLIENT)."""
    libvirt_uri: str = "qemu:///system"
    log_level: str = "INFO"
    periods: AgentPeriods = field(default_factory=AgentPeriods)

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = [
            f"{name}: must be an absolute path of letters, digits and _./+@,=-"
            for name in ("remote_dir", "state_dir")
            if not SAFE_PATH.fullmatch(getattr(self, name)) or ".." in getattr(self, name)
        ]
        if not self.agent_command:
            problems.append("agent_command: must not be empty")
        return problems


@dataclass(frozen=True)
class ImConfig:
    """Everything the IM driver reads from its file."""

    collector_config: Path = COLLECTOR_CONFIG
    """The collector's file: API port, token file, keys, listen port, liveness times."""
    api_endpoint: str = ""
    """The collector's JSON API (empty: from its ``[http]``)."""
    admin_token_file: Path | None = None
    probe_tree: Path = SHIPPED_TREE
    """Pushed to ``<remote_dir>/im``; its ``VERSION`` is what ``sync`` compares."""
    retries: int = 3
    """-r: extra tries of a failed command, 1 s apart (``retry_delay``)."""
    threads: int = 15
    """-t: hosts started or stopped at once."""
    timeout: float = 90.0
    """-w: seconds each command may take before its process group is killed."""
    retry_delay: float = 1.0
    monitoring_interval: float = 0.0
    """Silence before an agent restart (0: the collector's ``hosts.monitoring_interval``)."""
    manager_timer: float = 0.0
    """Seconds between liveness checks (0: the collector's ``hosts.manager_timer``)."""
    log_level: str = "INFO"
    ssh: SshConfig = field(default_factory=SshConfig)
    node: NodeConfig = field(default_factory=NodeConfig)

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if self.retries < 0:
            problems.append("retries: must be >= 0")
        if self.threads < 1:
            problems.append("threads: must be >= 1")
        if not self.timeout > 0:
            problems.append("timeout: must be > 0")
        if self.retry_delay < 0 or self.monitoring_interval < 0 or self.manager_timer < 0:
            problems.append("retry_delay, monitoring_interval, manager_timer: must be >= 0")
        return problems
