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
class ShardAssignment:
    """Hosts put in a shard by hand (``[[sharding.assign]]``); the others go by hash."""

    shard: int
    hosts: tuple[int, ...] = ()


@dataclass(frozen=True)
class ShardingConfig:
    """Several collectors on one PostgreSQL/MySQL store, one leader per shard (docs/sharding.md).

    Off by default: one collector, every host, no lock taken (SQLite stores support only this).
    """

    enabled: bool = False
    shards: int = 1
    """How many shards the hosts are split into; the same on every collector."""
    assign: tuple[ShardAssignment, ...] = ()
    home: tuple[int, ...] | None = None
    """Shards this collector leads whenever it can, taking them back from a stand-in (default:
    every shard, so collectors left at the default are each other's hot standby; ``[]``: none,
    a pure stand-in)."""
    standby: tuple[int, ...] | None = None
    """Shards it takes over when their leader is gone (default: every shard not in home)."""
    name: str = ""
    """This collector's name in the lease table (default: host name and listen port)."""
    advertise: str = ""
    """``host:port`` other collectors send this collector's agents to (default: listen
    address and port, which must then not be a wildcard)."""
    check_interval: float = 0.5
    """Seconds between lease checks (and lock attempts)."""
    lease: float = 3.0
    """The database ends a leader's lock session silent this long; the leader itself stops
    applying after lease / 2 without a good check. Takeover happens after about ``lease``."""
    takeover_delay: float = 1.0
    """A stand-in waits until a shard has been leaderless this long before taking it."""

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if not 1 <= self.shards <= 4096:
            problems.append(f"shards: must be 1..4096, got {self.shards}")
        wrong = [s for s in (*(self.home or ()), *(self.standby or ())) if not 0 <= s < self.shards]
        wrong += [a.shard for a in self.assign if not 0 <= a.shard < self.shards]
        if wrong:
            problems.append(f"shard numbers must be 0..{self.shards - 1}, got {sorted(set(wrong))}")
        seen: dict[int, int] = {}
        for entry in self.assign:
            for host in entry.hosts:
                if seen.setdefault(host, entry.shard) != entry.shard:
                    problems.append(
                        f"assign: host {host} is in shards {seen[host]} and {entry.shard}"
                    )
        if self.check_interval <= 0 or self.lease < 4 * self.check_interval:
            problems.append("lease: must be at least 4 × check_interval (> 0)")
        if self.takeover_delay < 0:
            problems.append("takeover_delay: must be >= 0")
        return problems


@dataclass(frozen=True)
class CollectorConfig:
    """Everything one-collector reads from its file."""

    listen: ListenConfig = field(default_factory=ListenConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    hosts: HostsConfig = field(default_factory=HostsConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    log_level: str = "INFO"

    def validate(self) -> list[str]:
        """Problems across sections."""
        sharding = self.sharding
        if not isinstance(sharding, ShardingConfig) or not sharding.enabled:
            return []  # (a section that failed to load is reported already)
        problems = []
        if str(getattr(self.store, "url", "")).startswith("sqlite"):
            problems.append("sharding: needs a PostgreSQL or MySQL/MariaDB store, not SQLite")
        address = getattr(self.listen, "address", "")
        if not sharding.advertise and address in ("::", "0.0.0.0", ""):  # noqa: S104
            problems.append("sharding.advertise: needed when listen.address is a wildcard")
        return problems
