"""one-agent as a process: signals, reload, --once, and the OpenNebula drop-in entry point."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from onemon.agent import monitor_config
from onemon.agent.config import Periods
from onemon.agent.opennebula import PID_FILE
from onemon.wire import legacy, template
from onemon.wire.model import MessageType
from tests.e2e import stack

HOST = 21
TEST_DRIVER = {"libvirt_uri": "test:///default"}  # no daemon needed; one wild domain "test"
SLOW = {"beacon_host": 600, "system_host": 600, "monitor_host": 600, "state_vm": 600,
        "exec_vm": 600, "monitor_vm": 600, "sync_state_vm": 600}  # fmt: skip


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[stack.CollectorProcess]:
    key = stack.make_key(tmp_path)
    process = stack.collector(tmp_path / "c", key, [(HOST, "node21")])
    process.start()
    process.wait_ready()
    yield process
    process.kill()


@pytest.fixture
def agent_factory(
    tmp_path: Path, collector: stack.CollectorProcess
) -> Iterator[Callable[..., stack.Process]]:
    made: list[stack.Process] = []

    def make(periods: dict[str, float]) -> stack.Process:
        process = stack.agent(
            tmp_path / "a", tmp_path / "cluster.key", HOST, [f"127.0.0.1:{collector.port}"],
            periods=periods, extra=TEST_DRIVER,
        )  # fmt: skip
        process.start()
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()


def count(collector: stack.CollectorProcess, mtype: str) -> int:
    messages = collector.get("/api/v1/health")["messages"]
    return sum(int(messages.get(f"{mtype}/native/{t}", 0)) for t in ("udp", "tcp"))


def test_sigusr1_reruns_the_system_group_at_once(
    collector: stack.CollectorProcess, agent_factory: Callable[..., stack.Process]
) -> None:
    agent = agent_factory(SLOW)
    stack.wait_until(lambda: count(collector, "SYSTEM_HOST") == 1, 15, "the first SYSTEM_HOST")
    agent.signal(signal.SIGUSR1)
    stack.wait_until(lambda: count(collector, "SYSTEM_HOST") == 2, 5, "SYSTEM_HOST after SIGUSR1")
    host = collector.host(HOST)
    assert host["state"] == "MONITORED"
    assert [w["VM_NAME"] for w in host["wilds"]] == ["test"]  # the test driver's own domain


def test_sighup_reloads_and_a_bad_file_keeps_the_running_config(
    tmp_path: Path,
    collector: stack.CollectorProcess,
    agent_factory: Callable[..., stack.Process],
) -> None:
    agent = agent_factory(SLOW)
    stack.wait_until(lambda: count(collector, "BEACON_HOST") == 1, 15, "the first beacon")
    config = tmp_path / "a" / "agent.toml"
    config.write_text(config.read_text().replace("beacon_host = 600", "beacon_host = 0.5"))
    agent.signal(signal.SIGHUP)
    stack.wait_until(lambda: count(collector, "BEACON_HOST") >= 5, 10, "beacons every 0.5 s")
    config.write_text("host_id = 'not a number'\n")
    agent.signal(signal.SIGHUP)
    before = count(collector, "BEACON_HOST")
    time.sleep(2)
    assert count(collector, "BEACON_HOST") >= before + 3  # still running the old config
    assert "reload refused, keeping the running configuration" in agent.output()
    assert agent.proc is not None and agent.proc.poll() is None


def test_sigterm_stops_cleanly(
    collector: stack.CollectorProcess, agent_factory: Callable[..., stack.Process]
) -> None:
    agent = agent_factory(SLOW)
    stack.wait_until(lambda: count(collector, "BEACON_HOST") == 1, 15, "the first beacon")
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 5
    assert "one-agent stopped" in agent.output()


def test_once_prints_every_group_as_json(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(stack.toml({"host_id": 4, "state_dir": str(tmp_path / "s"), **TEST_DRIVER}))
    done = subprocess.run(
        [sys.executable, "-m", "onemon.agent.cli", "-c", str(config), "--once", "--json"],
        capture_output=True, timeout=60, cwd=stack.REPO, check=False,
    )  # fmt: skip
    messages = json.loads(done.stdout)
    by_type = {m["type"]: m for m in messages}
    assert by_type["SYSTEM_HOST"]["payload"]["TOTALCPU"] == os.cpu_count() * 100  # type: ignore[operator]
    assert by_type["MONITOR_HOST"]["status"] == "SUCCESS"
    assert by_type["STATE_VM"]["payload"]["SYNC_STATE"] == "yes"
    assert not (tmp_path / "s" / "vm_state.sqlite").exists()  # --once leaves no state behind


def test_opennebula_drop_in_replies_then_pushes_legacy_lines(tmp_path: Path) -> None:
    """OpenNebula's IM driver pipes the configuration in and reads <MONITOR_MESSAGES> (§4.1)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(15)
    port = listener.getsockname()[1]
    periods = Periods(beacon_host=1, monitor_host=1)
    xml = monitor_config.build(5, monitor_address="127.0.0.1", port=port, periods=periods)
    env = {**os.environ, "LIBVIRT_DEFAULT_URI": "test:///default"}
    done = subprocess.run(
        [sys.executable, "-m", "onemon.agent.cli", "--opennebula", "lxc", "5", "node5"],
        input=xml, capture_output=True, timeout=60, cwd=stack.REPO, env=env, check=False,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr.decode()
        reply = done.stdout.decode()
        sections = dict(re.findall(r"<(SYSTEM_HOST|MONITOR_HOST)>([^<]*)</", reply))
        system = template.parse(base64.b64decode(sections["SYSTEM_HOST"]).decode())
        assert system["HYPERVISOR"] == "lxc" and int(system["TOTALCPU"]) > 0
        assert re.search(r"<TIMESTAMP>\d+</TIMESTAMP></MONITOR_MESSAGES>", reply)
        seen: dict[MessageType, Any] = {}
        deadline = time.monotonic() + 15
        while len(seen) < 2 and time.monotonic() < deadline:
            message = legacy.decode(listener.recv(65535))
            assert message.host_id == 5
            seen[message.type] = message
        assert {MessageType.BEACON_HOST, MessageType.MONITOR_HOST} <= set(seen)
    finally:
        listener.close()
        if PID_FILE.exists():
            os.kill(int(PID_FILE.read_text()), signal.SIGTERM)
            PID_FILE.unlink()
