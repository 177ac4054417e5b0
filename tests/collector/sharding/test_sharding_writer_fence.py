"""The writer's side of fencing: a fenced batch is never written nor acknowledged."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onemon.collector.store import StoreClosed, StoreConfig, StoreReader, StoreWriter
from onemon.collector.store.errors import Fenced


def journal(writer: StoreWriter, n: int) -> None:
    writer.add_state_change(float(n), 1, n, "RUNNING", "state_vm")


def written(url: str) -> list[int]:
    reader = StoreReader(url)
    try:
        return [c.vm_id or 0 for c in reader.state_changes()]
    finally:
        reader.close()


async def test_a_fenced_batch_waits_for_discard_then_fails_its_waiters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    writer = StoreWriter(StoreConfig(url=url, batch_delay=0.01, retry_min=0.01))
    loop = asyncio.get_running_loop()
    fenced = asyncio.Event()
    allow = [True]

    def fence(_conn: Connection) -> None:
        if not allow[0]:
            raise Fenced("taken over")

    writer.fence = fence

    def on_fenced() -> None:
        loop.call_soon_threadsafe(fenced.set)

    writer.on_fenced = on_fenced
    await asyncio.to_thread(writer.start)
    try:
        journal(writer, 1)
        await writer.persisted()
        allow[0] = False
        journal(writer, 2)
        waiter = asyncio.ensure_future(writer.persisted())
        await asyncio.wait_for(fenced.wait(), 5)
        await asyncio.sleep(0.1)
        assert not waiter.done(), "a fenced batch must not resolve its waiters"
        journal(writer, 3)  # applied before the coordinator stepped down: dropped too
        assert writer.discard_pending() == 2
        with pytest.raises(StoreClosed):
            await waiter
        allow[0] = True  # led again (a new epoch)
        journal(writer, 4)
        await asyncio.wait_for(writer.persisted(), 5)
        assert written(url) == [1, 4] and writer.backlog == 0
    finally:
        await writer.aclose()


async def test_a_batch_failing_after_a_discard_is_not_written_later(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    writer = StoreWriter(StoreConfig(url=url, batch_delay=0.01, retry_min=0.01))
    inside, release = threading.Event(), threading.Event()
    calls = [0]

    def fence(_conn: Connection) -> None:
        calls[0] += 1
        if calls[0] == 1:
            inside.set()
            release.wait(5)
            raise sa.exc.OperationalError("SELECT", {}, Exception("connection lost"))

    writer.fence = fence
    await asyncio.to_thread(writer.start)
    try:
        journal(writer, 1)
        waiter = asyncio.ensure_future(writer.persisted())
        await asyncio.to_thread(inside.wait, 5)
        assert writer.discard_pending() >= 0  # stepped down while the batch was in flight
        release.set()
        with pytest.raises(StoreClosed):
            await waiter
        journal(writer, 2)
        await asyncio.wait_for(writer.persisted(), 5)
        assert written(url) == [2] and writer.backlog == 0
    finally:
        await writer.aclose()
