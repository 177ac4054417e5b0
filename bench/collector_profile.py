"""In-process costs of the ingest pipeline, per message type (``bench.collector`` explains the
whole-process figures).

Run: ``python -m bench.collector_profile [--profile TYPE]``.

The very datagrams the ingest benchmark sends (``bench.collector_load``: beacons, MONITOR_HOST,
16-VM MONITOR_VM parts) go through ``native.decode`` alone, then through the whole
``Ingest.datagram`` (decode, order, apply, hand to the store) with a store that keeps nothing
(the event loop's share), then the store writer thread's share: the rows a batch of them makes
(``rows.*_params``) and their SQLite write. Figures are CPU microseconds per message, best of
five runs; ``--profile`` prints a cProfile of one type's ``Ingest.datagram``.

``--mix SECONDS`` runs the ingest benchmark's mix (40 % beacons, 40 % MONITOR_HOST, 20 % 16-VM
MONITOR_VM parts) through ``Ingest.datagram`` as fast as it goes, on one CPU, with the real store
writer thread behind it: messages/s and CPU µs per message without the socket, uvloop and the
``/metrics`` renderer.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.collector_load import Fleet, Streams
from onemon.collector.events import EventBus
from onemon.collector.ingest import Ingest
from onemon.collector.metrics.health import Health
from onemon.collector.model import Host, HostCapacity, Vm
from onemon.collector.state import CloudState
from onemon.collector.store import StoreWriter, rows
from onemon.collector.store.backlog import HOST_SAMPLE, VM_SAMPLE, Batch
from onemon.collector.store.batchrows import write_rows
from onemon.collector.store.config import StoreConfig
from onemon.wire import native
from onemon.wire.keys import KeyRing
from onemon.wire.model import MessageType

T = MessageType
TYPES = (T.BEACON_HOST, T.MONITOR_HOST, T.MONITOR_VM)
HOSTS = 1000
PER_TYPE = 1000
RUNS = 5


class NullStore:
    """The pipeline's store, keeping the last references only (no cost but the calls)."""

    def __init__(self) -> None:
        self.batch = Batch()
        self.seq = 0

    def put_host(self, host: Host) -> None:
        """Keep a reference, coalesced by id."""
        self.batch.hosts[host.id] = host

    def put_vm(self, vm: Vm) -> None:
        """Keep a reference, coalesced by id."""
        self.batch.vms[vm.id] = vm

    def delete_host(self, host_id: int) -> None:
        """Nothing."""

    def delete_vm(self, vm_id: int) -> None:
        """Nothing."""

    def add_host_monitoring(self, host_id: int, ts: float, capacity: HostCapacity) -> None:
        """Keep the capture as the writer does."""
        self.seq += 1
        sample = rows.capture_host_sample(host_id, ts, capacity)
        self.batch.history.append((self.seq, HOST_SAMPLE, sample))

    def add_vm_monitoring(self, vm_id: int, ts: float, monitoring: Any) -> None:
        """Keep the capture as the writer does."""
        self.seq += 1
        self.batch.history.append((self.seq, VM_SAMPLE, (vm_id, ts, monitoring)))

    def add_state_change(
        self, ts: float, host_id: int, vm_id: int, report: str, source: str
    ) -> None:
        """Nothing."""

    def put_progress(
        self, host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int
    ) -> None:
        """Build the row as the writer does (it is built on the event loop)."""
        self.batch.progress[(host_id, msg_type)] = rows.progress_params(
            host_id, msg_type, boot_id, seq, window
        )


class Pipeline:
    """A collector's state and ingest over a null store, every host registered and warm."""

    def __init__(self, streams: Streams) -> None:
        self.streams = streams
        self.ring = KeyRing.single(streams.fleet.key)
        self.state = CloudState()
        self.store = NullStore()
        self.ingest = Ingest(self.state, self.ring, Health(), self.store, EventBus())
        for host_id in range(streams.fleet.hosts):
            self.state.add_host(host_id, f"node{host_id:05d}")
        for data in streams.warm_up():
            self.ingest.datagram(data)
        self.now = time.time()
        self.ingest.clock = self.clock

    def clock(self) -> float:
        """Strictly increasing receive times (history rows are keyed by time)."""
        self.now += 1e-6
        return self.now

    def datagrams(self, mtype: MessageType, count: int) -> list[bytes]:
        """The next ``count`` datagrams of ``mtype``, round-robin over the hosts (one each: the
        writer coalesces nothing, as under the benchmark's load)."""
        hosts = self.streams.fleet.hosts
        return [self.streams.datagram(i % hosts, mtype) for i in range(count)]


def per_message(action: Callable[[bytes], object], pool: Iterable[bytes], count: int) -> float:
    """CPU µs per call of ``action`` over ``pool``."""
    started = time.process_time()
    for data in pool:
        action(data)
    return (time.process_time() - started) / count * 1e6


def measure(pipeline: Pipeline, writer: StoreWriter) -> None:
    """Print decode, event-loop and writer-thread µs per message of each type."""
    ring = pipeline.ring
    print(f"in-process CPU µs per message, best of {RUNS} runs of {PER_TYPE} ({HOSTS} hosts):")
    print(f"  {'type':<13} {'decode':>8} {'ingest':>8} {'rows':>8} {'write':>8} {'total':>8}")
    for mtype in TYPES:
        decode = ingest = build = write = float("inf")
        for _ in range(RUNS):
            pool = pipeline.datagrams(mtype, PER_TYPE)
            decode = min(decode, per_message(lambda d: native.decode(d, ring), pool, PER_TYPE))
            pool = pipeline.datagrams(mtype, PER_TYPE)
            pipeline.store.batch = Batch()
            ingest = min(ingest, per_message(pipeline.ingest.datagram, pool, PER_TYPE))
            batch = pipeline.store.batch
            started = time.process_time()
            work = writer._rows.prepare(batch)
            build = min(build, (time.process_time() - started) / PER_TYPE * 1e6)
            assert writer._engine is not None
            started = time.process_time()
            with writer._engine.begin() as conn:
                write_rows(conn, writer._bulk, work)
            write = min(write, (time.process_time() - started) / PER_TYPE * 1e6)
        total = ingest + build + write
        print(
            f"  {mtype.name:<13} {decode:8.1f} {ingest:8.1f} {build:8.1f} {write:8.1f} {total:8.1f}"
        )


def profile(pipeline: Pipeline, mtype: MessageType) -> None:
    """cProfile of ``Ingest.datagram`` over one type's datagrams."""
    pool = pipeline.datagrams(mtype, PER_TYPE * 2)
    profiler = cProfile.Profile()
    profiler.enable()
    for data in pool:
        pipeline.ingest.datagram(data)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def mix(seconds: float) -> None:
    """The benchmark's mix through ``Ingest.datagram`` and a real store writer, on one CPU."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the writer thread inherits it
    fleet = Fleet(hosts=1000)
    streams = Streams(fleet)
    with tempfile.TemporaryDirectory(prefix="onemon-profile-") as tmp:
        writer = StoreWriter(StoreConfig(url=f"sqlite:///{Path(tmp) / 'collector.db'}"))
        writer.start()
        try:
            state = CloudState()
            for host_id in range(fleet.hosts):
                writer.put_host(state.add_host(host_id, f"node{host_id:05d}"))
            health = Health()
            ingest = Ingest(state, KeyRing.single(fleet.key), health, writer, EventBus())
            for data in streams.warm_up():
                ingest.datagram(data)
            pool = streams.mixed(int(seconds * 40_000))
            while writer.backlog:
                time.sleep(0.05)
            main_cpu = time.thread_time()
            cpu, wall, count = time.process_time(), time.perf_counter(), 0
            deadline = wall + seconds
            for start in range(0, len(pool), 1000):
                for data in pool[start : start + 1000]:
                    ingest.datagram(data)
                count += 1000
                if time.perf_counter() >= deadline:
                    break
            wall = time.perf_counter() - wall
            fed_cpu = time.process_time() - cpu
            main_cpu = time.thread_time() - main_cpu
            backlog = writer.backlog
            while writer.backlog:
                time.sleep(0.01)
            drained = time.process_time() - cpu
        finally:
            writer.stop()
    rejected = {k: v for k, v in health.rejected.items() if v}
    print(
        f"mix through Ingest.datagram + store writer, one CPU: {count:,} messages in {wall:.1f} s "
        f"= {count / wall:,.0f} msg/s; CPU {fed_cpu / wall:.0%}: ingest thread "
        f"{main_cpu / wall:.0%}, writer {(fed_cpu - main_cpu) / wall:.0%}; rejected {rejected or 0}"
    )
    print(
        f"  backlog at the end {backlog:,} rows, history shed {writer.history_dropped_total:,}; "
        f"CPU until drained {drained / count * 1e6:.1f} µs per message"
    )


def main(argv: list[str] | None = None) -> None:
    """Build the fleet's streams, then measure (or profile one type)."""
    parser = argparse.ArgumentParser(prog="python -m bench.collector_profile", description=__doc__)
    parser.add_argument("--profile", choices=[t.name for t in TYPES], help="cProfile this type")
    parser.add_argument("--mix", type=float, metavar="SECONDS", help="run the mix, one CPU")
    args = parser.parse_args(argv)
    if args.mix:
        mix(args.mix)
        return
    pipeline = Pipeline(Streams(Fleet(hosts=HOSTS)))
    if args.profile:
        profile(pipeline, MessageType[args.profile])
        return
    with tempfile.TemporaryDirectory(prefix="onemon-profile-") as tmp:
        writer = StoreWriter(StoreConfig(url=f"sqlite:///{Path(tmp) / 'collector.db'}"))
        writer.start()  # the thread idles: nothing is submitted to it
        try:
            measure(pipeline, writer)
        finally:
            writer.stop()


if __name__ == "__main__":
    main()
