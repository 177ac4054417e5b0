"""The node layout: the agent's TOML (read back by one-agent itself) and the staging dir."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onemon.agent.config import AgentConfig
from onemon.front.im.config import AgentPeriods, NodeConfig
from onemon.front.im.node import Host, agent_toml, hypervisor, paths, staged, toml_string
from onemon.settings import load

NODE = NodeConfig(remote_dir="/var/tmp/one/", state_dir="/var/tmp/one_db/onemon",
                  periods=AgentPeriods(beacon_host=2))  # fmt: skip


def test_agent_toml_is_a_valid_agent_configuration() -> None:
    text = agent_toml(Host(7, "node7", "qemu"), NODE, 4124)
    loaded = load(AgentConfig, tomllib.loads(text))
    assert loaded.warnings == []
    config = loaded.config
    assert (config.host_id, config.host_name, config.hypervisor) == (7, "node7", "kvm")
    assert config.state_dir == Path("/var/tmp/one_db/onemon/7")
    assert config.probes.tree == Path("/var/tmp/one/im")
    assert config.send.key_file == Path("/var/tmp/one/etc/one-agent/agent.key")
    assert config.send.collectors == ("auto",) and config.send.port == 4124
    assert config.send.wire_format == "native"
    assert config.periods.beacon_host == 2 and config.periods.system_host == 600


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"])))
def test_any_host_name_round_trips_through_toml(name: str) -> None:
    assert tomllib.loads(f"x = {toml_string(name)}")["x"] == name


def test_paths_per_host() -> None:
    where = paths(NODE, 3)
    assert where.config == "/var/tmp/one/etc/one-agent/agent.toml"
    assert where.state_dir == "/var/tmp/one_db/onemon/3"


@pytest.mark.parametrize(("im_mad", "hv"), [("kvm", "kvm"), ("qemu", "kvm"), ("lxc", "lxc")])
def test_hypervisors(im_mad: str, hv: str) -> None:
    assert hypervisor(im_mad) == hv


def test_unknown_im_mad_is_refused() -> None:
    with pytest.raises(ValueError, match="dummy"):
        agent_toml(Host(1, "n", "dummy"), NODE, 4124)


def test_node_paths_are_validated() -> None:
    assert NodeConfig(remote_dir="relative").validate()
    assert NodeConfig(remote_dir="/a/../b").validate()
    assert NodeConfig(state_dir="/a b").validate()
    assert NodeConfig(agent_command=()).validate()
    assert NodeConfig().validate() == []


def test_staging_dir_is_private_and_links_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "kvm-probes.d").mkdir(parents=True)
    with staged(tree, "toml", "key") as stage:
        assert stat.S_IMODE(stage.stat().st_mode) == 0o700
        assert (stage / "im").resolve() == tree.resolve()
        etc = stage / "etc" / "one-agent"
        assert stat.S_IMODE(etc.stat().st_mode) == 0o700
        for name, text in (("agent.toml", "toml"), ("agent.key", "key")):
            assert (etc / name).read_text() == text
            assert stat.S_IMODE((etc / name).stat().st_mode) == 0o600
    assert not stage.exists()
