"""The assembled collector on real loopback sockets: both wires, rejects, API, metrics."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import socket
import urllib.error
import urllib.request
import zlib
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
from onemon.collector.store import StoreConfig
from onemon.wire import native
from onemon.wire.keys import Key, write_key_file
from onemon.wire.model import Message, MessageType, Status
from onemon.wire.stream import FrameReader, decode_ack, frame

KEY = Key("cluster", b"c" * 32)
BOOT = (7).to_bytes(8, "big") + b"n" * 8


def legacy_line(mtype: str, host: int, ts: int, text: str, status: str = "SUCCESS") -> bytes:
    """An OpenNebula agent line, encoded exactly as monitord_client.rb does."""
    payload = base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    return f"{mtype} {status} {host} {ts} {payload}".encode()


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    key_file = tmp_path / "cluster.key"
    write_key_file(key_file, KEY)
    config = CollectorConfig(
        listen=ListenConfig(address="127.0.0.1", port=0, read_timeout=2.0),
        keys=KeysConfig(cluster_key_file=key_file),
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'c.db'}"),
        http=HttpConfig(
            address="127.0.0.1",
            port=0,
            render_interval=0.5,
            admin_token_file=tmp_path / "admin.token",
        ),
        hosts=HostsConfig(register=(HostEntry(3, "node3"), HostEntry(4, "node4"))),
    )
    app = Collector(config)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def udp(app: Collector, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for data in datagrams:
            sock.sendto(data, ("127.0.0.1", app.udp_port))


async def settle(app: Collector, expected: int, timeout: float = 5.0) -> None:
    """Wait until the collector has taken ``expected`` inputs (accepted + rejected)."""
    for _ in range(int(timeout / 0.02)):
        taken = sum(app.health.messages.values()) + sum(app.health.rejected.values())
        if taken >= expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {taken} of {expected} inputs processed")


async def http_get(app: Collector, path: str) -> bytes:
    def fetch() -> bytes:
        url = f"http://127.0.0.1:{app.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    return await asyncio.to_thread(fetch)


async def test_opennebula_legacy_lines_make_a_host_monitored_and_a_vm_visible(
    collector: Collector,
) -> None:
    """Reference §1.8 lines over UDP and TCP, as an unmodified OpenNebula node sends them."""
    monitor = base64.b64encode(b'CPU="1.01"\nMEMORY="140816"\nNETRX="0"\nNETTX="0"\n').decode()
    udp(
        collector,
        b"BEACON_HOST SUCCESS 3 1716200030 eNozNDc0MzIwMDA2AAAK5wH1",
        legacy_line("SYSTEM_HOST", 3, 1716200031, 'HOSTNAME="node3"\nTOTALCPU=800\n'),
        legacy_line("MONITOR_HOST", 3, 1716200040, "FREECPU=792\nUSEDCPU=8\nUSEDMEMORY=2147156\n"),
        legacy_line("MONITOR_VM", 3, 1716200041, f'VM = [ ID="12", DEPLOY_ID="u", MONITOR="{monitor}"]\n'),
    )  # fmt: skip
    state = legacy_line(
        "STATE_VM", 3, 1716200042, 'VM = [ ID="12", DEPLOY_ID="u",  STATE="RUNNING" ]'
    )
    _, writer = await asyncio.open_connection("127.0.0.1", collector.tcp_port)
    writer.write(state)  # one message per connection, no newline, as the Ruby agent
    writer.close()
    await settle(collector, 5)
    assert collector.state.hosts[3].state.name == "MONITORED"
    assert collector.state.vms[12].report == "RUNNING"
    await collector.render()
    body = (await http_get(collector, "/metrics")).decode()
    assert 'opennebula_vm_cpu_used_ratio{one_vm_id="12",one_host_id="3"} 1.01' in body
    assert 'opennebula_vm_mem_used_bytes{one_vm_id="12",one_host_id="3"} 144195584' in body
    assert 'opennebula_host_state{one_host_id="3"} 2' in body
    assert collector.health.messages[("MONITOR_VM", "legacy", "udp")] == 1
    assert collector.health.messages[("STATE_VM", "legacy", "tcp")] == 1


async def test_native_state_message_is_acknowledged_after_it_is_persisted(
    collector: Collector,
) -> None:
    msg = Message(
        MessageType.STATE_VM, Status.SUCCESS, 4, 1.0, {"VM": {"ID": 40, "STATE": "RUNNING"}}
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", collector.tcp_port)
    writer.write(frame(native.encode(msg, KEY, BOOT, 0)) + frame(native.encode(msg, KEY, BOOT, 0)))
    frames = FrameReader()
    acks: list[Any] = []
    while len(acks) < 2:
        acks += [decode_ack(f) for f in frames.feed(await reader.read(4096))]
    writer.close()
    assert [(a.seq, a.code) for a in acks] == [(0, "ok"), (0, "ok")]  # duplicate: ok, once
    assert collector.writer.backlog == 0 or collector.writer.up
    assert collector.state.vms[40].report == "RUNNING"
    assert collector.health.rejected["duplicate"] == 1


async def test_system_host_sent_again_over_tcp_is_a_duplicate_not_a_replay(
    collector: Collector,
) -> None:
    """An acknowledged SYSTEM_HOST whose answer was lost comes again: ok, counted, not a replay."""
    msg = Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 3, 1.0, {"HOSTNAME": "n3"})
    data = frame(native.encode(msg, KEY, BOOT, 7))
    reader, writer = await asyncio.open_connection("127.0.0.1", collector.tcp_port)
    writer.write(data + data)
    frames = FrameReader()
    acks: list[Any] = []
    while len(acks) < 2:
        acks += [decode_ack(f) for f in frames.feed(await reader.read(4096))]
    writer.close()
    assert [(a.seq, a.code) for a in acks] == [(7, "ok"), (7, "ok")]
    assert collector.state.hosts[3].state.name == "MONITORED"
    assert collector.health.rejected["duplicate"] == 1
    assert collector.health.rejected.get("replay", 0) == 0
    udp(collector, native.encode(msg, KEY, BOOT, 7))  # the same seq as a datagram: a replay
    await settle(collector, 3)
    assert collector.health.rejected["replay"] == 1


async def test_forged_replayed_foreign_and_garbage_inputs_change_nothing(
    collector: Collector,
) -> None:
    good = Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 3, 1.0, {"HOSTNAME": "n3"})
    forged = native.encode(good, Key("cluster", b"x" * 32), BOOT, 1)
    unknown_host = native.encode(
        Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 99, 1.0, {}), KEY, BOOT, 1
    )
    valid = native.encode(good, KEY, BOOT, 5)
    rng = random.Random(7)
    garbage = [rng.randbytes(rng.randrange(1, 1500)) for _ in range(300)]
    mutated = []
    for _ in range(300):
        data = bytearray(valid)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        mutated.append(bytes(data))
    before = collector.state.version
    udp(collector, forged, unknown_host, *garbage, *mutated)
    await settle(collector, 602)
    assert collector.state.hosts[3].state.name == "INIT"  # nothing forged got through
    assert 99 not in collector.state.hosts
    assert collector.state.version == before
    rejected = collector.health.rejected
    assert rejected["bad_mac"] >= 1 and rejected["unknown_host"] == 1
    assert sum(rejected.values()) == 602
    udp(collector, valid, valid)  # the genuine message once, then its replay
    await settle(collector, 604)
    assert collector.state.hosts[3].state.name == "MONITORED"
    assert rejected["replay"] == 1


async def test_hostile_tcp_streams_are_cut_and_counted(collector: Collector) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", collector.tcp_port)
    writer.write(b"\x00\xff\xff\xff")  # declares a 16 MiB frame, then stalls
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # hung up after the read timeout
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", collector.tcp_port)
    chunk = b"MONITOR_VM SUCCESS 3 1 " + b"A" * (1 << 20)
    with contextlib.suppress(ConnectionError):
        for _ in range(18):  # a legacy message beyond 16 MiB
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(ConnectionError):  # closed, or reset with our data unread
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert collector.health.rejected["read_timeout"] == 1
    assert collector.health.rejected["too_large"] == 1
    assert collector.state.vms == {}


async def test_json_api_lists_hosts_vms_and_history(collector: Collector) -> None:
    key_msg = Message(
        MessageType.MONITOR_HOST, Status.SUCCESS, 3, 1.0, {"FREECPU": 700, "USEDCPU": 100}
    )
    vm_msg = Message(
        MessageType.MONITOR_VM, Status.SUCCESS, 3, 1.0,
        {"VM": [{"ID": 31, "DEPLOY_ID": "d", "MONITOR": {"CPU": 12.5, "MEMORY": 2048}}]},
    )  # fmt: skip
    udp(collector, native.encode(key_msg, KEY, BOOT, 0), native.encode(vm_msg, KEY, BOOT, 0))
    await settle(collector, 2)
    await collector.writer.persisted()
    hosts = json.loads(await http_get(collector, "/api/v1/hosts"))
    assert [h["id"] for h in hosts] == [3, 4]
    assert hosts[0]["capacity"]["USED_CPU"] == 100 and hosts[0]["vms"] == [31]
    vm = json.loads(await http_get(collector, "/api/v1/vms/31"))
    assert vm["monitoring"] == {"CPU": 12.5, "MEMORY": 2048} and vm["host_id"] == 3
    history = json.loads(await http_get(collector, "/api/v1/vms/31/monitoring?since=0"))
    assert history[0]["CPU"] == 12.5 and history[0]["MEMORY"] == 2048
    host_history = json.loads(await http_get(collector, "/api/v1/hosts/3/monitoring?since=0"))
    assert host_history[0]["USED_CPU"] == 100
    health = json.loads(await http_get(collector, "/api/v1/health"))
    assert health["hosts"] == 2 and health["store"]["up"] is True


async def test_metrics_are_served_gzipped_when_asked(collector: Collector) -> None:
    await collector.render()

    def fetch() -> tuple[str | None, bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{collector.http_port}/metrics",
            headers={"Accept-Encoding": "gzip"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("Content-Encoding"), bytes(response.read())

    encoding, body = await asyncio.to_thread(fetch)
    assert encoding == "gzip"
    assert b"opennebula_host_total 2" in zlib.decompress(body, 31)


async def test_host_admin_through_the_cli_changes_what_the_collector_accepts(
    collector: Collector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from onemon.front import cli

    endpoint = f"http://127.0.0.1:{collector.http_port}"
    token_file = str(tmp_path / "admin.token")

    def run(*args: str, token: bool = True) -> Any:
        argv = ["--endpoint", endpoint, "--token-file", token_file if token else "/nonexistent"]
        code = cli.main([*argv, *args])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip().startswith(("{", "[")) else out

    with pytest.raises(SystemExit) as refused:
        await asyncio.to_thread(run, "host", "create", "node9", token=False)
    assert "no admin token" in str(refused.value)
    code, created = await asyncio.to_thread(run, "host", "create", "node9", "--id", "9")
    assert code == 0 and created["state"] == "INIT" and created["id"] == 9
    beacon = Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 9, 1.0, {"HOSTNAME": "node9"})
    udp(collector, native.encode(beacon, KEY, BOOT, 0))
    await settle(collector, 1)
    assert collector.state.hosts[9].state.name == "MONITORED"
    code, _ = await asyncio.to_thread(run, "host", "disable", "9")
    udp(collector, native.encode(beacon, KEY, BOOT, 1))
    await settle(collector, 2)
    assert collector.state.hosts[9].state.name == "DISABLED"  # monitored, but stays disabled
    await asyncio.to_thread(run, "host", "offline", "9")
    udp(collector, native.encode(beacon, KEY, BOOT, 2))
    await settle(collector, 3)
    assert collector.health.rejected["host_offline"] == 1
    await asyncio.to_thread(run, "host", "delete", "9")
    udp(collector, native.encode(beacon, KEY, BOOT, 3))
    await settle(collector, 4)
    assert 9 not in collector.state.hosts and collector.health.rejected["unknown_host"] == 1
    code, hosts = await asyncio.to_thread(run, "--json", "host", "list")
    assert [h["id"] for h in hosts] == [3, 4]


async def test_changing_requests_need_the_token(collector: Collector) -> None:
    def post(token: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{collector.http_port}/api/v1/hosts",
            data=b'{"name": "x"}', method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert await asyncio.to_thread(post, "wrong") == 401
    assert "x" not in {h.name for h in collector.state.hosts.values()}
