"""The IM driver for real: a collector, ``python -m onemon.front.im run``, a private sshd as the
node, real rsync and a real one-agent started through SSH (reference §1.7, §4.1, §4.7, §5.3).

The node is this machine seen through sshd on loopback (``node1`` is an ssh_config alias of
127.0.0.1:<port>, checked strictly against a generated known_hosts); its remote and state
dirs are under the test's tmp dir. The collector runs with ``silence_error = false`` and a 3 s
monitoring interval, so the driver alone decides when a host is in ERROR.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import stack
from tests.e2e.infra import _proc, netns, requirements, sshd
from tests.e2e.stack import wait_until

INTERVAL = 3.0
TIMER = 0.5
FAST_PERIODS = {
    "beacon_host": 1, "system_host": 3, "monitor_host": 2, "state_vm": 1,
    "exec_vm": 5, "monitor_vm": 2, "sync_state_vm": 10,
}  # fmt: skip
SHIPPED_TREE = stack.REPO / "onemon" / "probes"


@dataclass
class Front:
    """The collector, the driver, and the node behind its sshd."""

    directory: Path
    collector: stack.CollectorProcess
    driver: stack.Process
    node: sshd.Sshd
    im_config: Path
    tree: Path

    @property
    def state_dir(self) -> Path:
        """The agents' state dirs on the node (one per host id)."""
        return self.directory / "node" / "state"

    @property
    def remote_dir(self) -> Path:
        """The node's SCRIPTS_REMOTE_DIR."""
        return self.directory / "node" / "remote"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON API call with the admin token."""
        token = (self.directory / "collector" / "admin.token").read_text().strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.collector.http_port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def create(self, name: str = "node1", im_mad: str = "lxc") -> int:
        """``onemon host create``."""
        return int(self.call("POST", "/api/v1/hosts", {"name": name, "im_mad": im_mad})["id"])

    def status(self, host_id: int, action: str) -> None:
        """``onemon host enable|disable|offline``."""
        self.call("POST", f"/api/v1/hosts/{host_id}/status", {"action": action})

    def host(self, host_id: int) -> dict[str, Any]:
        """One host from the API."""
        return self.collector.host(host_id)

    def agent_pid(self, host_id: int) -> int | None:
        """The pid of the host's running agent, from its pid file."""
        pid = _proc.read_pidfile(self.state_dir / str(host_id) / "one-agent.pid")
        return pid if pid is not None and _proc.alive(pid) else None

    def wait_state(self, host_id: int, state: str, timeout: float = 30.0) -> dict[str, Any]:
        """Until the host is in ``state``."""

        def reached() -> dict[str, Any] | None:
            host = self.host(host_id)
            return host if host["state"] == state else None

        return wait_until(reached, timeout, f"host {host_id} {state}; driver log:\n{self.log()}")

    def im(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m onemon.front.im -c <config> <args>``."""
        argv = [sys.executable, "-m", "onemon.front.im", "-c", str(self.im_config), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                              cwd=stack.REPO)  # fmt: skip

    def log(self) -> str:
        """The driver's log so far (tail)."""
        return self.driver.output()[-3000:]


def _skip() -> None:
    reason = requirements.skip_reason() or sshd.skip_reason()
    if reason is not None:
        pytest.skip(reason)


def _write_im_config(directory: Path, collector_toml: Path, node: sshd.Sshd, tree: Path) -> Path:
    config = {
        "collector_config": str(collector_toml),
        "probe_tree": str(tree),
        "retries": 1,
        "retry_delay": 0.2,
        "timeout": 30.0,
        "threads": 4,
        "log_level": "INFO",
        "ssh": {
            "port": node.port,
            "identity_file": str(node.client_key),
            "known_hosts_file": str(node.known_hosts),
            "host_key_checking": "yes",
            "config_file": str(node.ssh_config),
            "connect_timeout": 5.0,
        },
        "node": {
            "remote_dir": str(directory / "node" / "remote"),
            "state_dir": str(directory / "node" / "state"),
            "agent_command": [sys.executable, "-m", "onemon.agent.remote"],
        },
    }
    periods = "[node.periods]\n" + "".join(f"{k} = {v}\n" for k, v in FAST_PERIODS.items())
    path = directory / "im.toml"
    path.write_text(stack.toml(config) + periods)
    return path


@contextlib.contextmanager
def running_front(directory: Path, node: sshd.Sshd, listen: str = "127.0.0.1") -> Iterator[Front]:
    """Collector (agents' port on ``listen``) and driver for ``node``; agents killed after."""
    tree = directory / "tree"
    shutil.copytree(SHIPPED_TREE, tree, symlinks=True)
    key = stack.make_key(directory)
    hosts = {"silence_error": False, "monitoring_interval": INTERVAL, "manager_timer": TIMER}
    extra = {"hosts": hosts, "listen": {"address": listen}}
    collector = stack.collector(directory / "collector", key, [], extra=extra)
    im_config = _write_im_config(directory, directory / "collector" / "collector.toml", node, tree)
    argv = [sys.executable, "-m", "onemon.front.im", "-c", str(im_config), "run"]
    driver = stack.Process("onemon-im", argv, directory / "im.log")
    made = Front(directory, collector, driver, node, im_config, tree)
    try:
        collector.start()
        collector.wait_ready()
        driver.start()
        yield made
    finally:
        driver.stop()
        for pid_file in made.state_dir.glob("*/one-agent.pid"):
            pid = _proc.read_pidfile(pid_file)
            if pid is not None:
                _proc.terminate(pid)
        collector.stop()
        node.stop()


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    """A node on loopback (``node1``), its collector and driver."""
    _skip()
    node = sshd.start(tmp_path / "sshd")
    node.add_alias("node1")
    with running_front(tmp_path, node) as made:
        yield made


def test_a_created_host_gets_its_agent_over_ssh_and_becomes_monitored(front: Front) -> None:
    host_id = front.create("node1", "kvm")
    host = front.wait_state(host_id, "MONITORED")
    assert host["template"]["VERSION"] == (SHIPPED_TREE / "VERSION").read_text().strip()
    assert host["template"]["HYPERVISOR"] == "kvm" and host["error"] == ""
    pid = front.agent_pid(host_id)
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"onemon.agent.remote" in cmdline and b"start" in cmdline
    remote = front.remote_dir
    assert (remote / "im" / "VERSION").exists() and (remote / "im" / "kvm-probes.d").is_dir()
    for name in ("agent.toml", "agent.key"):
        assert (remote / "etc" / "one-agent" / name).stat().st_mode & 0o077 == 0
    assert remote.stat().st_mode & 0o077 == 0
    assert "Accepted publickey for root" in front.node.output()
    wait_until(lambda: front.host(host_id)["capacity"]["FREE_MEMORY"] > 0, 10, "MONITOR_HOST")


def test_a_killed_agent_is_restarted_after_the_silence_interval(front: Front) -> None:
    host_id = front.create()
    front.wait_state(host_id, "MONITORED")
    first = front.agent_pid(host_id)
    assert first is not None
    os.kill(first, signal.SIGKILL)
    states: set[str] = set()

    def restarted() -> int | None:
        states.add(front.host(host_id)["state"])
        pid = front.agent_pid(host_id)
        return pid if pid not in (None, first) else None

    started = time.monotonic()
    second = wait_until(restarted, 30, f"a new agent; driver log:\n{front.log()}")
    assert time.monotonic() - started >= INTERVAL - 1.5  # not before the host fell silent
    assert states == {"MONITORED"}  # silence alone never meant ERROR
    front.wait_state(host_id, "MONITORED")
    assert second != first and "no message for" in front.log()


def test_an_unreachable_node_goes_to_error_with_the_drivers_text_and_recovers(
    front: Front,
) -> None:
    host_id = front.create()
    front.wait_state(host_id, "MONITORED")
    front.node.stop()
    pid = front.agent_pid(host_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    host = front.wait_state(host_id, "ERROR", timeout=30)
    assert host["error"].startswith("Cannot start the agent on node1: rsync failed: ")
    assert host["error"].endswith("Connection refused (2 attempts)"), host["error"]
    front.node.start()
    host = front.wait_state(host_id, "MONITORED", timeout=30)
    assert host["error"] == "" and front.agent_pid(host_id) is not None


def test_offline_stops_the_agent_enable_starts_it_delete_stops_it(front: Front) -> None:
    host_id = front.create()
    front.wait_state(host_id, "MONITORED")
    first = front.agent_pid(host_id)
    front.status(host_id, "offline")
    wait_until(lambda: front.agent_pid(host_id) is None, 20, "the agent stopped on offline")
    assert first is not None and not _proc.alive(first)
    front.status(host_id, "enable")
    front.wait_state(host_id, "MONITORED")
    assert front.agent_pid(host_id) not in (None, first)
    front.call("DELETE", f"/api/v1/hosts/{host_id}")
    wait_until(lambda: front.agent_pid(host_id) is None, 20, "the agent stopped on delete")


def test_sync_pushes_only_to_older_nodes_and_new_probes_run_without_restart(
    front: Front,
) -> None:
    host_id = front.create()
    front.wait_state(host_id, "MONITORED")
    pid = front.agent_pid(host_id)
    done = front.im("sync")
    assert done.returncode == 0 and f"host {host_id} (node1): current" in done.stdout, done
    (front.tree / "VERSION").write_text("99.0.0\n")
    probe = front.tree / "lxc-probes.d" / "host" / "system" / "zz_custom.sh"
    probe.write_text("#!/bin/sh\necho 'CUSTOM_PROBE = \"yes\"'\n")
    probe.chmod(0o755)
    done = front.im("sync")
    assert done.returncode == 0 and "synced: VERSION 0.1.0 -> 99.0.0" in done.stdout, done

    def reported() -> bool:
        template = front.host(host_id)["template"]
        return template.get("VERSION") == "99.0.0" and template.get("CUSTOM_PROBE") == "yes"

    wait_until(reported, 20, "the new VERSION and probe in SYSTEM_HOST")
    assert front.agent_pid(host_id) == pid  # sync never restarts the agent
    done = front.im("sync")
    assert "current: VERSION 99.0.0" in done.stdout, done
    assert "synced" in front.im("sync", "--force").stdout


def test_a_node_in_its_own_network_namespace_reports_to_where_it_was_reached_from(
    tmp_path: Path, netns_factory: Callable[[int], list[netns.Netns]]
) -> None:
    _skip()
    ns = netns_factory(1)[0]
    assert ns.host_ip is not None
    node = sshd.start(tmp_path / "sshd", address=ns.ns_ip, netns=ns.name)
    node.add_alias("node-ns")
    with running_front(tmp_path, node, listen=ns.host_ip) as front:
        host_id = front.create("node-ns")
        front.wait_state(host_id, "MONITORED")
        pid = front.agent_pid(host_id)
        assert pid is not None
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        log = (front.state_dir / str(host_id) / "one-agent.log").read_text()
        assert f"native wire to {ns.host_ip}:{front.collector.port}" in log  # auto = $SSH_CLIENT
