"""A slow or dead database never stalls the caller; history yields, journal and progress wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from store_helpers import T0, config, full_host

from onemon.collector.store import StoreClosed, StoreReader, StoreWriter
from onemon.wire.model import MessageType

if TYPE_CHECKING:
    from conftest import Backend

BOOT = b"\x00" * 7 + b"\x05" + b"r" * 8


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_outage_bounds_the_backlog_and_catches_up(backend: Backend) -> None:
    # a lock wait of 1 s: a caller that waited on the database would take that long
    writer = StoreWriter(config(backend, max_backlog_rows=3000, batch_rows=500, busy_timeout=1.0))
    writer.start()
    try:
        writer.put_host(full_host(3))
        await writer.persisted()
        slowest = 0.0
        with backend.outage():
            for i in range(200):
                started = time.perf_counter()
                writer.add_state_change(T0 + i, 3, 42, "RUNNING", "STATE_VM")
                writer.put_progress(3, MessageType.STATE_VM, BOOT, i, 1)
                for vm in range(25):
                    writer.add_vm_monitoring(vm, T0 + i, {"CPU": 1.0, "MEMORY": i})
                slowest = max(slowest, time.perf_counter() - started)
                if i % 20 == 0:
                    await asyncio.sleep(0.01)  # let the writer try, and fail
            ack = asyncio.create_task(writer.persisted())
            await eventually(lambda: writer.errors_total >= 2)
            assert not writer.up
            await asyncio.sleep(0.3)
            assert not ack.done()
            assert writer.backlog <= 3000
            assert writer.history_dropped_total >= 5000 + 200 + 1 - 3000
            assert not writer.backlog_full
        await asyncio.wait_for(ack, 30)
        assert writer.up
        assert writer.backlog == 0
        # 27 calls per iteration, normally well under 1 ms; the margin is for busy CI machines
        assert slowest < 0.5, f"caller blocked for {slowest * 1000:.1f} ms"
    finally:
        writer.stop()
    assert backend.count("state_changes") == 200
    assert backend.count("vm_monitoring") == 5000 - writer.history_dropped_total
    reader = StoreReader(backend.url)
    try:
        progress = reader.load().progress
        journal = reader.state_changes()
    finally:
        reader.close()
    assert [(p.host_id, p.seq) for p in progress] == [(3, 199)]
    assert [c.ts for c in journal] == [T0 + i for i in range(200)]  # in order, none lost


async def test_journal_over_the_bound_turns_on_backpressure(backend: Backend) -> None:
    writer = StoreWriter(config(backend, max_backlog_rows=100))
    writer.start()
    try:
        with backend.outage():
            for i in range(150):
                writer.add_state_change(T0 + i, 3, i, "POWEROFF", "sync")
            assert writer.backlog_full
            writer.add_vm_monitoring(1, T0, {"CPU": 1.0})  # no room: dropped at once
            assert writer.history_dropped_total == 1
            await eventually(lambda: not writer.up)
            assert writer.backlog_full
        await asyncio.wait_for(writer.persisted(), 30)
        assert not writer.backlog_full
    finally:
        writer.stop()
    assert backend.count("state_changes") == 150


async def test_stop_during_an_outage_gives_up_in_time_and_fails_waiters(
    backend: Backend,
) -> None:
    writer = StoreWriter(config(backend))
    writer.start()
    with backend.outage():
        writer.add_state_change(T0, 3, 1, "RUNNING", "STATE_VM")
        ack = asyncio.create_task(writer.persisted())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        writer.stop(timeout=0.5)
        assert time.monotonic() - started < 5
        with pytest.raises(StoreClosed):
            await asyncio.wait_for(ack, 5)
        with pytest.raises(StoreClosed):
            await writer.persisted()
