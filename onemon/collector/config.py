"""one-collector's configuration (TOML, ``/etc/one/one-collector.toml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from onemon.collector.store.config import StoreConfig

DEFAULT_PATH = Path("/etc/one/one-collector.toml")


@dataclass(frozen=True)
class ListenConfig:
    """Where agents send, and what a peer may take."""

    address: str = "::"
    port: int = 4124
    rcvbuf_bytes: int = 16 * 1024 * 1024
    max_connections: int = 4096
    read_timeout: float = 30.0
    idle_timeout: float = 900.0
    legacy: bool = True
    """Accept OpenNebula's legacy lines (unauthenticated, as onemonitord)."""
    legacy_private_key: Path | None = None
    """RSA private key (PKCS#1, PKCS#8 or OpenSSH) for encrypted legacy payloads."""

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"port: {self.port} is not a port number")
        if self.max_connections < 1:
            problems.append("max_connections: must be at least 1")
        return problems


@dataclass(frozen=True)
class KeysConfig:
    """HMAC keys: the cluster key, and optional per-host key files named ``<host id>.key``."""

    cluster_key_file: Path = Path("/etc/one/onemon/cluster.key")
    host_keys_dir: Path | None = None


@dataclass(frozen=True)
class HttpConfig:
    """The /metrics and JSON API endpoint."""

    address: str = "::"
    port: int = 9925
    render_interval: float = 2.0
    """Longest time /metrics may lag the state (it re-renders sooner after a change)."""
    admin_token_file: Path = Path("/var/lib/onemon/admin.token")
    """Bearer token for changing requests (host create/delete/status); made at first start."""


@dataclass(frozen=True)
class HostEntry:
    """A host registered from the configuration file."""

    id: int
    name: str
    im_mad: str = "kvm"


@dataclass(frozen=True)
class HostsConfig:
    """Host registration and liveness."""

    auto_register: bool = False
    auto_register_vms: bool = True
    monitoring_interval: float = 180.0
    """MONITORING_INTERVAL_HOST: silence before ERROR (or, with an IM driver, an agent restart)."""
    manager_timer: float = 15.0
    silence_error: bool = True
    """Silent hosts go to ERROR; false when an IM driver restarts them instead (reference §5.3)."""
    register: tuple[HostEntry, ...] = ()


@dataclass(frozen=True)
class CollectorConfig:
    """Everything one-collector reads from its file."""

    listen: ListenConfig = field(default_factory=ListenConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    hosts: HostsConfig = field(default_factory=HostsConfig)
    log_level: str = "INFO"
