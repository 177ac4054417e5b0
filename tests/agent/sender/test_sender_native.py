"""The native sender on real loopback sockets against a collector stand-in."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sender_standin import StandIn, free_port, wait_until

from onemon.agent.sender import BootId, Sender
from onemon.wire.keys import Key, KeyRing
from onemon.wire.model import Message, MessageType, Status, values

KEY = Key("cluster", b"k" * 32)
RING = KeyRing.single(KEY)
FAST: dict[str, Any] = {"backoff": (0.02,), "ack_timeout": 2.0, "connect_timeout": 1.0}


def state(n: int, host: int = 5) -> Message:
    vm = {"ID": n, "DEPLOY_ID": f"one-{n}", "STATE": "RUNNING"}
    return Message(MessageType.STATE_VM, Status.SUCCESS, host, 1716200000.0 + n, {"VM": [vm]})


def vm_record(n: int, pad: int = 0) -> dict[str, Any]:
    note = "".join(random.Random(n).choices("abcdefghijklmnopqrstuvwxyz", k=pad))
    return {"ID": n, "DEPLOY_ID": f"one-{n}", "MONITOR": {"CPU": 1.5 * n, "NOTE": note}}


def ns(envelopes: list[Any]) -> list[int]:
    return [int(vm["ID"]) for e in envelopes for vm in values(e.message.payload, "VM")]


@pytest.fixture
async def collector() -> AsyncIterator[StandIn]:
    standin = await StandIn(RING).start()
    yield standin
    await standin.stop()


@pytest.fixture
async def make_sender(tmp_path: Path) -> AsyncIterator[Callable[..., Sender]]:
    senders: list[Sender] = []

    def make(collectors: list[str], **options: Any) -> Sender:
        sender = Sender(collectors, options.pop("state_dir", tmp_path), KEY, **{**FAST, **options})
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


async def test_datagrams_never_exceed_budget_and_decode(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([collector.address], budget=1000)
    await sender.start()
    host = Message(MessageType.MONITOR_HOST, Status.SUCCESS, 5, 1.0, {"USEDCPU": 12.5})
    vms = Message(MessageType.MONITOR_VM, Status.SUCCESS, 5, 2.0, {"VM": [vm_record(i, 40)
                  for i in range(300)]})  # fmt: skip
    await sender.send(host)
    await sender.send(vms)
    await sender.send(vms)
    await wait_until(lambda: len(collector.datagrams) == sender.stats.datagrams_sent)
    assert all(len(d) <= 1000 for d in collector.datagrams)
    envelopes = collector.udp_envelopes()
    monitor = [e for e in envelopes if e.message.type is MessageType.MONITOR_VM]
    assert len(monitor) > 10
    assert [e.seq for e in monitor] == list(range(len(monitor)))  # seq per type, from 0
    assert [e.seq for e in envelopes if e.message.type is MessageType.MONITOR_HOST] == [0]
    assert sorted(ns(monitor)) == sorted(list(range(300)) * 2)
    assert {e.boot_id for e in envelopes} == {sender.boot_id.raw}
    stats = sender.stats
    assert stats.messages_sent[("MONITOR_VM", "udp")] == len(monitor)
    assert stats.bytes_sent == sum(map(len, collector.datagrams)) and stats.send_errors == 0


async def test_oversize_parts_go_over_tcp_with_their_type_seq(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([collector.address], budget=600)
    records = [vm_record(0, 20), vm_record(1, 3000), vm_record(2, 20)]
    await sender.send(Message(MessageType.MONITOR_VM, Status.SUCCESS, 5, 2.0, {"VM": records}))
    big_host = {"NOTE": "".join(random.Random(9).choices("0123456789abcdef", k=4000))}
    await sender.send(Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 5, 2.0, big_host))
    assert await sender.flush(5)
    assert sorted(ns(collector.udp_envelopes())) == [0, 2]
    assert [(e.message.type, e.seq) for e in collector.frames] == [
        (MessageType.MONITOR_VM, 2),  # parts 0 and 1 were datagrams
        (MessageType.SYSTEM_HOST, 0),
    ]
    assert ns(collector.frames[:1]) == [1]
    assert sender.stats.messages_sent[("SYSTEM_HOST", "tcp")] == 1


async def test_state_vm_order_preserved_with_pipelined_acks(
    make_sender: Callable[..., Sender],
) -> None:
    collector = await StandIn(RING, ack_every=5).start()
    try:
        sender = make_sender([collector.address], window=8)
        for n in range(100):
            await sender.send(state(n))
        assert await sender.flush(5)
        assert ns(collector.applied) == list(range(100))
        assert [e.seq for e in collector.applied] == list(range(100))
        assert 5 <= collector.max_outstanding <= 8  # pipelined, window capped
        stats = sender.stats
        assert stats.acks == {"ok": 100} and stats.spool_messages == 0 == stats.spool_bytes
        assert stats.messages_sent[("STATE_VM", "tcp")] == 100 and stats.resent == 0
        assert stats.current_collector == collector.address
    finally:
        await collector.stop()


async def test_collector_down_then_up_delivers_all_in_order_once(
    make_sender: Callable[..., Sender],
) -> None:
    port = free_port()
    sender = make_sender([f"127.0.0.1:{port}"])
    for n in range(20):
        await sender.send(state(n))
    await sender.send(Message(MessageType.BEACON_HOST, Status.SUCCESS, 5, 1.0, {}))
    await asyncio.sleep(0.2)
    assert not await sender.flush(0.05)
    assert sender.stats.spool_messages == 20 and sender.stats.current_collector is None
    assert sender.stats.collector_failures >= 3
    collector = await StandIn(RING, port=port).start()
    try:
        assert await sender.flush(5)
        assert ns(collector.applied) == list(range(20))
        assert len(collector.frames) == 20  # nothing was sent twice
        await sender.send(Message(MessageType.BEACON_HOST, Status.SUCCESS, 5, 2.0, {}))
        await wait_until(lambda: len(collector.datagrams) == 1)
        assert collector.udp_envelopes()[0].seq == 1
    finally:
        await collector.stop()


async def test_resend_after_connection_loss_keeps_seq_and_applies_once(
    make_sender: Callable[..., Sender],
) -> None:
    collector = await StandIn(RING, drop_after=7).start()
    try:
        sender = make_sender([collector.address], window=4)
        for n in range(20):
            await sender.send(state(n))
        assert await sender.flush(5)
        assert ns(collector.applied) == list(range(20))
        assert collector.connections == 2
        seqs = [e.seq for e in collector.frames]
        assert len(seqs) > 20 and set(seqs) == set(range(20))  # resent frames kept their seq
        assert {e.boot_id for e in collector.frames} == {sender.boot_id.raw}
        # a frame written just before the close may never have been read: count transmissions
        assert sender.stats.resent == sender.stats.messages_sent[("STATE_VM", "tcp")] - 20 > 0
    finally:
        await collector.stop()


async def test_rejects_are_dropped_from_spool_and_counted(
    make_sender: Callable[..., Sender],
) -> None:
    collector = await StandIn(RING, reject="bad_payload").start()
    try:
        sender = make_sender([collector.address])
        for n in range(3):
            await sender.send(state(n))
        assert await sender.flush(5)
        assert sender.stats.acks == {"bad_payload": 3} and not collector.applied
    finally:
        await collector.stop()


async def test_spool_bound_drops_oldest_and_counts_exactly(
    make_sender: Callable[..., Sender],
) -> None:
    port = free_port()
    sender = make_sender([f"127.0.0.1:{port}"], spool_max_count=5)
    for n in range(12):
        await sender.send(state(n))
    assert sender.stats.dropped_total == 7 and sender.stats.spool_messages == 5
    collector = await StandIn(RING, port=port).start()
    try:
        assert await sender.flush(5)
        assert ns(collector.applied) == [7, 8, 9, 10, 11]
        assert [e.seq for e in collector.applied] == [7, 8, 9, 10, 11]  # a gap, as allowed
    finally:
        await collector.stop()


async def test_restart_replays_spool_under_new_boot_before_new_messages(
    tmp_path: Path, make_sender: Callable[..., Sender]
) -> None:
    port = free_port()
    first = make_sender([f"127.0.0.1:{port}"])
    for n in range(3):
        await first.send(state(n))
    old_boot = first.boot_id
    await first.close()

    second = make_sender([f"127.0.0.1:{port}"])
    await second.start()
    assert second.boot_id.counter == old_boot.counter + 1
    assert second.stats.spool_messages == 3
    for n in range(3, 5):
        await second.send(state(n))
    collector = await StandIn(RING, port=port).start()
    try:
        assert await second.flush(5)
        assert ns(collector.applied) == [0, 1, 2, 3, 4]
        assert [e.seq for e in collector.applied] == [0, 1, 2, 3, 4]
        assert {e.boot_id for e in collector.frames} == {second.boot_id.raw}
        assert BootId.from_bytes(collector.applied[0].boot_id).counter == old_boot.counter + 1
    finally:
        await collector.stop()


async def test_too_large_for_tcp_is_dropped_and_counted(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([collector.address], spool_max_bytes=4096)
    big = Message(MessageType.STATE_VM, Status.SUCCESS, 5, 1.0, {"VM": [vm_record(1, 5000)]})
    await sender.send(big)
    await sender.send(state(1))
    assert await sender.flush(5)
    assert sender.stats.too_large == 1 and ns(collector.applied) == [1]
    assert collector.applied[0].seq == 0  # the refused message took no seq


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_ipv6_literal(make_sender: Callable[..., Sender]) -> None:
    collector = await StandIn(RING, host="::1").start()
    try:
        sender = make_sender([collector.address])
        await sender.send(state(1))
        await sender.send(Message(MessageType.BEACON_HOST, Status.SUCCESS, 5, 1.0, {}))
        assert await sender.flush(5)
        await wait_until(lambda: len(collector.datagrams) == 1)
        assert (
            ns(collector.applied) == [1]
            and sender.stats.current_collector == f"[::1]:{collector.port}"
        )
    finally:
        await collector.stop()


async def test_dns_name_resolved_at_connect(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([f"localhost:{collector.port}"])
    await sender.send(state(1))
    await sender.send(Message(MessageType.BEACON_HOST, Status.SUCCESS, 5, 1.0, {}))
    assert await sender.flush(5)
    await wait_until(lambda: len(collector.datagrams) == 1)
    assert (
        ns(collector.applied) == [1]
        and sender.stats.current_collector == f"localhost:{collector.port}"
    )
