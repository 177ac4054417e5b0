"""The driver's settings, completed from the collector's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from onemon.collector.config import CollectorConfig, HostsConfig, HttpConfig, KeysConfig
from onemon.front.im import cli
from onemon.front.im.config import ImConfig, SshConfig
from onemon.front.im.runtime import endpoint_from, load_runtime, resolve
from onemon.settings import ConfigError
from onemon.wire.keys import Key, KeyFileError, write_key_file


@pytest.mark.parametrize(
    ("address", "endpoint"),
    [("::", "http://127.0.0.1:9925"), ("0.0.0.0", "http://127.0.0.1:9925"),
     ("10.0.0.1", "http://10.0.0.1:9925"), ("fd00::1", "http://[fd00::1]:9925")],
)  # fmt: skip
def test_endpoint_from_the_collectors_http_section(address: str, endpoint: str) -> None:
    assert endpoint_from(HttpConfig(address=address)) == endpoint


def test_liveness_times_come_from_the_collector_unless_set() -> None:
    collector = CollectorConfig(hosts=HostsConfig(monitoring_interval=60, manager_timer=5))
    runtime = resolve(ImConfig(), collector, "t")
    assert (runtime.interval, runtime.timer) == (60, 5)
    runtime = resolve(ImConfig(monitoring_interval=9, manager_timer=1), collector, "t")
    assert (runtime.interval, runtime.timer) == (9, 1)


def test_a_host_key_file_wins_over_the_cluster_key(tmp_path: Path) -> None:
    write_key_file(tmp_path / "cluster.key", Key("cluster", b"c" * 32))
    (tmp_path / "hosts").mkdir()
    write_key_file(tmp_path / "hosts" / "5.key", Key("host5", b"h" * 32))
    keys = KeysConfig(cluster_key_file=tmp_path / "cluster.key", host_keys_dir=tmp_path / "hosts")
    runtime = resolve(ImConfig(), CollectorConfig(keys=keys), "t")
    assert runtime.key_text(5).startswith("host5 ")
    assert runtime.key_text(6).startswith("cluster ")
    (tmp_path / "cluster.key").write_text("garbage\n")
    with pytest.raises(KeyFileError):
        runtime.key_text(6)


def write_configs(tmp_path: Path, token: bool = True) -> Path:
    (tmp_path / "collector.toml").write_text(
        f'[http]\nport = 9999\nadmin_token_file = "{tmp_path / "admin.token"}"\n'
        "[hosts]\nmonitoring_interval = 30.0\n"
    )
    if token:
        (tmp_path / "admin.token").write_text("secret\n")
    path = tmp_path / "im.toml"
    path.write_text(f'collector_config = "{tmp_path / "collector.toml"}"\nretries = 1\n')
    return path


def test_load_runtime_reads_both_files(tmp_path: Path) -> None:
    runtime = load_runtime(write_configs(tmp_path))
    assert runtime.token == "secret" and runtime.endpoint == "http://127.0.0.1:9999"
    assert runtime.interval == 30 and runtime.config.retries == 1


def test_a_missing_token_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="admin token"):
        load_runtime(write_configs(tmp_path, token=False))


def test_command_line_overrides_like_im_mad_arguments(tmp_path: Path) -> None:
    path = write_configs(tmp_path)
    args = cli.parse_args(["-c", str(path), "-r", "0", "-t", "2", "-w", "5", "sync", "--force"])
    runtime = cli.runtime_from(args)
    assert (runtime.config.retries, runtime.config.threads, runtime.config.timeout) == (0, 2, 5)
    assert args.force and args.host_ids == []
    assert cli.main(["-c", str(path), "-t", "0", "sync"]) == 2


def test_config_validation() -> None:
    assert ImConfig(threads=0, retries=-1, timeout=0).validate()
    assert SshConfig(port=70000, user="a b", identity_file=Path("/x y")).validate()
    assert SshConfig().validate() == [] and ImConfig().validate() == []
