"""What an IM driver tells the collector: ``error`` and ``monitored``; and ``silence_error``."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onemon.collector.app import Collector
from onemon.collector.config import (
    CollectorConfig,
    HostEntry,
    HostsConfig,
    HttpConfig,
    KeysConfig,
    ListenConfig,
)
from onemon.collector.model import HostState, VmReport
from onemon.collector.store import StoreConfig, StoreReader
from onemon.wire import native
from onemon.wire.keys import Key, write_key_file
from onemon.wire.model import Message, MessageType, Status
from tests.e2e.stack import free_port

KEY = Key("cluster", b"c" * 32)
BOOT = (9).to_bytes(8, "big") + b"i" * 8


async def make(tmp_path: Path, **hosts: Any) -> Collector:
    key_file = tmp_path / "cluster.key"
    write_key_file(key_file, KEY)
    config = CollectorConfig(
        listen=ListenConfig(address="127.0.0.1", port=free_port()),
        keys=KeysConfig(cluster_key_file=key_file),
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'c.db'}"),
        http=HttpConfig(address="127.0.0.1", port=0, admin_token_file=tmp_path / "admin.token"),
        hosts=HostsConfig(register=(HostEntry(3, "node3"), HostEntry(4, "node4")), **hosts),
    )
    app = Collector(config)
    await app.start()
    return app


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    app = await make(tmp_path)
    try:
        yield app
    finally:
        await app.stop()


def send(app: Collector, *messages: Message) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for seq, message in enumerate(messages):
            sock.sendto(native.encode(message, KEY, BOOT, seq), ("127.0.0.1", app.udp_port))


async def until(check: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def status(app: Collector, host_id: int, body: dict[str, Any]) -> tuple[int, Any]:
    token = app.config.http.admin_token_file.read_text().strip()

    def post() -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{app.http_port}/api/v1/hosts/{host_id}/status",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return await asyncio.to_thread(post)


async def monitored_with_vms(app: Collector) -> None:
    """Host 3 MONITORED with VMs 7 and 8 running."""
    vms = {"VM": [{"ID": 7, "STATE": "RUNNING"}, {"ID": 8, "STATE": "RUNNING"}]}
    send(
        app,
        Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 3, 1.0, {"HOSTNAME": "node3"}),
        Message(MessageType.STATE_VM, Status.SUCCESS, 3, 1.0, vms),
    )
    await until(lambda: len(app.state.vms) == 2 and app.state.hosts[3].state.name == "MONITORED")


async def test_error_puts_the_host_in_error_with_the_text_and_its_vms_in_unknown(
    collector: Collector,
) -> None:
    await monitored_with_vms(collector)
    text = "Cannot start the agent on node3: ssh: connect to host node3 port 22: Connection refused"
    code, host = await status(collector, 3, {"action": "error", "message": text})
    assert code == 200 and host["state"] == "ERROR" and host["error"] == text
    assert {vm.report for vm in collector.state.vms.values()} == {VmReport.UNKNOWN}
    await collector.writer.persisted()
    snapshot = StoreReader(collector.config.store.url).load()
    stored = {h.id: h for h in snapshot.hosts}[3]
    assert stored.state is HostState.ERROR and stored.error == text
    assert {vm.report for vm in snapshot.vms} == {VmReport.UNKNOWN}


async def test_error_without_text_has_a_default_and_is_ignored_for_offline_hosts(
    collector: Collector,
) -> None:
    code, host = await status(collector, 4, {"action": "error"})
    assert code == 200 and host["state"] == "ERROR" and host["error"]
    await status(collector, 3, {"action": "offline"})
    code, host = await status(collector, 3, {"action": "error", "message": "x"})
    assert code == 200 and host["state"] == "OFFLINE" and host["error"] == ""


async def test_error_text_is_bounded(collector: Collector) -> None:
    code, host = await status(collector, 4, {"action": "error", "message": "e" * 100_000})
    assert code == 200 and len(host["error"]) == 4096


async def test_monitored_recovers_a_known_host_but_a_new_one_waits_for_system_host(
    collector: Collector,
) -> None:
    await monitored_with_vms(collector)
    await status(collector, 3, {"action": "error", "message": "start failed"})
    code, host = await status(collector, 3, {"action": "monitored"})
    assert code == 200 and host["state"] == "MONITORED" and host["error"] == ""
    code, host = await status(collector, 4, {"action": "monitored"})
    assert code == 200 and host["state"] == "INIT"  # no template yet: SYSTEM_HOST makes it so
    await status(collector, 4, {"action": "offline"})
    code, host = await status(collector, 4, {"action": "monitored"})
    assert host["state"] == "OFFLINE"


async def test_unknown_actions_and_hosts_are_refused(collector: Collector) -> None:
    code, text = await status(collector, 3, {"action": "reboot"})
    assert code == 400 and "error or monitored" in text
    code, text = await status(collector, 99, {"action": "error", "message": "x"})
    assert code == 400 and "no host 99" in text


@pytest.mark.parametrize("silence_error", [True, False])
async def test_silence_error_switch(tmp_path: Path, silence_error: bool) -> None:
    app = await make(
        tmp_path, monitoring_interval=0.3, manager_timer=0.1, silence_error=silence_error
    )
    try:
        await monitored_with_vms(app)
        await asyncio.sleep(1.0)
        expected = "ERROR" if silence_error else "MONITORED"
        assert app.state.hosts[3].state.name == expected
    finally:
        await app.stop()
