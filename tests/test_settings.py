"""TOML into frozen dataclasses: defaults, unknown keys warned, every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from onemon.agent.config import AgentConfig
from onemon.collector.config import CollectorConfig
from onemon.settings import ConfigError, load, load_file


def test_missing_keys_take_defaults() -> None:
    loaded = load(AgentConfig, {"host_id": 3, "periods": {"monitor_vm": 10}})
    config = loaded.config
    assert config.host_id == 3
    assert config.periods.monitor_vm == 10.0
    assert config.periods.sync_state_vm == 180.0  # OpenNebula issue 7659: never a crash
    assert config.send.port == 4124 and loaded.warnings == []


def test_unknown_keys_warn_with_their_path() -> None:
    loaded = load(AgentConfig, {"periods": {"beacon": 5}, "colour": "red"})
    assert sorted(loaded.warnings) == [
        "colour: unknown key, ignored",
        "periods.beacon: unknown key, ignored",
    ]


def test_every_error_is_reported_at_once_with_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        load(
            AgentConfig,
            {
                "host_id": "three",
                "hypervisor": "xen",
                "periods": {"state_vm": -1},
                "send": {"port": 70000, "collectors": "a"},
            },
        )
    text = str(err.value)
    for key in ("host_id", "hypervisor", "periods.state_vm", "send.port", "send.collectors"):
        assert key in text, key


def test_collector_hosts_register_list(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[hosts.register]]\nid = 3\nname = "node3"\n[listen]\nport = 5000\n')
    config = load_file(CollectorConfig, path).config
    assert config.listen.port == 5000
    assert config.hosts.register[0].name == "node3" and config.hosts.register[0].im_mad == "kvm"


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("host_id = \n")
    with pytest.raises(ConfigError) as err:
        load_file(AgentConfig, path)
    assert str(path) in str(err.value)
