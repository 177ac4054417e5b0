"""The node side (``python -m onemon.agent.remote``) up to detaching; the rest runs in e2e."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from onemon.agent import remote
from onemon.agent.config import AgentConfig, ProbeConfig, SendConfig
from onemon.front.im.config import NodeConfig
from onemon.front.im.node import Host, agent_toml
from onemon.wire.keys import Key, write_key_file
from onemon.wire.model import MessageType


def pushed(tmp_path: Path, collector: str = "auto") -> Path:
    """What the driver would have rsynced: the TOML and the key, under tmp_path/remote."""
    node = NodeConfig(remote_dir=str(tmp_path / "remote"), state_dir=str(tmp_path / "state"),
                      collector_address=collector)  # fmt: skip
    etc = tmp_path / "remote" / "etc" / "one-agent"
    etc.mkdir(parents=True)
    write_key_file(etc / "agent.key", Key("cluster", b"k" * 32))
    (etc / "agent.toml").write_text(agent_toml(Host(3, "node3", "lxc"), node, 4124))
    return etc / "agent.toml"


def test_auto_is_the_front_end_address_from_ssh_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_CLIENT", "192.0.2.7 51000 22")
    config = remote.load(pushed(tmp_path))
    assert config.send.collectors == ("192.0.2.7",) and config.host_id == 3


def test_auto_without_ssh_client_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    with pytest.raises(remote.StartError, match="SSH_CLIENT"):
        remote.load(pushed(tmp_path))


def test_a_missing_key_fails_before_any_report(tmp_path: Path) -> None:
    path = pushed(tmp_path, collector="127.0.0.1")
    (path.parent / "agent.key").unlink()
    with pytest.raises(remote.StartError, match=r"agent\.key"):
        remote.load(path)


def test_start_with_a_bad_configuration_exits_255_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text("host_id = -4\n")
    assert remote.main(["start", str(bad)]) == remote.FAILED
    assert "host_id" in capsys.readouterr().err


async def test_the_first_report_carries_the_trees_version(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "VERSION").write_text("9.9.9\n")
    config = AgentConfig(
        host_id=3, hypervisor="lxc", state_dir=tmp_path / "state",
        probes=ProbeConfig(tree=tree), send=SendConfig(collectors=("127.0.0.1",)),
    )  # fmt: skip
    results = await remote.first_report(config)
    system = next(m for m in results if m.type is MessageType.SYSTEM_HOST)
    assert system.ok and system.payload["VERSION"] == "9.9.9"
    assert not (tmp_path / "state" / "vm_state.sqlite").exists()


def test_stop_without_an_agent(tmp_path: Path) -> None:
    assert remote.stop(tmp_path) == "no agent running"


def test_stop_never_signals_a_pid_that_is_not_an_agent(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / remote.PID_FILE).write_text(f"{other.pid}\n")
        assert "stale" in remote.stop(tmp_path)
        assert other.poll() is None and not (tmp_path / remote.PID_FILE).exists()
    finally:
        other.kill()
        other.wait()


def test_stop_ends_the_agent_named_by_the_pid_file(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    agent = subprocess.Popen([sys.executable, "-c", code, "onemon.agent.remote"])
    try:
        time.sleep(0.2)
        (tmp_path / remote.PID_FILE).write_text(f"{agent.pid}\n")
        assert remote.stop(tmp_path, wait=0.5) == f"stopped agent {agent.pid}"  # SIGKILL'ed
        assert agent.wait(5) != 0
    finally:
        agent.kill()
        agent.wait()
