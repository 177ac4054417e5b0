"""one-agent's configuration (TOML, ``/etc/one/one-agent.toml``); defaults are OpenNebula's."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_PATH = Path("/etc/one/one-agent.toml")
SHIPPED_PROBES = Path(__file__).resolve().parent.parent / "probes"


@dataclass(frozen=True)
class Periods:
    """Seconds between runs of each probe group (reference §4.3, shipped monitord.conf)."""

    beacon_host: float = 30.0
    system_host: float = 600.0
    monitor_host: float = 120.0
    state_vm: float = 5.0
    exec_vm: float = 5.0
    monitor_vm: float = 30.0
    sync_state_vm: float = 180.0

    def validate(self) -> list[str]:
        """Problems with these values."""
        return [
            f"{name}: must be > 0, got {value}"
            for name, value in vars(self).items()
            if not value > 0
        ]


@dataclass(frozen=True)
class ProbeConfig:
    """How probes run."""

    tree: Path = SHIPPED_PROBES
    """The probe tree (``<hv>-probes.d/…``); admins drop executables into it."""
    timeout: float = 20.0
    max_output_bytes: int = 4 * 1024 * 1024
    datastore_location: str = "/var/lib/one/datastores"
    procfs: Path = Path("/proc")
    sysfs: Path = Path("/sys")
    cgroupfs: Path = Path("/sys/fs/cgroup")
    times_missing: int = 5
    """Cycles a VM may be absent before it is reported POWEROFF (probe_db.conf)."""


@dataclass(frozen=True)
class SendConfig:
    """Where and how messages go."""

    collectors: tuple[str, ...] = ("127.0.0.1",)
    """Collector addresses, ``host`` or ``host:port``, tried in order."""
    port: int = 4124
    wire_format: Literal["native", "legacy"] = "native"
    key_file: Path = Path("/etc/one/onemon/cluster.key")
    legacy_public_key: Path | None = None
    datagram_budget: int = 1400
    ack_timeout: float = 10.0
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_max_messages: int = 100_000

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if not self.collectors:
            problems.append("collectors: at least one address is needed")
        if not 0 < self.port < 65536:
            problems.append(f"port: {self.port} is not a port number")
        if not 512 <= self.datagram_budget <= 65507:
            problems.append(f"datagram_budget: must be 512..65507, got {self.datagram_budget}")
        return problems


@dataclass(frozen=True)
class AgentConfig:
    """Everything one-agent reads from its file."""

    host_id: int = 0
    host_name: str = field(default_factory=socket.gethostname)
    hypervisor: Literal["kvm", "lxc"] = "kvm"
    libvirt_uri: str = "qemu:///system"
    state_dir: Path = Path("/var/lib/one-agent")
    log_level: str = "INFO"
    periods: Periods = field(default_factory=Periods)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    send: SendConfig = field(default_factory=SendConfig)

    def validate(self) -> list[str]:
        """Problems with these values."""
        return [] if self.host_id >= 0 else [f"host_id: must be >= 0, got {self.host_id}"]
