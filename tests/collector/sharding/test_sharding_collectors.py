"""Sharded collectors in-process on one real store: who leads, redirects, relays, handovers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from shardkit import BOOT, KEY, beacon, led, make_config, send_frames, state_vm, until

from onemon.agent.sender import Sender
from onemon.collector.app import Collector
from onemon.collector.config import CollectorConfig, ShardingConfig
from onemon.collector.sharding import MOVED, NO_LEADER
from onemon.collector.store import StoreReader
from onemon.wire import native

ASSIGN = {0: (10, 12), 1: (11, 13)}
HOSTS = (10, 11, 12, 13)


@pytest.fixture
async def apps(tmp_path: Path, store_url: str) -> AsyncIterator[dict[str, Any]]:
    """Start and stop collectors: ``await apps['start'](config)``; configs from ``apps['config']``."""
    running: list[Collector] = []

    def config(name: str, **kwargs: Any) -> CollectorConfig:
        kwargs.setdefault("assign", ASSIGN)
        kwargs.setdefault("hosts", HOSTS)
        return make_config(tmp_path, name, store_url, **kwargs)

    async def start(cfg: CollectorConfig) -> Collector:
        app = Collector(cfg)
        await app.start()
        running.append(app)
        return app

    async def stop(app: Collector) -> None:
        running.remove(app)
        await app.stop()

    try:
        yield {"config": config, "start": start, "stop": stop, "url": store_url}
    finally:
        for app in running:
            with contextlib.suppress(Exception):
                await app.stop()


async def test_each_leads_its_home_shard_redirects_and_relays_the_other(
    apps: dict[str, Any],
) -> None:
    a = await apps["start"](apps["config"]("a", home=(0,)))
    b = await apps["start"](apps["config"]("b", home=(1,)))
    await until(lambda: led(a) == {0} and led(b) == {1}, 10, "a on 0, b on 1")
    assert set(a.state.hosts) == {10, 12} and set(b.state.hosts) == {11, 13}
    await until(lambda: a.shards and a.shards.router.targets.get(1), 5, "a to know b")

    acks = await send_frames(
        a, (state_vm(11, {110: "RUNNING"}), 0), (state_vm(10, {100: "RUNNING"}), 0)
    )
    assert (acks[0].seq, acks[0].code) == (0, f"{MOVED}127.0.0.1:{b.config.listen.port}")
    assert (acks[1].seq, acks[1].code) == (0, "ok")
    assert 110 not in a.state.vms and a.state.vms[100].report == "RUNNING"
    assert a.health.shard_redirects == 1

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # a datagram for b, sent to a
        sock.sendto(native.encode(beacon(13), KEY, BOOT, 0), ("127.0.0.1", a.udp_port))
    await until(lambda: b.health.messages.get(("BEACON_HOST", "native", "udp")), 5, "the relay")
    assert a.health.shard_relayed == 1 and b.state.hosts[13].last_seen > 0

    body = a.metrics.renderer.render(a.state.hosts, a.state.vms).body.decode()
    assert 'onemon_shard_leader{shard="0"} 1' in body
    assert 'onemon_shard_leader{shard="1"} 0' in body
    assert 'onemon_shard_hosts{shard="0"} 2' in body
    assert 'one_host_id="11"' not in body  # b's hosts are b's to export
    health = a.health_json()["sharding"]
    assert health["led"] == [0] and health["leaders"] == {"1": f"127.0.0.1:{b.config.listen.port}"}


async def test_agent_follows_the_redirect_then_fails_over_when_its_leader_stops(
    apps: dict[str, Any], tmp_path: Path
) -> None:
    a = await apps["start"](apps["config"]("a", home=(0,)))
    b = await apps["start"](apps["config"]("b", home=(1,)))
    await until(lambda: led(a) == {0} and led(b) == {1}, 10, "a on 0, b on 1")
    await until(lambda: a.shards and a.shards.router.targets.get(1), 5, "a to know b")
    sent: list[str] = []
    sender = Sender([f"127.0.0.1:{a.tcp_port}", f"127.0.0.1:{b.tcp_port}"], tmp_path / "agent",
                    KEY, ack_timeout=2.0, backoff=(0.2,))  # fmt: skip
    async with sender:
        for i in range(6):
            state = ("RUNNING", "POWEROFF", "SUSPENDED")[i % 3]
            sent.append(state)
            await sender.send(state_vm(11, {111: state}))
            assert await sender.flush(10)
            if i == 2:
                assert sender.stats.redirects == 1
                assert sender.stats.current_collector == f"127.0.0.1:{b.tcp_port}"
                await apps["stop"](b)  # a clean stop: its locks go with it
                await until(lambda: led(a) == {0, 1}, 10, "a to take shard 1")
        assert sender.stats.acks["ok"] == 6
    reader = StoreReader(apps["url"])
    try:
        journal = [c.report for c in reader.state_changes(vm_id=111) if c.source == "state_vm"]
    finally:
        reader.close()
    assert journal == sent


async def test_a_stand_in_takes_a_shard_and_gives_it_back_to_its_home(
    apps: dict[str, Any],
) -> None:
    b = await apps["start"](apps["config"]("b", home=(1,)))
    took = await until(lambda: led(b) == {0, 1}, 10, "b to stand in for shard 0")
    assert took >= 0.3  # a stand-in waits takeover_delay
    acks = await send_frames(b, (state_vm(12, {120: "RUNNING"}), 0))
    assert acks[0].code == "ok"
    a = await apps["start"](apps["config"]("a", home=(0,)))
    await until(lambda: led(a) == {0} and led(b) == {1}, 10, "shard 0 back home")
    assert a.state.vms[120].report == "RUNNING"  # read back from the store
    assert set(b.state.hosts) == {11, 13} and 120 not in b.state.vms
    acks = await send_frames(a, (state_vm(12, {120: "RUNNING"}), 0))
    assert acks[0].code == "ok" and a.health.rejected["duplicate"] == 1  # progress read back


async def test_losing_the_lock_session_stops_applying_at_once(apps: dict[str, Any]) -> None:
    a = await apps["start"](apps["config"]("a", home=(0, 1)))
    await until(lambda: led(a) == {0, 1}, 10, "a to lead both")
    engine = sa.create_engine(apps["url"], poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'onemon-lease a'"))  # fmt: skip
            else:
                database = conn.execute(sa.text("SELECT DATABASE()")).scalar_one()
                owner = conn.execute(
                    sa.text("SELECT IS_USED_LOCK(:n)"), {"n": f"onemon:{database}:0"}
                ).scalar_one()
                conn.execute(sa.text(f"KILL {int(owner)}"))
    finally:
        engine.dispose()
    await until(lambda: not led(a), 2, "a to step down")
    acks = await send_frames(a, (state_vm(10, {100: "RUNNING"}), 0))
    assert acks[0].code in (NO_LEADER, "ok")  # refused, or already led again (home shard)
    await until(lambda: led(a) == {0, 1}, 10, "a to take its home shards again")
    assert a.health.shard_takeovers[0] == 2


async def test_configuration_is_checked() -> None:
    from onemon.collector.config import CollectorConfig
    from onemon.settings import ConfigError, load

    with pytest.raises(ConfigError) as info:
        load(CollectorConfig, {
            "store": {"url": "sqlite:////tmp/x.db"},
            "sharding": {"enabled": True, "shards": 2, "home": [2], "lease": 0.1,
                         "assign": [{"shard": 0, "hosts": [1]}, {"shard": 1, "hosts": [1]}]},
        })  # fmt: skip
    text = str(info.value)
    for part in ("0..1", "host 1 is in shards 0 and 1", "lease", "not SQLite", "advertise"):
        assert part in text
    loaded = load(CollectorConfig, {})
    assert loaded.config.sharding.enabled is False and loaded.warnings == []


async def test_without_sharding_nothing_changes(tmp_path: Path, store_url: str) -> None:
    config = dataclasses.replace(make_config(tmp_path, "x", store_url, hosts=HOSTS),
                                 sharding=ShardingConfig())  # fmt: skip
    app = Collector(config)
    await app.start()
    try:
        assert app.shards is None and app.ingest is not None and app.ingest.router is None
        assert set(app.state.hosts) == set(HOSTS)
        acks = await send_frames(app, (state_vm(11, {110: "RUNNING"}), 0))
        assert acks[0].code == "ok"
        assert "sharding" not in app.health_json()
        assert b"onemon_shard" not in app.metrics.current.body
    finally:
        await app.stop()
    await asyncio.sleep(0)
