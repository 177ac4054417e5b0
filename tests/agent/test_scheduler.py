"""Group loops: periods kept, overruns skipped and counted, one slow group never delays another."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from onemon.agent.scheduler import Group, Scheduler
from onemon.systemd import notify
from onemon.wire.model import Message, MessageType, Status


def beacon() -> Message:
    return Message(MessageType.BEACON_HOST, Status.SUCCESS, 1, 0.0)


async def test_groups_run_on_their_own_periods_despite_a_hung_group() -> None:
    sent: list[str] = []
    runs = {"fast": 0}

    async def fast() -> Message:
        runs["fast"] += 1
        return beacon()

    async def hung() -> Message | None:
        await asyncio.sleep(3600)
        return None

    async def send(message: Message) -> None:
        sent.append(message.type.name)

    scheduler = Scheduler([Group("fast", 0.05, fast), Group("hung", 0.05, hung)], send)
    scheduler.start()
    await asyncio.sleep(0.52)
    await scheduler.stop()
    assert 9 <= runs["fast"] <= 12  # one immediate run, then every 50 ms
    assert scheduler.stats["hung"].cycles == 0
    assert len(sent) == runs["fast"]


async def test_a_run_longer_than_its_period_skips_and_counts() -> None:
    async def slow() -> None:
        await asyncio.sleep(0.25)

    async def send(message: Message) -> None:
        pass

    scheduler = Scheduler([Group("slow", 0.1, slow)], send)  # type: ignore[list-item]
    scheduler.start()
    await asyncio.sleep(0.6)
    await scheduler.stop()
    stats = scheduler.stats["slow"]
    assert stats.cycles == 2
    assert stats.skips == 4  # each 0.25 s run overruns two 0.1 s periods
    assert stats.max_seconds >= 0.25


async def test_trigger_runs_a_group_at_once() -> None:
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    async def system() -> None:
        runs.append(loop.time())

    async def send(message: Message) -> None:
        pass

    scheduler = Scheduler([Group("system_host", 600, system)], send)  # type: ignore[list-item]
    scheduler.start()
    await asyncio.sleep(0.05)
    scheduler.trigger("system_host")
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert len(runs) == 2


async def test_a_failing_group_is_counted_and_keeps_running() -> None:
    async def broken() -> Message:
        raise RuntimeError("probe bug")

    async def send(message: Message) -> None:
        pass

    scheduler = Scheduler([Group("broken", 0.05, broken)], send)
    scheduler.start()
    await asyncio.sleep(0.22)
    await scheduler.stop()
    assert scheduler.stats["broken"].errors >= 4


def test_sd_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1")
        assert server.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify("READY=1")
