"""In-process sharded collectors on one real store, and what the tests ask of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbservers import free_port

from onemon.collector.app import Collector
from onemon.collector.config import (
    CollectorConfig,
    HostEntry,
    HostsConfig,
    HttpConfig,
    KeysConfig,
    ListenConfig,
    ShardAssignment,
    ShardingConfig,
)
from onemon.collector.store import StoreConfig
from onemon.wire import native
from onemon.wire.keys import Key, write_key_file
from onemon.wire.model import Message, MessageType, Status
from onemon.wire.stream import Ack, FrameReader, decode_ack, frame

KEY = Key("cluster", b"s" * 32)
BOOT = (9).to_bytes(8, "big") + b"shardtst"
FAST = {"check_interval": 0.2, "lease": 1.0, "takeover_delay": 0.3}
"""Leases tight enough for tests (the defaults are 0.5 / 3 / 1 s)."""


def make_config(
    tmp: Path,
    name: str,
    url: str,
    *,
    shards: int = 2,
    home: tuple[int, ...] | None = None,
    standby: tuple[int, ...] | None = None,
    assign: dict[int, tuple[int, ...]] | None = None,
    hosts: tuple[int, ...] = (),
    **sharding: Any,
) -> CollectorConfig:
    """A sharded collector's configuration on loopback ports of its own."""
    key_file = tmp / "cluster.key"
    if not key_file.exists():
        write_key_file(key_file, KEY)
    port = free_port()
    return CollectorConfig(
        listen=ListenConfig(address="127.0.0.1", port=port, read_timeout=2.0),
        keys=KeysConfig(cluster_key_file=key_file),
        store=StoreConfig(url=url, batch_delay=0.01, connect_timeout=2.0, retry_max=0.5),
        http=HttpConfig(address="127.0.0.1", port=0, admin_token_file=tmp / f"{name}.token"),
        hosts=HostsConfig(
            manager_timer=0.5, register=tuple(HostEntry(h, f"node{h}") for h in hosts)
        ),
        sharding=ShardingConfig(
            enabled=True,
            shards=shards,
            home=home,
            standby=standby,
            name=name,
            assign=tuple(ShardAssignment(s, h) for s, h in (assign or {}).items()),
            **{**FAST, **sharding},
        ),
    )


def led(app: Collector) -> set[int]:
    """The shards ``app`` applies now."""
    assert app.shards is not None
    return set(app.shards.router.led)


async def until(check: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def state_vm(host: int, states: dict[int, str]) -> Message:
    """A STATE_VM report."""
    vms = [{"ID": vm, "STATE": s} for vm, s in states.items()]
    return Message(MessageType.STATE_VM, Status.SUCCESS, host, time.time(), {"VM": vms})


def beacon(host: int) -> Message:
    """A beacon."""
    return Message(MessageType.BEACON_HOST, Status.SUCCESS, host, time.time(), {})


async def send_frames(app: Collector, *items: tuple[Message, int]) -> list[Ack]:
    """Native TCP frames (message, seq) to ``app``; its answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.tcp_port)
    try:
        writer.write(b"".join(frame(native.encode(m, KEY, BOOT, seq)) for m, seq in items))
        frames, acks = FrameReader(), list[Ack]()
        async with asyncio.timeout(10):
            while len(acks) < len(items):
                acks += [decode_ack(f) for f in frames.feed(await reader.read(4096))]
        return acks
    finally:
        writer.close()
