"""Acceptance with the real client: collector + agents + one-front as processes, pyone unchanged.

Node A speaks the native wire (host figures from psutil, domains from libvirt's ``test://``
driver: ``one-7`` running and a wild ``wild-a``). Node B speaks OpenNebula's legacy line with an
exec probe in ``vm/monitor`` reporting fixed figures for VM 8, so exact values can be checked.
No libvirtd, no root needed.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyone
import pytest

from tests.e2e import stack
from tests.front.schemas import errors

UUID_7 = "6695eb01-f6a4-8304-79aa-97f2502e193f"
MONITOR_8 = 'CPU="12.5"\nMEMORY="524288"\nNETRX="1000"\nNETTX="2000"\nDISKRDBYTES="4096"\n'


def node_xml(domains: list[tuple[str, str]]) -> str:
    """A libvirt test-driver node with running domains (name, uuid)."""
    body = "".join(
        f"<domain type='test'><name>{name}</name><uuid>{uuid}</uuid><memory>524288</memory>"
        "<vcpu>2</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
        for name, uuid in domains
    )
    return ("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
            f"<active>2</active><mhz>2000</mhz><model>i686</model></cpu><memory>8388608</memory>"
            f"{body}</node>")  # fmt: skip


def probe_tree(root: Path) -> Path:
    """A probe tree whose vm/monitor probe reports VM 8 with fixed figures."""
    group = root / "kvm-probes.d" / "vm" / "monitor"
    group.mkdir(parents=True)
    encoded = base64.b64encode(MONITOR_8.encode()).decode()
    probe = group / "fixed.sh"
    probe.write_text(f'#!/bin/sh\necho \'VM=[ID="8", DEPLOY_ID="uuid-8", MONITOR="{encoded}"]\'\n')
    probe.chmod(probe.stat().st_mode | stat.S_IXUSR)
    return root


class FrontProcess(stack.Process):
    """one-front from this repository."""

    url: str = ""
    one_auth: Path = Path()


def front(directory: Path, collector: stack.CollectorProcess) -> FrontProcess:
    """A configured (not yet started) one-front over ``collector``."""
    directory.mkdir(parents=True, exist_ok=True)
    port = stack.free_port()
    config = {
        "log_level": "INFO",
        "listen": {"address": "127.0.0.1", "port": port},
        "store": {"url": f"sqlite:///{collector.db}", "cache_seconds": 0.5},
        "collector": {
            "endpoint": f"http://127.0.0.1:{collector.http_port}",
            "admin_token_file": str(collector.db.parent / "admin.token"),
        },
        "users": {"url": f"sqlite:///{directory / 'front.db'}",
                  "one_auth": str(directory / "one_auth")},
    }  # fmt: skip
    path = directory / "front.toml"
    path.write_text(stack.toml(config))
    argv = [sys.executable, "-m", "onemon.front.main", "-c", str(path)]
    process = FrontProcess("one-front", argv, directory / "front.log")
    process.url = f"http://127.0.0.1:{port}/RPC2"
    process.one_auth = directory / "one_auth"
    return process


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    key = stack.make_key(tmp_path)
    collector = stack.collector(tmp_path / "c", key, [])
    collector.start()
    started: list[stack.Process] = [collector]
    try:
        collector.wait_ready()
        one_front = front(tmp_path / "f", collector)
        one_front.start()
        started.append(one_front)
        stack.wait_until(lambda: one_front.one_auth.exists() and _answers(one_front.url), 20,
                         "one-front to listen")  # fmt: skip
        yield {"tmp": tmp_path, "key": key, "collector": collector, "front": one_front,
               "started": started}  # fmt: skip
    finally:
        for process in reversed(started):
            process.kill()


def _answers(url: str) -> bool:
    request = urllib.request.Request(url, data=b"<x/>", method="POST")
    with urllib.request.urlopen(request, timeout=2) as response:
        return response.status == 200


def start_agent(env: dict[str, Any], host_id: int, extra: dict[str, Any]) -> stack.Process:
    collector: stack.CollectorProcess = env["collector"]
    agent = stack.agent(env["tmp"] / f"a{host_id}", env["key"], host_id,
                        [f"127.0.0.1:{collector.port}"], extra=extra)  # fmt: skip
    agent.start()
    env["started"].append(agent)
    return agent


def test_pyone_reads_what_the_agents_sent(processes: dict[str, Any]) -> None:
    tmp: Path = processes["tmp"]
    collector: stack.CollectorProcess = processes["collector"]
    one_front: FrontProcess = processes["front"]
    one = pyone.OneServer(one_front.url, session=one_front.one_auth.read_text().strip())

    assert one.host.allocate("node0", "kvm", "kvm", -1) == 0
    assert one.host.allocate("node1", "kvm", "kvm", -1) == 1
    assert [h.STATE for h in one.hostpool.info().HOST] == [0, 0]
    (tmp / "node0.xml").write_text(node_xml([("one-7", UUID_7), ("wild-a", "1" * 32)]))
    (tmp / "node1.xml").write_text(node_xml([("one-8", "8" * 32)]))
    start_agent(processes, 0, {"libvirt_uri": f"test://{tmp / 'node0.xml'}"})
    start_agent(processes, 1, {
        "libvirt_uri": f"test://{tmp / 'node1.xml'}",
        "send": {"wire_format": "legacy"},
        "probes": {"tree": str(probe_tree(tmp / "tree")), "times_missing": 2, "timeout": 10},
    })  # fmt: skip

    def monitored() -> bool:
        hosts = one.hostpool.info().HOST
        return all(h.STATE == 2 and h.MONITORING.TIMESTAMP for h in hosts)

    stack.wait_until(monitored, 60, "both hosts MONITORED with monitoring")
    stack.wait_until(lambda: len(one.vm.monitoring(8).MONITORING) >= 1, 30, "VM 8 monitoring")

    host = one.host.info(0)
    seen = collector.host(0)
    assert host.NAME == "node0" and seen["template"]["TOTALCPU"] == host.HOST_SHARE.TOTAL_CPU
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    assert int(meminfo[1]) == host.HOST_SHARE.TOTAL_MEM
    assert host.TEMPLATE["HOSTNAME"] == seen["template"]["HOSTNAME"]
    assert host.TEMPLATE["VM"]["VM_NAME"] == "wild-a" and host.TEMPLATE["TOTAL_WILDS"] == "1"
    records = one.host.monitoring(0).MONITORING  # read before the rows: all of them are there
    rows = collector.get("/api/v1/hosts/0/monitoring?since=0")
    by_time = {int(r["timestamp"]): r for r in rows}
    mon = host.MONITORING
    assert by_time[mon.TIMESTAMP]["FREE_MEMORY"] == mon.CAPACITY.FREE_MEMORY
    assert round(by_time[mon.TIMESTAMP]["USED_CPU"]) == mon.CAPACITY.USED_CPU
    assert by_time[mon.TIMESTAMP]["NETRX"] == mon.SYSTEM.NETRX
    assert len(records) >= 1
    for record in records:
        node, sent = record.gds_elementtree_node_, by_time[record.TIMESTAMP]
        assert int(node.findtext("CAPACITY/FREE_MEMORY")) == sent["FREE_MEMORY"]
        assert int(node.findtext("SYSTEM/NETTX")) == sent["NETTX"]

    vms = one.vmpool.info(-2, -1, -1, -1).VM
    assert [v.ID for v in vms] == [7, 8]
    assert (vms[0].STATE, vms[0].LCM_STATE, vms[0].DEPLOY_ID) == (3, 3, UUID_7)
    assert vms[0].HISTORY_RECORDS.HISTORY[0].HOSTNAME == "node0"
    vm7 = one.vm.info(7)
    assert vm7.DEPLOY_ID == UUID_7 and vm7.HISTORY_RECORDS.HISTORY[0].HID == 0
    vm8 = one.vm.info(8)
    assert Decimal("12.5") == vm8.MONITORING.CPU and vm8.MONITORING.MEMORY == 524288
    history = one.vm.monitoring(8).MONITORING
    assert history[-1].NETRX == 1000 and history[-1].DISKRDBYTES == 4096
    assert one.vmpool.monitoring(-2, 0).MONITORING[-1].ID == 8

    for method, params, schema in [
        ("one.hostpool.info", (), "host_pool"), ("one.host.info", (0,), "host"),
        ("one.vmpool.info", (-2, -1, -1, -1), "vm_pool"), ("one.vm.info", (7,), "vm"),
        ("one.vm.info", (8,), "vm"), ("one.vm.monitoring", (8,), "monitoring_data"),
    ]:  # fmt: skip
        assert errors(_raw(one_front, method, *params), schema) == [], method

    assert one.host.status(1, pyone.HOST_STATUS.DISABLED) == 1
    assert collector.host(1)["state"] == "DISABLED"
    assert one.host.info(1).STATE == pyone.HOST_STATES.DISABLED


def _raw(process: FrontProcess, method: str, *params: Any) -> str:
    session = process.one_auth.read_text().strip()
    answer = getattr(xmlrpc.client.ServerProxy(process.url), method)(session, *params)
    assert answer[0] is True, answer
    return str(answer[1])


def test_one_auth_is_private(processes: dict[str, Any]) -> None:
    one_front: FrontProcess = processes["front"]
    assert stat.S_IMODE(os.stat(one_front.one_auth).st_mode) == 0o600
    user, password = one_front.one_auth.read_text().strip().split(":", 1)
    assert user == "oneadmin" and password not in (one_front.log.read_text())
    with pytest.raises(pyone.OneAuthenticationException):
        pyone.OneServer(one_front.url, session="oneadmin:wrong").hostpool.info()
    assert pyone.OneServer(one_front.url, session=f"{user}:{password}").system.version()
    assert one_front.stop() == 0  # SIGTERM: a clean stop
    assert "Traceback" not in one_front.output()
