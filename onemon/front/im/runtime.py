"""The driver's settings resolved against the collector's configuration file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from onemon.collector.config import CollectorConfig, HttpConfig
from onemon.front.im.config import DEFAULT_PATH, ImConfig
from onemon.settings import ConfigError, load, load_file
from onemon.wire.keys import KeyFileError, parse_key_file

ANY_ADDRESS = {"", "::", "0.0.0.0"}  # noqa: S104 - bind-all addresses, mapped to loopback


@dataclass(frozen=True)
class Runtime:
    """Everything the driver uses, from its file and the collector's."""

    config: ImConfig
    endpoint: str
    token: str
    cluster_key_file: Path
    host_keys_dir: Path | None
    collector_port: int
    interval: float
    timer: float

    def key_text(self, host_id: int) -> str:
        """The wire key for a host's agent: its own key file, else the cluster key."""
        path = self.cluster_key_file
        if self.host_keys_dir is not None and (self.host_keys_dir / f"{host_id}.key").exists():
            path = self.host_keys_dir / f"{host_id}.key"
        try:
            text = path.read_text()
            parse_key_file(text)
        except OSError as exc:
            raise KeyFileError(f"{path}: {exc.strerror}") from None
        return text


def endpoint_from(http: HttpConfig) -> str:
    """The collector's JSON API as seen from this machine."""
    address = "127.0.0.1" if http.address in ANY_ADDRESS else http.address
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{http.port}"


def resolve(config: ImConfig, collector: CollectorConfig, token: str) -> Runtime:
    """Fill what the driver's file leaves open from the collector's."""
    hosts = collector.hosts
    return Runtime(
        config=config,
        endpoint=config.api_endpoint or endpoint_from(collector.http),
        token=token,
        cluster_key_file=collector.keys.cluster_key_file,
        host_keys_dir=collector.keys.host_keys_dir,
        collector_port=collector.listen.port,
        interval=config.monitoring_interval or hosts.monitoring_interval,
        timer=config.manager_timer or hosts.manager_timer,
    )


def load_runtime(path: Path | None) -> Runtime:
    """Read the driver's file (default path if it exists, else defaults) and the collector's."""
    if path is None:
        config = load_file(ImConfig, DEFAULT_PATH).config if DEFAULT_PATH.exists() else None
        config = config or load(ImConfig, {}).config
    else:
        config = load_file(ImConfig, path).config
    collector = load_file(CollectorConfig, config.collector_config).config
    token_file = config.admin_token_file or collector.http.admin_token_file
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError([f"admin token {token_file}: {exc.strerror}"]) from None
    return resolve(config, collector, token)
