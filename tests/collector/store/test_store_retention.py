"""Retention deletes exactly the rows older than the configured age, in bounded chunks."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from store_helpers import T0, config

from onemon.collector.model import HostCapacity
from onemon.collector.store import StoreReader, StoreWriter

if TYPE_CHECKING:
    from conftest import Backend


async def test_retention_deletes_exactly_the_old_rows(backend: Backend) -> None:
    now = [T0 - 1000.0]  # far in the past while filling, so nothing expires early
    writer = StoreWriter(
        config(
            backend,
            host_retention=50,
            vm_retention=30,
            journal_retention=70,
            retention_interval=0.05,
            retention_chunk=7,
        ),
        clock=lambda: now[0],
    )
    writer.start()
    try:
        for i in range(100):
            writer.add_host_monitoring(1, T0 + i, HostCapacity(free_cpu=i))
            writer.add_host_monitoring(2, T0 + i + 0.5, HostCapacity(free_cpu=i))
            writer.add_vm_monitoring(7, T0 + i, {"CPU": i})
            writer.add_state_change(T0 + i, 1, 7, "RUNNING", "x")
        await writer.persisted()
        now[0] = T0 + 100  # cut-offs: hosts T0+50, VMs T0+70, journal T0+30
        expected = (50 + 50) + 70 + 30
        deadline = time.monotonic() + 20
        while writer.retention_deleted_total < expected:
            assert time.monotonic() < deadline, writer.retention_deleted_total
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # another pass finds nothing more
        assert writer.retention_deleted_total == expected
    finally:
        writer.stop()
    reader = StoreReader(backend.url)
    try:
        hosts = reader.hosts_history(0)
        assert [ts for ts, _ in hosts[1]] == [T0 + i for i in range(50, 100)]  # ts == cut-off kept
        assert [ts for ts, _ in hosts[2]] == [T0 + i + 0.5 for i in range(50, 100)]
        assert [ts for ts, _ in reader.vm_history(7, 0)] == [T0 + i for i in range(70, 100)]
        assert [c.ts for c in reader.state_changes()] == [T0 + i for i in range(30, 100)]
    finally:
        reader.close()


async def test_retention_chunks_are_bounded(backend: Backend) -> None:
    writer = StoreWriter(config(backend, retention_interval=3600.0))
    writer.start()
    try:
        for i in range(1000):
            writer.add_vm_monitoring(i % 10, T0 + i // 10, {"CPU": 1})
        await writer.persisted()
    finally:
        writer.stop()
    from onemon.collector.store import schema
    from onemon.collector.store.dml import delete_older

    engine = backend.engine()
    try:
        rounds = []
        while True:
            with engine.begin() as conn:
                deleted, finished = delete_older(
                    conn, schema.vm_monitoring.c.last_poll, T0 + 60, 95
                )
            rounds.append(deleted)
            if finished:
                break
        assert sum(rounds) == 600
        assert max(rounds) <= 95 + 1 + 10  # chunk, its boundary row, and rows sharing its time
        assert len(rounds) >= 6
        with engine.connect() as conn:
            oldest = conn.execute(sa.select(sa.func.min(schema.vm_monitoring.c.last_poll)))
            assert oldest.scalar() == T0 + 60
    finally:
        engine.dispose()
