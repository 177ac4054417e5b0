"""one-front's configuration (TOML, ``/etc/one/one-front.toml``); defaults are OpenNebula's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path("/etc/one/one-front.toml")


@dataclass(frozen=True)
class ListenConfig:
    """Where the XML-RPC API listens (oned.conf ``LISTEN_ADDRESS``/``PORT``)."""

    address: str = "::"
    port: int = 2633
    max_request_bytes: int = 1024 * 1024
    """Largest request body accepted (oned's MESSAGE_SIZE is 1 GB; ours are small)."""
    max_connections: int = 256
    """Requests handled at once; more wait (oned's MAX_CONN)."""

    def validate(self) -> list[str]:
        """Problems with these values."""
        problems = []
        if not 0 <= self.port < 65536:
            problems.append(f"port: {self.port} is not a port number")
        if self.max_request_bytes < 4096:
            problems.append("max_request_bytes: must be at least 4096")
        if self.max_connections < 1:
            problems.append("max_connections: must be at least 1")
        return problems


@dataclass(frozen=True)
class StoreConfig:
    """The collector's store, read only."""

    url: str = "sqlite:////var/lib/onemon/collector.db"
    busy_timeout: float = 5.0
    connect_timeout: float = 5.0
    cache_seconds: float = 1.0
    """How long a snapshot of hosts and VMs serves requests before it is read again."""


@dataclass(frozen=True)
class CollectorApiConfig:
    """The collector's JSON API, through which host changes go."""

    endpoint: str = "http://127.0.0.1:9925"
    admin_token_file: Path = Path("/var/lib/onemon/admin.token")
    timeout: float = 10.0
    write_wait: float = 5.0
    """Longest a change waits until the store shows it (read-your-writes)."""


@dataclass(frozen=True)
class UsersConfig:
    """The front's own database (users, host names and templates set through the API)."""

    url: str = "sqlite:////var/lib/onemon/front.db"
    """Its own SQLite file by default; may be the collector's PostgreSQL/MySQL (``front_*``)."""
    one_auth: Path = Path("/var/lib/onemon/one_auth")
    """Where oneadmin's generated password is written at first start (``oneadmin:<password>``)."""
    service_user: str = "onemon"
    """Owner of ``one_auth`` when the front runs as root."""
    session_seconds: float = 900.0
    """How long a checked session is remembered (SESSION_EXPIRATION_TIME)."""


@dataclass(frozen=True)
class FrontConfig:
    """Everything one-front reads from its file."""

    listen: ListenConfig = field(default_factory=ListenConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    collector: CollectorApiConfig = field(default_factory=CollectorApiConfig)
    users: UsersConfig = field(default_factory=UsersConfig)
    log_level: str = "INFO"
