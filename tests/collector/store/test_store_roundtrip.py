"""State, history, journal and progress survive a writer restart; persisted() means committed."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from store_helpers import T0, config, full_host, full_vm

from onemon.collector.model import HostCapacity
from onemon.collector.store import StoreConfig, StoreReader, StoreWriter
from onemon.wire.model import MessageType

if TYPE_CHECKING:
    from conftest import Backend


async def test_every_field_survives_a_restart(backend: Backend) -> None:
    writer = StoreWriter(config(backend))
    writer.start()
    host, vm = full_host(), full_vm()
    writer.put_host(host)
    writer.put_host(full_host(4))
    writer.put_vm(vm)
    writer.put_progress(3, MessageType.STATE_VM, b"\x00" * 8 + b"r" * 8, 41, 2**64 - 1)
    writer.put_progress(3, MessageType.MONITOR_VM, b"\x01" * 16, 2**62, 1 << 63)
    writer.delete_host(4)
    writer.stop()

    again = StoreWriter(config(backend))
    again.start()  # migrations are a no-op on an up-to-date store
    reader = StoreReader(backend.url)
    try:
        snap = reader.load()
    finally:
        reader.close()
        again.stop()
    assert snap.hosts == [host]
    assert snap.vms == [vm]
    progress = {(p.host_id, p.msg_type): p for p in snap.progress}
    assert set(progress) == {(3, int(MessageType.STATE_VM)), (3, int(MessageType.MONITOR_VM))}
    state = progress[(3, int(MessageType.STATE_VM))]
    assert (state.boot_id, state.seq, state.window) == (b"\x00" * 8 + b"r" * 8, 41, 2**64 - 1)
    assert progress[(3, int(MessageType.MONITOR_VM))].window == 1 << 63


async def test_pending_upserts_coalesce_to_the_latest_copy(backend: Backend) -> None:
    writer = StoreWriter(config(backend, batch_delay=30.0))
    writer.start()
    host = full_host()
    for i in range(1000):
        host.name = f"name-{i}"
        host.system = {**host.system, "N": i}  # replaced, never changed in place (the contract)
        writer.put_host(host)
    for seq in range(500):
        writer.put_progress(3, MessageType.STATE_VM, b"b" * 16, seq, 1)
    writer.put_vm(full_vm(7))
    writer.delete_vm(7)
    writer.put_vm(full_vm(8))
    writer.delete_vm(8)
    writer.put_vm(full_vm(8))
    assert writer.backlog == 4  # one host, one progress stream, two VMs
    await writer.persisted()
    assert writer.rows_total == 4
    assert writer.batches_total == 1
    writer.stop()
    reader = StoreReader(backend.url)
    snap = reader.load()
    reader.close()
    assert [(h.name, h.system["N"]) for h in snap.hosts] == [("name-999", 999)]
    assert [v.id for v in snap.vms] == [8]
    assert [p.seq for p in snap.progress] == [499]


async def test_persisted_means_committed_for_another_connection(backend: Backend) -> None:
    writer = StoreWriter(config(backend, batch_delay=30.0))  # only persisted() flushes
    writer.start()
    try:
        writer.add_state_change(T0, 3, 42, "RUNNING", "STATE_VM")
        writer.put_vm(full_vm())
        await asyncio.sleep(0.2)
        assert backend.count("state_changes") == 0  # still batching
        await writer.persisted()
        assert backend.count("state_changes") == 1
        assert backend.count("vms") == 1
        # nothing pending: returns at once
        await asyncio.wait_for(writer.persisted(), 0.5)
        # many concurrent waiters share commits (group commit)
        for i in range(50):
            writer.add_state_change(T0 + i, 3, 42, "POWEROFF", "sync")
        waits = [asyncio.create_task(writer.persisted()) for _ in range(20)]
        await asyncio.wait_for(asyncio.gather(*waits), 10)
        assert backend.count("state_changes") == 51
    finally:
        writer.stop()


async def test_history_and_journal_read_back_with_opennebula_names(backend: Backend) -> None:
    writer = StoreWriter(config(backend))
    writer.start()
    cap = HostCapacity(free_cpu=100.5, used_cpu=99.5, free_memory=10, used_memory=20, netrx=3)
    for i in range(10):
        writer.add_host_monitoring(3, T0 + i, cap)
        writer.add_vm_monitoring(
            42,
            T0 + i,
            {
                "CPU": "1.25",  # template text, as the legacy wire sends it
                "MEMORY": 2048 + i,
                "NETRX": 5,
                "DISKRDIOPS": 7,
                "GUEST_IP_ADDRESSES": "10.0.0.2",
                "DISK_SIZE": [{"ID": 0, "SIZE": 10}],
                "MEMORY_FORECAST": float("nan"),  # not JSON: recorded as null
                "HUGE": 2**70,
            },
        )
        writer.add_vm_monitoring(43, T0 + i, {"CPU": 3})
    writer.add_vm_monitoring(42, T0 + 3, {"CPU": 9.0})  # same key again: the later one wins
    writer.add_state_change(T0, 3, None, "ERROR", "host")
    writer.add_state_change(T0 + 1, 3, 42, "UNKNOWN", "host_error")
    writer.add_state_change(T0 + 2, 3, 43, "UNKNOWN", "host_error")
    await writer.persisted()
    writer.stop()

    reader = StoreReader(backend.url)
    try:
        hosts = reader.host_history(3, T0 + 2, T0 + 5)
        assert [ts for ts, _ in hosts] == [T0 + 2, T0 + 3, T0 + 4]
        assert hosts[0][1] == {
            "FREE_CPU": 100.5,
            "USED_CPU": 99.5,
            "FREE_MEMORY": 10,
            "USED_MEMORY": 20,
            "NETRX": 3,
            "NETTX": 0,
        }
        vms = reader.vm_history(42, 0)
        assert len(vms) == 10
        assert vms[0] == (
            T0,
            {
                "CPU": 1.25,
                "MEMORY": 2048,
                "NETRX": 5,
                "DISKRDIOPS": 7,
                "GUEST_IP_ADDRESSES": "10.0.0.2",
                "DISK_SIZE": [{"ID": 0, "SIZE": 10}],
                "MEMORY_FORECAST": None,
                "HUGE": 2**70,
            },
        )
        assert vms[3][1] == {"CPU": 9.0}
        latest = reader.vm_history(42, 0, limit=2)
        assert [ts for ts, _ in latest] == [T0 + 8, T0 + 9]
        pool = reader.vms_history(T0 + 8)
        assert {k: [ts for ts, _ in v] for k, v in pool.items()} == {
            42: [T0 + 8, T0 + 9],
            43: [T0 + 8, T0 + 9],
        }
        assert list(reader.hosts_history(T0 + 9)) == [3]
        journal = reader.state_changes()
        assert [(c.host_id, c.vm_id, c.report, c.source) for c in journal] == [
            (3, None, "ERROR", "host"),
            (3, 42, "UNKNOWN", "host_error"),
            (3, 43, "UNKNOWN", "host_error"),
        ]
        assert [c.vm_id for c in reader.state_changes(since_id=journal[0].id)] == [42, 43]
        assert [c.vm_id for c in reader.state_changes(vm_id=43)] == [43]
    finally:
        reader.close()


async def test_a_row_the_database_refuses_is_isolated_and_the_rest_written(
    backend: Backend,
) -> None:
    writer = StoreWriter(config(backend))
    writer.start()
    try:
        bad = full_host(9)
        bad.name = None  # type: ignore[assignment]  # violates NOT NULL
        writer.put_host(bad)
        writer.put_host(full_host(3))
        writer.add_state_change(T0, 3, None, "MONITORED", "system")
        await asyncio.wait_for(writer.persisted(), 10)
        assert writer.rows_rejected_total == 1
        assert backend.count("hosts") == 1
        assert backend.count("state_changes") == 1
        writer.put_host(full_host(5))  # and it keeps going
        await asyncio.wait_for(writer.persisted(), 10)
        assert backend.count("hosts") == 2
        assert writer.up
    finally:
        writer.stop()


async def test_zero_retention_records_no_history(backend: Backend) -> None:
    writer = StoreWriter(config(backend, host_retention=0, vm_retention=0, journal_retention=0))
    writer.start()
    writer.add_host_monitoring(1, T0, HostCapacity())
    writer.add_vm_monitoring(1, T0, {"CPU": 1})
    writer.add_state_change(T0, 1, 1, "RUNNING", "x")
    writer.put_vm(full_vm())
    assert writer.backlog == 1
    await writer.persisted()
    await writer.aclose()
    assert backend.count("host_monitoring") + backend.count("vm_monitoring") == 0
    assert backend.count("state_changes") == 0


def test_the_event_loop_side_is_cheap(tmp_path: object) -> None:
    writer = StoreWriter(StoreConfig(url="sqlite:////nonexistent/never-opened.db"))
    sample = {"CPU": 12.5, "MEMORY": 524288, "NETRX": 1, "NETTX": 2, "DISK_SIZE": [{"ID": 0}]}
    start = time.perf_counter()
    for i in range(20000):
        writer.add_vm_monitoring(i % 100, T0 + i, sample)
    per_call = (time.perf_counter() - start) / 20000
    assert per_call < 100e-6  # a few µs in practice; generous for slow CI machines
    assert writer.backlog == 20000
    assert not math.isnan(per_call)


async def test_reader_refuses_a_store_the_writer_has_not_created(backend: Backend) -> None:
    from onemon.collector.store import SchemaError

    reader = StoreReader(backend.url)
    try:
        with pytest.raises(SchemaError):
            reader.load()
    finally:
        reader.close()
    engine = backend.engine()
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("hosts")
    engine.dispose()
