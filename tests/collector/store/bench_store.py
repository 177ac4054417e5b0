"""Store figures (not a test): writer rows/s for VM history, event-loop cost per call, ack latency.

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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/collector: PgCluster

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


def loop_side_cost(calls: int = 200_000) -> float:
    """Seconds per add_vm_monitoring call on the event-loop side (no writer running)."""
    best = float("inf")
    for _ in range(3):
        writer = StoreWriter(StoreConfig(url="sqlite:////never/opened.db", max_backlog_rows=calls))
        started = time.perf_counter()
        for i in range(calls):
            writer.add_vm_monitoring(i % 1000, T0 + i, MONITOR)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


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

    print(f"event-loop side: {loop_side_cost() * 1e6:.2f} µs per add_vm_monitoring")
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
