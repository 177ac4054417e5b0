"""Store figures (not a test): event-loop cost per call, writer CPU per row, rows/s, ack latency.

Run: ``.venv/bin/python tests/collector/store/bench_store.py [--rows N] [--pg-url URL]
[--mysql-url URL]``.
Without ``--pg-url`` it starts a private PostgreSQL cluster (durable settings: fsync on) with the
fixture in ``tests/collector/conftest.py``, when it can.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/collector: PgCluster

from onemon.collector.model import Host, HostCapacity, HostState, Vm, VmReport
from onemon.collector.store import StoreConfig, StoreWriter

T0 = 1_700_000_000.0
MONITOR = {
    "CPU": 12.34,
    "MEMORY": 524288,
    "NETRX": 123456789,
    "NETTX": 98765432,
    "DISKRDBYTES": 1234567890,
    "DISKWRBYTES": 987654321,
    "DISKRDIOPS": 12345,
    "DISKWRIOPS": 54321,
    "DISK_SIZE": [{"ID": 0, "SIZE": 1024}, {"ID": 1, "SIZE": 20}],
    "GUEST_IP_ADDRESSES": "10.0.0.2,fe80::1",
}
"""A typical merged KVM MONITOR template (reference §2.3)."""

MONITOR_20 = MONITOR | {
    "DISK_SIZE": [{"ID": i, "SIZE": 1024 * i} for i in range(3)],
    "GUEST_IP": "10.0.0.2",
    "GUEST_OS": "debian",
    "STATE": "a",
    "TIMESTAMP": 1716200040,
    "VCPUS": 4,
    "MEMORY_FORECAST": 524000,
    "CPU_FORECAST": 11.5,
    "MEMORY_FORECAST_FAR": 520000,
    "CPU_FORECAST_FAR": 10.5,
    "NUMA_NODES": "0",
}
"""A 20-key merged MONITOR template, as ``vm.monitoring`` holds it after a few messages."""
assert len(MONITOR_20) == 20


def system_template(cores: int = 32, nodes: int = 2) -> dict[str, object]:
    """A merged SYSTEM_HOST template of a ``cores``-core, ``nodes``-node KVM host."""
    per_node = cores // nodes
    return {
        "HYPERVISOR": "kvm",
        "ARCH": "x86_64",
        "HOSTNAME": "node-17.cloud.example",
        "MODELNAME": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        "CPUSPEED": 2000,
        "TOTALCPU": cores * 100,
        "TOTALMEMORY": 263_921_344,
        "CGROUPS_VERSION": 2,
        "VERSION": "6.10.1",
        "KVM_MACHINES": "pc-i440fx-8.2 pc-q35-8.2 pc microvm",
        "KVM_CPU_MODEL": "host-passthrough",
        "KVM_CPU_MODELS": "qemu64 kvm64 Skylake-Server Icelake-Server Cascadelake-Server",
        "RESERVED_CPU": "",
        "RESERVED_MEM": "",
        "DS_LOCATION_USED_MB": 120_000,
        "DS_LOCATION_TOTAL_MB": 900_000,
        "DS_LOCATION_FREE_MB": 780_000,
        "DS": [
            {"ID": i, "USED_MB": 1000 * i, "TOTAL_MB": 900_000, "FREE_MB": 800_000 - i}
            for i in range(3)
        ],
        "CORE": [
            {"NODE_ID": c // per_node, "ID": c, "CPUS": f"{c},{c + cores}"} for c in range(cores)
        ],
        "HUGEPAGE": [
            {"NODE_ID": n, "SIZE": size, "PAGES": 0}
            for n in range(nodes)
            for size in (2048, 1048576)
        ],
        "MEMORY_NODE": [
            {"NODE_ID": n, "TOTAL": 131_960_672, "DISTANCE": f"{n} {1 - n}"} for n in range(nodes)
        ],
        "PCI_DEVICE": [
            {
                "DOMAIN": "0000",
                "BUS": f"{b:02x}",
                "SLOT": "00",
                "FUNCTION": "0",
                "ADDRESS": f"0000:{b:02x}:00.0",
                "CLASS": "0300",
                "CLASS_NAME": "VGA compatible controller",
                "VENDOR": "10de",
                "VENDOR_NAME": "NVIDIA Corporation",
                "DEVICE": "1eb8",
                "DEVICE_NAME": "TU104GL [Tesla T4]",
                "NUMA_NODE": b % nodes,
            }
            for b in range(4)
        ],
    }


def make_host(host_id: int) -> Host:
    """A MONITORED host with a 32-core SYSTEM_HOST template and agent figures."""
    return Host(
        id=host_id,
        name=f"node-{host_id}",
        state=HostState.MONITORED,
        last_seen=T0,
        last_monitored=T0,
        system=system_template(),
        capacity=HostCapacity(
            free_cpu=2900.0,
            used_cpu=300.0,
            free_memory=200_000_000,
            used_memory=63_921_344,
            netrx=123456789,
            nettx=987654321,
            cpu_speed=2000,
            numa=[{"NODE_ID": n, "MEMORY": {"FREE": 1, "USED": 2}} for n in range(2)],
        ),
        agent={"VERSION": "0.1", "PROBES_FAILED": 0, "UPTIME": 12345, "RSS": 40_000_000},
    )


def make_vm(vm_id: int) -> Vm:
    """A RUNNING VM with a 20-key merged MONITOR template."""
    vm = Vm(id=vm_id, host_id=vm_id % 100, deploy_id=f"one-{vm_id}", last_poll=T0)
    vm.set_report(VmReport.RUNNING)
    vm.monitoring = dict(MONITOR_20)
    return vm


def per_call(fill: Callable[[StoreWriter, int], None], calls: int) -> float:
    """Best-of-3 seconds per call of ``fill(writer, i)`` on the event-loop side (no writer)."""
    best = float("inf")
    for _ in range(3):
        writer = StoreWriter(StoreConfig(url="sqlite:////never/opened.db", max_backlog_rows=calls))
        started = time.perf_counter()
        for i in range(calls):
            fill(writer, i)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def loop_side_costs(calls: int = 100_000) -> dict[str, float]:
    """Event-loop seconds per call of each hot submission."""
    hosts = [make_host(i) for i in range(100)]
    vms = [make_vm(i) for i in range(1000)]
    return {
        "put_host (32-core SYSTEM_HOST)": per_call(lambda w, i: w.put_host(hosts[i % 100]), calls),
        "put_vm (20-key MONITOR)": per_call(lambda w, i: w.put_vm(vms[i % 1000]), calls),
        "add_vm_monitoring (10 keys)": per_call(
            lambda w, i: w.add_vm_monitoring(i % 1000, T0 + i, MONITOR), calls
        ),
        "add_vm_monitoring (20 keys)": per_call(
            lambda w, i: w.add_vm_monitoring(i % 1000, T0 + i, MONITOR_20), calls
        ),
        "add_host_monitoring": per_call(
            lambda w, i: w.add_host_monitoring(i % 100, T0 + i, hosts[i % 100].capacity), calls
        ),
    }


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds ``thread`` has used so far."""
    assert thread is not None and thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def fill(writer: StoreWriter, what: str, rows: int, base: float) -> list[Host]:
    """Submit ``rows`` distinct rows of one kind (nothing coalesces); the hosts put, if any."""
    hosts: list[Host] = []
    if what == "vm_history":
        for i in range(rows):
            writer.add_vm_monitoring(i % 1000, base + i // 1000, MONITOR_20)
    elif what == "host_history":
        cap = make_host(0).capacity
        for i in range(rows):
            writer.add_host_monitoring(i % 100, base + i // 100, cap)
    elif what.startswith("hosts"):
        template = system_template()
        for i in range(rows):
            host = make_host(i)
            host.system = template
            writer.put_host(host)
            hosts.append(host)
    else:
        for i in range(rows):
            writer.put_vm(make_vm(i))
    return hosts


async def writer_cpu(url: str, what: str, rows: int, repeat: int = 3) -> float:
    """Writer-thread CPU seconds per row to write ``rows`` of one kind (best of ``repeat``).

    The backlog is filled first, then the thread starts. ``hosts_again``: the same hosts are put
    a second time (new ``last_seen``, same SYSTEM_HOST object), as after any message but
    SYSTEM_HOST; only that second write is measured.
    """
    best = float("inf")
    for attempt in range(repeat):
        writer = StoreWriter(StoreConfig(url=url, max_backlog_rows=rows + 1, batch_rows=5000))
        hosts = fill(writer, what, rows, T0 + 2e6 + 1e5 * attempt)
        writer.start()
        if what == "hosts_again":
            await writer.persisted()
            for host in hosts:
                host.last_seen += 1
                writer.put_host(host)
        cpu = thread_cpu(writer._thread)
        await writer.persisted()
        best = min(best, (thread_cpu(writer._thread) - cpu) / rows)
        writer.stop()
    return best


async def writer_rate(url: str, rows: int) -> tuple[float, float, float, int]:
    """Rows/s the writer commits: the backlog is filled first, then drained by the thread.

    Returns (drain rate, rate inside transactions, seconds, batches).
    """
    writer = StoreWriter(StoreConfig(url=url, max_backlog_rows=rows + 1, batch_rows=5000))
    for i in range(rows):
        writer.add_vm_monitoring(i % 1000, T0 + i // 1000, MONITOR)
    started = time.perf_counter()
    writer.start()
    await writer.persisted()
    elapsed = time.perf_counter() - started
    batches = writer.batches_total
    in_commit = writer.rows_total / writer.commit_seconds_total
    writer.stop()
    return rows / elapsed, in_commit, elapsed, batches


async def ack_latency(url: str, rounds: int = 200) -> float:
    """Median seconds from a journal row to its persisted() (one row per commit)."""
    writer = StoreWriter(StoreConfig(url=url))
    writer.start()
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        writer.add_state_change(T0 + i, 1, i, "RUNNING", "STATE_VM")
        await writer.persisted()
        samples.append(time.perf_counter() - started)
    writer.stop()
    return statistics.median(samples)


async def loop_side_cost_while_writing(url: str, calls: int = 100_000) -> tuple[float, float]:
    """Per-call cost and worst event-loop stall while the writer thread commits to ``url``."""
    writer = StoreWriter(StoreConfig(url=url, max_backlog_rows=10 * calls))
    writer.start()
    worst = 0.0
    started = time.perf_counter()
    for i in range(calls):
        writer.add_vm_monitoring(i % 1000, T0 + 1e6 + i, MONITOR)
        if i % 1000 == 999:
            before = time.perf_counter()
            await asyncio.sleep(0)
            worst = max(worst, time.perf_counter() - before)
    per_call = (time.perf_counter() - started) / calls
    await writer.persisted()
    writer.stop()
    return per_call, worst


async def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pg-url", default="")
    parser.add_argument("--mysql-url", default="", help="an empty database, e.g. mysql+pymysql://…")
    args = parser.parse_args()

    for name, seconds in loop_side_costs().items():
        print(f"event-loop side: {seconds * 1e6:6.2f} µs per {name}")
    cluster = None
    pg_url = args.pg_url
    if not pg_url:
        from conftest import PgCluster, PgUnavailable

        try:
            cluster = PgCluster(fast=False)
            pg_url = cluster.url(cluster.create_database())
        except PgUnavailable as exc:
            print(f"postgresql: skipped: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        if pg_url:
            targets.append(("postgresql", pg_url))
        if args.mysql_url:
            targets.append(("mysql", args.mysql_url))
        try:
            for name, url in targets:
                for what, count in (
                    ("vm_history", 20_000),
                    ("host_history", 20_000),
                    ("vms", 10_000),
                    ("hosts", 1_000),
                    ("hosts_again", 1_000),
                ):
                    cpu = await writer_cpu(url, what, count)
                    print(f"{name}: writer thread {cpu * 1e6:6.1f} µs CPU per {what} row")
                rate, in_commit, elapsed, batches = await writer_rate(url, args.rows)
                print(
                    f"{name}: {rate:,.0f} VM history rows/s committed "
                    f"({args.rows} rows, {batches} batches, {elapsed:.2f} s; "
                    f"{in_commit:,.0f} rows/s inside transactions)"
                )
                per_call, stall = await loop_side_cost_while_writing(url)
                print(
                    f"{name}: {per_call * 1e6:.2f} µs per call while the writer commits; "
                    f"worst loop stall {stall * 1e3:.1f} ms"
                )
                print(f"{name}: ack latency (1 journal row) {await ack_latency(url) * 1e3:.2f} ms")
        finally:
            if cluster is not None:
                cluster.destroy()


if __name__ == "__main__":
    asyncio.run(main())
