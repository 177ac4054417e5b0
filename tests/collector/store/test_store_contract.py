"""The event loop hands over references; the writer thread serializes them when it writes.

The contract (``StoreWriter``'s docstring): mutable attributes are replaced wholesale, never
changed in place. Under it a state row holds the object as it is at commit time, a history row
the template handed in; and nothing a caller does to its objects can break a commit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from store_helpers import T0, config, full_host, full_vm

from onemon.collector.model import HostCapacity, VmReport
from onemon.collector.store import StoreReader, StoreWriter, schema
from onemon.collector.store import dml as dml_module
from onemon.collector.store.dml import BulkWrite
from onemon.collector.store.engine import make_engine
from onemon.collector.store.migrations import migrate
from onemon.collector.store.rows import VM_SAMPLE_COLUMNS

if TYPE_CHECKING:
    from conftest import Backend


class Counted:
    """A template value JSON cannot hold: serialized through ``str``, which counts the calls."""

    calls = 0

    def __str__(self) -> str:
        Counted.calls += 1
        return "counted"


class Flaky(dict[str, Any]):
    """A template whose first ``failures`` reads fail as if it changed size meanwhile."""

    def __init__(self, failures: int, *args: Any) -> None:
        super().__init__(*args)
        self.failures = failures

    def _read(self) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("dictionary changed size during iteration")

    def items(self) -> Any:  # what json reads
        self._read()
        return super().items()

    def keys(self) -> Any:  # what dict() reads, with __iter__ overridden
        self._read()
        return super().keys()

    def __iter__(self) -> Iterator[str]:
        self._read()
        return super().__iter__()


def load(backend: Backend) -> Any:
    reader = StoreReader(backend.url)
    try:
        return reader.load()
    finally:
        reader.close()


async def test_state_is_serialized_at_commit_once_per_batch(backend: Backend) -> None:
    writer = StoreWriter(config(backend, batch_delay=30.0))  # only persisted() flushes
    writer.start()
    try:
        host = full_host()
        Counted.calls = 0
        host.system = {**host.system, "PROBE": Counted()}
        for i in range(1000):
            host.last_seen = T0 + i
            writer.put_host(host)
        assert Counted.calls == 0  # nothing encoded on the event loop
        await writer.persisted()
        assert Counted.calls == 1  # once, for the one batch
        assert writer.batches_total == 1
        host.last_seen = T0 + 1000
        writer.put_host(host)
        await writer.persisted()
        assert Counted.calls == 1  # the same SYSTEM_HOST object: its JSON is reused
        host.system = {**host.system, "NEW": 1}
        writer.put_host(host)
        await writer.persisted()
        assert Counted.calls == 2  # replaced: encoded again
        writer.put_host(full_host(4))
        await writer.persisted()
        assert len(writer._rows.systems) == 2
        writer.delete_host(4)
        await writer.persisted()
        assert len(writer._rows.systems) == 1  # a deleted host's JSON is not kept
    finally:
        writer.stop()
    (stored,) = load(backend).hosts
    assert stored.last_seen == T0 + 1000
    assert stored.system["PROBE"] == "counted"
    assert stored.system["NEW"] == 1


async def test_an_object_replaced_after_put_is_stored_with_its_latest_value(
    backend: Backend,
) -> None:
    writer = StoreWriter(config(backend, batch_delay=30.0))
    writer.start()
    try:
        vm, host = full_vm(), full_host()
        writer.put_vm(vm)
        writer.put_host(host)
        monitoring = vm.monitoring
        writer.add_vm_monitoring(vm.id, T0, monitoring)
        writer.add_host_monitoring(host.id, T0, host.capacity)
        # what the collector does next: replace templates, assign scalars, update CAPACITY
        vm.monitoring = {**vm.monitoring, "CPU": 99.5, "NEW": "x"}
        vm.set_report(VmReport.RUNNING)
        vm.last_poll = T0 + 9
        host.system = {"ARCH": "aarch64"}
        host.capacity.free_cpu = 1.0  # updated in place, as MONITOR_HOST does
        await writer.persisted()
    finally:
        writer.stop()
    snap = load(backend)
    assert snap.vms == [vm]  # the latest value, not the one at put_vm time
    assert snap.hosts == [host]
    reader = StoreReader(backend.url)
    try:
        # history keeps what was handed in: the template object, the figures at the call
        assert reader.vm_history(vm.id, 0) == [(T0, monitoring)]
        assert reader.host_history(host.id, 0)[0][1]["FREE_CPU"] == 712.5
    finally:
        reader.close()


async def test_a_container_changing_while_read_never_breaks_a_commit(backend: Backend) -> None:
    writer = StoreWriter(config(backend))
    writer.start()
    try:
        vm, host = full_vm(1), full_host(1)
        vm.monitoring = Flaky(1, {"CPU": 1.5, "OS": "debian"})  # read again: written
        host.agent = Flaky(1000, {"VERSION": "1"})  # never readable: dropped, counted
        writer.put_vm(vm)
        writer.put_host(host)
        writer.add_vm_monitoring(1, T0, Flaky(1, {"CPU": 2.0, "OS": "debian"}))
        writer.add_vm_monitoring(1, T0 + 1, Flaky(1000, {"OS": "debian"}))
        writer.add_vm_monitoring(2, T0, {"CPU": 3.0})
        writer.add_state_change(T0, 1, 1, "RUNNING", "STATE_VM")
        await asyncio.wait_for(writer.persisted(), 10)
        assert writer.up
        assert writer.rows_rejected_total == 2
        assert writer.rows_total == 4
        host.agent = {"VERSION": "2"}  # replaced: written again
        writer.put_host(host)
        await asyncio.wait_for(writer.persisted(), 10)
    finally:
        writer.stop()
    snap = load(backend)
    assert [(v.id, v.monitoring) for v in snap.vms] == [(1, {"CPU": 1.5, "OS": "debian"})]
    assert [h.agent for h in snap.hosts] == [{"VERSION": "2"}]
    reader = StoreReader(backend.url)
    try:
        assert reader.vm_history(1, 0) == [(T0, {"CPU": 2.0, "OS": "debian"})]
        assert reader.vm_history(2, 0) == [(T0, {"CPU": 3.0})]
        assert len(reader.state_changes()) == 1
    finally:
        reader.close()


async def test_concurrent_replacement_while_the_writer_commits(backend: Backend) -> None:
    writer = StoreWriter(config(backend, batch_delay=0.0, batch_rows=50))
    writer.start()
    hosts = [full_host(i) for i in range(20)]
    vms = [full_vm(i, host_id=i % 20) for i in range(100)]
    stop = threading.Event()

    def churn() -> None:  # another thread, so the writer reads objects mid-change
        n = 0
        while not stop.is_set():
            n += 1
            for vm in vms:
                vm.monitoring = {**vm.monitoring, "N": n, f"K{n % 50}": n}
                vm.last_poll = T0 + n
            for host in hosts:
                host.system = {**host.system, "N": n}
                host.wilds = [{"ID": -n}]
                host.capacity = HostCapacity(free_cpu=float(n))

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for round_ in range(30):
            for vm in vms:
                writer.put_vm(vm)
                writer.add_vm_monitoring(vm.id, T0 + round_, vm.monitoring)
            for host in hosts:
                writer.put_host(host)
            await asyncio.sleep(0.005)
    finally:
        stop.set()
        thread.join()
    try:
        for vm in vms:
            writer.put_vm(vm)
        for host in hosts:
            writer.put_host(host)
        await asyncio.wait_for(writer.persisted(), 30)
        assert writer.up
        assert writer.rows_rejected_total == 0
        assert writer.errors_total == 0
    finally:
        writer.stop()
    snap = load(backend)
    assert sorted(snap.vms, key=lambda v: v.id) == vms
    assert sorted(snap.hosts, key=lambda h: h.id) == hosts
    assert backend.count("vm_monitoring") == 30 * 100


@pytest.fixture
def tables(backend: Backend) -> Iterator[sa.Engine]:
    engine = make_engine(backend.url, writer=True)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("multi_values", [False, True])
def test_bulk_upserts_replace_rows_in_both_modes(
    tables: sa.Engine, multi_values: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dml_module, "VALUES_ROWS", 7)  # several statements per call
    bulk = BulkWrite(tables.dialect, schema.vm_monitoring, VM_SAMPLE_COLUMNS, upsert=True)
    bulk.multi_values = multi_values  # psycopg2's path, on whichever driver runs here
    blank = (None,) * (len(VM_SAMPLE_COLUMNS) - 4)  # the seven counters
    with tables.begin() as conn:
        bulk.run(conn, [(i, T0, float(i), *blank, None) for i in range(20)])
        bulk.run(conn, [(i, T0, -1.0, *blank, '{"A":1}') for i in range(15, 25)])
        bulk.run(conn, [(0, T0, 0.5, *blank, None)])
    table = schema.vm_monitoring
    with tables.connect() as conn:
        got = conn.execute(sa.select(table.c.vmid, table.c.cpu, table.c.extra)).all()
    expected = {i: (float(i), None) for i in range(15)} | {
        i: (-1.0, {"A": 1}) for i in range(15, 25)
    }
    expected[0] = (0.5, None)
    assert {vmid: (cpu, extra) for vmid, cpu, extra in got} == expected


def test_bulk_sql_quotes_reserved_names(tables: sa.Engine) -> None:
    from onemon.collector.store.rows import PROGRESS_COLUMNS

    bulk = BulkWrite(tables.dialect, schema.progress, PROGRESS_COLUMNS, upsert=True)
    quoted = tables.dialect.identifier_preparer.quote_identifier("window")
    assert f"{quoted} = " in bulk.sql
    with tables.begin() as conn:
        bulk.run(conn, [(1, 7, b"b" * 16, 5, -1), (2, 7, b"c" * 16, 6, 1)])
        bulk.run(conn, [(1, 7, b"d" * 16, 8, 2)])
    with tables.connect() as conn:
        got = conn.execute(sa.select(schema.progress).order_by(schema.progress.c.host_id)).all()
    assert [(r.host_id, bytes(r.boot_id), r.seq, r.window) for r in got] == [
        (1, b"d" * 16, 8, 2),
        (2, b"c" * 16, 6, 1),
    ]
