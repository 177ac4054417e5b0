"""Failover between collectors: dead first one, recovery of the preferred, ack timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sender_standin import StandIn, free_port, wait_until

from onemon.agent.sender import Sender
from onemon.wire.keys import Key, KeyRing
from onemon.wire.model import Message, MessageType, Status, values

KEY = Key("cluster", b"f" * 32)
RING = KeyRing.single(KEY)
BEACON = Message(MessageType.BEACON_HOST, Status.SUCCESS, 2, 1.0, {})


def state(n: int) -> Message:
    return Message(MessageType.STATE_VM, Status.SUCCESS, 2, 1.0, {"VM": [{"ID": n}]})


def ns(envelopes: list[Any]) -> list[int]:
    return [int(vm["ID"]) for e in envelopes for vm in values(e.message.payload, "VM")]


@pytest.fixture
async def make_sender(tmp_path: Path) -> AsyncIterator[Callable[..., Sender]]:
    senders: list[Sender] = []

    def make(collectors: list[str], **options: Any) -> Sender:
        defaults: dict[str, Any] = {"backoff": (0.02,), "connect_timeout": 1.0}
        sender = Sender(collectors, tmp_path, KEY, **{**defaults, **options})
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


async def test_dead_first_collector_then_back_to_it_when_it_recovers(
    make_sender: Callable[..., Sender],
) -> None:
    first_port = free_port()
    second = await StandIn(RING).start()
    first = StandIn(RING, port=first_port)
    try:
        sender = make_sender([f"127.0.0.1:{first_port}", second.address], preferred_retry=0.1)
        for n in range(5):
            await sender.send(state(n))
        assert await sender.flush(5)
        await sender.send(BEACON)
        assert ns(second.applied) == [0, 1, 2, 3, 4]
        await wait_until(lambda: len(second.datagrams) == 1)  # UDP follows the TCP side
        assert sender.stats.current_collector == second.address
        assert sender.stats.failovers == 1 and sender.stats.collector_failures >= 1

        await first.start()
        await wait_until(lambda: sender.stats.current_collector == first.address)
        for n in range(5, 10):
            await sender.send(state(n))
        await sender.send(BEACON)
        assert await sender.flush(5)
        assert ns(first.applied) == [5, 6, 7, 8, 9]
        assert [e.seq for e in first.applied] == [5, 6, 7, 8, 9]
        await wait_until(lambda: len(first.datagrams) == 1)
        assert len(second.datagrams) == 1 and ns(second.applied) == [0, 1, 2, 3, 4]
        assert sender.stats.failovers == 2
    finally:
        await first.stop()
        await second.stop()


async def test_ack_timeout_fails_over_and_resends_with_same_seq(
    make_sender: Callable[..., Sender],
) -> None:
    silent = await StandIn(RING, ack=False).start()
    good = await StandIn(RING).start()
    try:
        sender = make_sender([silent.address, good.address], ack_timeout=0.3, preferred_retry=60)
        started = asyncio.get_running_loop().time()
        for n in range(3):
            await sender.send(state(n))
        assert await sender.flush(5)
        assert asyncio.get_running_loop().time() - started >= 0.3
        assert ns(silent.applied) == [0, 1, 2]  # applied there, but never acknowledged
        assert ns(good.applied) == [0, 1, 2] and [e.seq for e in good.applied] == [0, 1, 2]
        stats = sender.stats
        assert stats.current_collector == good.address and stats.resent == 3
        assert stats.collector_failures == 1 and stats.send_errors == 1
    finally:
        await silent.stop()
        await good.stop()


async def test_retries_follow_the_backoff(make_sender: Callable[..., Sender]) -> None:
    sender = make_sender([f"127.0.0.1:{free_port()}"], backoff=(0.05, 0.1, 0.2))
    await sender.start()
    await asyncio.sleep(0.5)
    # attempts at about 0, 0.05, 0.15, 0.35: four failures, not hundreds
    assert 3 <= sender.stats.collector_failures <= 5
