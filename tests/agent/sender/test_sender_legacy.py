"""Legacy (OpenNebula) mode: UDP lines, STATE_VM over one TCP connection per message."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sender_standin import StandIn, free_port, wait_until

from onemon.agent.sender import Sender
from onemon.wire import legacy
from onemon.wire.limits import MAX_UDP_PAYLOAD
from onemon.wire.model import Message, MessageType, Status, values


def state(n: int) -> Message:
    vm = {"ID": n, "DEPLOY_ID": f"one-{n}", "STATE": "RUNNING"}
    return Message(MessageType.STATE_VM, Status.SUCCESS, 4, 1716200000.0 + n, {"VM": [vm]})


def ids(messages: list[Message]) -> list[int]:
    return [int(vm["ID"]) for m in messages for vm in values(m.payload, "VM")]


@pytest.fixture
async def make_sender(tmp_path: Path) -> AsyncIterator[Callable[..., Sender]]:
    senders: list[Sender] = []

    def make(collectors: list[str], **options: Any) -> Sender:
        sender = Sender(collectors, tmp_path, wire_format="legacy", backoff=(0.02,), **options)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


@pytest.fixture
async def collector() -> AsyncIterator[StandIn]:
    standin = await StandIn(legacy=True).start()
    yield standin
    await standin.stop()


async def test_lines_decode_and_state_vm_uses_one_connection_each(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([collector.address])
    host = Message(MessageType.MONITOR_HOST, Status.SUCCESS, 4, 1716200000.0, {"USEDCPU": 12.5})
    failure = Message(MessageType.SYSTEM_HOST, Status.FAILURE, 4, 1716200001.0, {}, "Error x")
    await sender.send(host)
    await sender.send(failure)
    for n in range(3):
        await sender.send(state(n))
    assert await sender.flush(5)  # delivered: written and closed; no ack in legacy
    await wait_until(lambda: len(collector.datagrams) == 2 and len(collector.tcp_payloads) == 3)
    assert [legacy.decode(d) for d in collector.datagrams] == [
        Message(MessageType.MONITOR_HOST, Status.SUCCESS, 4, 1716200000, {"USEDCPU": "12.5"}),
        Message(MessageType.SYSTEM_HOST, Status.FAILURE, 4, 1716200001, {}, "Error x"),
    ]
    assert collector.connections == 3
    lines = [legacy.decode(p) for p in collector.tcp_payloads]
    assert [m.type for m in lines] == [MessageType.STATE_VM] * 3 and ids(lines) == [0, 1, 2]
    assert not any(p.endswith(b"\n") for p in collector.tcp_payloads + collector.datagrams)
    stats = sender.stats
    assert stats.messages_sent[("STATE_VM", "tcp")] == 3 and stats.datagrams_sent == 2
    assert stats.acks == {} and stats.spool_messages == 0
    assert not (sender.state_dir / "spool.sqlite").exists()


async def test_big_monitor_vm_is_split_below_the_udp_limit(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    rng = random.Random(1)
    vms = [
        {"ID": n, "MONITOR": {"CPU": n, "NOTE": "".join(rng.choices("0123456789abcdef", k=2500))}}
        for n in range(60)
    ]
    report = Message(MessageType.MONITOR_VM, Status.SUCCESS, 4, 1716200000.0, {"VM": vms})
    assert len(legacy.encode(report)) > MAX_UDP_PAYLOAD
    sender = make_sender([collector.address])
    await sender.send(report)
    await wait_until(lambda: len(collector.datagrams) == sender.stats.datagrams_sent > 1)
    assert all(len(d) <= MAX_UDP_PAYLOAD for d in collector.datagrams)
    parts = [legacy.decode(d) for d in collector.datagrams]
    assert sorted(ids(parts)) == list(range(60)) and collector.connections == 0


async def test_rsa_encrypted_lines(collector: StandIn, make_sender: Callable[..., Sender]) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sender = make_sender([collector.address], public_key=private.public_key())
    await sender.send(state(7))
    assert await sender.flush(5)
    await wait_until(lambda: len(collector.tcp_payloads) == 1)
    assert ids([legacy.decode(collector.tcp_payloads[0], private)]) == [7]


async def test_state_vm_retried_on_next_collector_and_udp_follows(
    collector: StandIn, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender([f"127.0.0.1:{free_port()}", collector.address])
    for n in range(2):
        await sender.send(state(n))
    assert await sender.flush(5)
    await sender.send(Message(MessageType.BEACON_HOST, Status.SUCCESS, 4, 1716200000.0, {}))
    await wait_until(lambda: len(collector.datagrams) == 1 and len(collector.tcp_payloads) == 2)
    assert ids([legacy.decode(p) for p in collector.tcp_payloads]) == [0, 1]
    assert sender.stats.current_collector == collector.address
    assert sender.stats.send_errors >= 1 and sender.stats.failovers == 1


async def test_queue_bound_drops_oldest(make_sender: Callable[..., Sender]) -> None:
    port = free_port()
    sender = make_sender([f"127.0.0.1:{port}"], spool_max_count=3)
    for n in range(5):
        await sender.send(state(n))
    assert sender.stats.dropped_total == 2 and not await sender.flush(0.1)
    collector = await StandIn(legacy=True, port=port).start()
    try:
        assert await sender.flush(5)
        await wait_until(lambda: len(collector.tcp_payloads) == 3)
        assert ids([legacy.decode(p) for p in collector.tcp_payloads]) == [2, 3, 4]
    finally:
        await collector.stop()
