"""Scale-out: 1, 2 and 4 sharded collectors on one PostgreSQL, and that database's ceiling.

Run: ``python -m bench.fleet_scale`` (as root or as a user that may run PostgreSQL's binaries;
``--counts 1,2,4 --hosts 2000 --vms 8000 --duration 15``).

Phase 1, the fleet: for each count n, a fresh database on one private PostgreSQL (fsync on, as in
production), n ``one-collector`` processes with sharding on (``shards = n``, collector i leads
shard i, hosts assigned by hand so each shard has hosts/n of them) and n fleet senders
(``bench.fleet_sender``), sender i sending its shard's hosts straight to collector i, as agents
do once redirected. Twice: paced (OpenNebula's periods divided by ``--scale``: a fixed load, to
see what carrying it costs) and flat out (datagrams as fast as the senders can, to see what the
collectors take); VM state changes and full syncs are paced over acknowledged TCP either way.
Reported: messages accepted per second (all collectors), state changes acknowledged per second
(persisted), the rows and transactions the database committed per second, and the CPU the
collectors, PostgreSQL and the whole machine used. Everything
shares this machine's cores: on 2 cores, 4 collectors and 4 senders compete with each other and
with the database, and the figures say so. A first row, ``1 (off)``, is one collector with
sharding off on the same store: what sharding itself costs.

The load generators run at nice 19: they take only the CPU the collectors and the database leave.
``rest`` is the machine's CPU used by neither the collectors, PostgreSQL nor the load (or the
writers): the kernel's network and disk work, and anything else running — well above a few tens
of percent, something else was running: run again.

Phase 2, the store alone: 1, 2, 4 processes each driving a ``StoreWriter`` flat out (VM history,
journal, VM state upserts, as ingest makes them) into one database: the rows per second one
PostgreSQL takes here, which no number of collectors can exceed.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.collector_ingest import REPO, HealthApi, free_port
from bench.fleet_hosts import CLUSTER_SECRET, FleetSpec
from bench.fleet_sender import FleetSender
from onemon.wire.keys import CLUSTER_KEY_ID, Key, write_key_file
from tests.collector.sharding.dbservers import PgServer


@dataclass(frozen=True)
class ShardSpec(FleetSpec):
    """A fleet for one shard: its hosts from ``first_host``, its VMs from ``first_vm``."""

    first_vm: int = 0

    def vm_range(self, index: int) -> range:
        """VM ids on the ``index``-th host, offset so shards never share a VM."""
        inner = super().vm_range(index)
        return range(inner.start + self.first_vm, inner.stop + self.first_vm)


@dataclass
class Collector:
    """One sharded one-collector process."""

    index: int
    directory: Path
    port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None
    health: HealthApi = field(init=False)

    def __post_init__(self) -> None:
        self.health = HealthApi(self.http_port)

    def led(self) -> list[int]:
        """The shards it leads (``[0]`` without sharding; empty while it cannot tell)."""
        try:
            health = self.health.get()
        except (OSError, ValueError):
            return []
        led: list[int] = health["sharding"]["led"] if "sharding" in health else [0]
        return led

    def accepted(self) -> int:
        """Messages accepted so far."""
        return self.health.accepted()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()


def start_collector(
    directory: Path, url: str, count: int, index: int, assign: list[list[int]], sharded: bool
) -> Collector:
    """Collector ``index`` of ``count``: leads shard ``index``, registers its hosts (or, not
    ``sharded``, the one collector of old: no lock, every host)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "cluster.key"
    write_key_file(key, Key(CLUSTER_KEY_ID, CLUSTER_SECRET))
    port, http_port = free_port(), free_port()
    lines = [
        'log_level = "WARNING"',
        "[listen]", 'address = "127.0.0.1"', f"port = {port}",
        "[keys]", f'cluster_key_file = "{key}"',
        "[store]", f'url = "{url}"',
        "[http]", 'address = "127.0.0.1"', f"port = {http_port}",
        f'admin_token_file = "{directory / "admin.token"}"',
    ]  # fmt: skip
    if sharded:
        lines += ["[sharding]", "enabled = true", f"shards = {count}", f"home = [{index}]",
                  "standby = []", f'name = "c{index}"']  # fmt: skip
        for shard, hosts in enumerate(assign):
            lines += ["[[sharding.assign]]", f"shard = {shard}", f"hosts = {hosts}"]
    lines += [f'[[hosts.register]]\nid = {h}\nname = "node{h:05d}"' for h in assign[index]]
    config = directory / "collector.toml"
    config.write_text("\n".join(lines) + "\n")
    collector = Collector(index, directory, port, http_port)
    collector.log = (directory / "collector.log").open("ab")
    argv = [sys.executable, "-m", "onemon.collector.cli", "-c", str(config)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    collector.proc = subprocess.Popen(
        argv, stdout=collector.log, stderr=subprocess.STDOUT, cwd=REPO, env=env
    )
    return collector


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def renice(pid: int, niceness: int = 19) -> None:
    """Lower every thread of ``pid`` to ``niceness``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def idle_check(seconds: float = 3.0) -> float:
    """The machine's busy share of all cores over ``seconds``, before anything of ours runs."""
    before = machine_busy()
    time.sleep(seconds)
    return (machine_busy() - before) / seconds / (os.cpu_count() or 1)


def machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuSampler(threading.Thread):
    """The machine's busy time, and PostgreSQL's (backends come and go: sampled per process)."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="cpu-sampler")
        self._stop_event = threading.Event()
        self._seen: dict[int, float] = {}
        self._first: dict[int, float] = {}
        self._machine0 = machine_busy()
        self.machine = 0.0
        self.postgres = 0.0
        self.start()

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pid = int(entry.name)
                    self._seen[pid] = cpu_seconds(pid)  # born later: all of it counts

    def run(self) -> None:
        """Sample every 0.2 s until stopped."""
        self._sample()
        self._first = dict(self._seen)  # what the processes alive at the start had used
        while not self._stop_event.wait(0.2):
            self._sample()

    def stop(self) -> None:
        """Stop; ``machine`` and ``postgres`` hold the CPU seconds used meanwhile."""
        self._stop_event.set()
        self.join(5)
        self._sample()
        self.machine = machine_busy() - self._machine0
        self.postgres = sum(used - self._first.get(pid, 0.0) for pid, used in self._seen.items())


def db_stats(url: str) -> tuple[int, int]:
    """(transactions committed, rows inserted + updated + deleted) of the database so far."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
            row = conn.execute(sa.text(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = current_database()")).one()  # fmt: skip
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def wait(check: Any, timeout: float, what: str) -> None:
    """Poll until ``check()``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def fleet_run(
    pg: PgServer,
    work: Path,
    count: int,
    args: argparse.Namespace,
    sharded: bool = True,
    flat: bool = True,
) -> dict[str, float]:
    """One fleet measurement with ``count`` collectors, flat out or on the periods."""
    url = pg.url(pg.create_database())
    per_hosts, per_vms = args.hosts // count, args.vms // count
    specs = [
        ShardSpec(hosts=per_hosts, vms=per_vms, scale=args.scale, churn=args.churn / count,
                  host_keys=False, tcp_connections=4, marker_rate=0,
                  first_host=10_000 + i * per_hosts, first_vm=i * per_vms, seed=i + 1)
        for i in range(count)
    ]  # fmt: skip
    assign = [[s.host_id(h) for h in range(s.hosts)] for s in specs]
    collectors = [start_collector(work / f"n{count}{sharded}c{i}", url, count, i, assign, sharded)
                  for i in range(count)]  # fmt: skip
    senders: list[FleetSender] = []
    try:
        for c in collectors:
            wait(lambda c=c: c.led() == [c.index], 60, f"collector {c.index} to lead")
        senders = [FleetSender(spec, c.port) for spec, c in zip(specs, collectors, strict=True)]
        for sender in senders:  # the load takes only what collectors and database leave
            if sender.process.pid is not None:
                renice(sender.process.pid)
        for sender in senders:
            sender.begin("warm", 3000.0 / count)
        for sender in senders:
            sender.result(300)
        accepted0 = [c.accepted() for c in collectors]
        cpu0 = [cpu_seconds(c.proc.pid) for c in collectors if c.proc]
        load0 = [cpu_seconds(s.process.pid) for s in senders if s.process.pid]
        xact0, rows0 = db_stats(url)
        sampler = CpuSampler()
        started = time.monotonic()
        for sender in senders:
            sender.begin("run", args.duration, flat)
        results = [sender.result(600) for sender in senders]
        elapsed = time.monotonic() - started
        sampler.stop()
        accepted = sum(c.accepted() for c in collectors) - sum(accepted0)
        cpu = sum(cpu_seconds(c.proc.pid) for c in collectors if c.proc) - sum(cpu0)
        load = sum(cpu_seconds(s.process.pid) for s in senders if s.process.pid) - sum(load0)
        xact1, rows1 = db_stats(url)
        return {
            "collectors": count,
            "accepted_per_s": accepted / elapsed,
            "sent_per_s": sum(r["udp_sent"] for r in results) / elapsed,
            "acked_per_s": sum(r["ack_ok"] for r in results) / elapsed,
            "rows_per_s": (rows1 - rows0) / elapsed,
            "commits_per_s": (xact1 - xact0) / elapsed,
            "collector_cpu": cpu / elapsed,
            "postgres_cpu": sampler.postgres / elapsed,
            "machine_cpu": sampler.machine / elapsed,
            "others_cpu": max(0.0, sampler.machine - cpu - sampler.postgres - load) / elapsed,
            "cpu_ms_per_1k": 1e6 * cpu / max(accepted, 1),
        }
    finally:
        for sender in senders:
            sender.close()
        for c in collectors:
            c.stop()


def _writer_main(url: str, seconds: float, index: int, out: Any) -> None:
    """Phase 2: one StoreWriter flat out (as ingest feeds it), its committed rows reported."""
    import asyncio

    from onemon.collector.model import LcmState, Vm, VmReport, VmState
    from onemon.collector.store import StoreConfig, StoreWriter

    async def run() -> tuple[int, float, float]:
        writer = StoreWriter(StoreConfig(url=url, max_backlog_rows=200_000))
        await asyncio.to_thread(writer.start)
        vms = [Vm(id=index * 100_000 + i, host_id=index * 1000 + i // 10, state=VmState.ACTIVE,
                  lcm_state=LcmState.RUNNING) for i in range(5000)]  # fmt: skip
        monitoring = {"CPU": 12.5, "MEMORY": 524288, "NETRX": 1000, "NETTX": 2000,
                      "DISKRDBYTES": 4096, "DISKWRBYTES": 8192, "STATE": 1}  # fmt: skip
        started = time.monotonic()
        base = writer.rows_total
        tick = 0
        while time.monotonic() - started < seconds:
            tick += 1
            now = 1e9 + tick
            for vm in vms:
                writer.add_vm_monitoring(vm.id, now, monitoring)
            for vm in vms[:50]:
                vm.set_report(VmReport.POWEROFF if tick % 2 else VmReport.RUNNING)
                writer.put_vm(vm)
                writer.add_state_change(now, vm.host_id, vm.id, str(vm.report), "state_vm")
            await writer.persisted()
        elapsed = time.monotonic() - started
        rows = writer.rows_total - base
        await writer.aclose()
        return rows, elapsed, time.process_time()

    out.put(asyncio.run(run()))


def store_ceiling(pg: PgServer, writers: int, seconds: float) -> dict[str, float]:
    """Rows per second ``writers`` StoreWriter processes get committed into one database."""
    url = pg.url(pg.create_database())
    context = multiprocessing.get_context("spawn")
    out: Any = context.Queue()
    # one writer creates the schema first, so the others do not race for the migration
    from onemon.collector.store import migrate
    from onemon.collector.store.engine import make_engine

    engine = make_engine(url, writer=True)
    migrate(engine)
    engine.dispose()
    procs = [context.Process(target=_writer_main, args=(url, seconds, i, out))
             for i in range(writers)]  # fmt: skip
    xact0, _ = db_stats(url)
    sampler = CpuSampler()
    started = time.monotonic()
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    sampler.stop()
    elapsed = time.monotonic() - started
    xact1, _ = db_stats(url)
    writing = sum(cpu for _, _, cpu in results)
    return {
        "writers": writers,
        "rows_per_s": sum(rows for rows, _, _ in results) / max(t for _, t, _ in results),
        "commits_per_s": (xact1 - xact0) / elapsed,
        "postgres_cpu": sampler.postgres / elapsed,
        "machine_cpu": sampler.machine / elapsed,
        "others_cpu": max(0.0, sampler.machine - sampler.postgres - writing) / elapsed,
    }


def median(tries: list[dict[str, float]], key: str) -> dict[str, float]:
    """The run with the median ``key``."""
    return sorted(tries, key=lambda t: t[key])[len(tries) // 2]


def main(argv: list[str] | None = None) -> int:
    """Run both phases and print the tables."""
    parser = argparse.ArgumentParser(prog="fleet_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--vms", type=int, default=8000)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--churn", type=float, default=200.0, help="state changes/s, all shards")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--writer-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row: the median shown")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="onemon-fleet-scale-"))
    busy = idle_check()
    pg = PgServer(fast=False)
    cores = os.cpu_count()
    try:
        print(f"{cores} cores; {args.hosts} hosts / {args.vms} VMs split into n shards; "
              f"{args.duration:g} s per run; {args.churn:g} state changes/s; one PostgreSQL "
              f"{pg.bindir.parent.name} (fsync on)", flush=True)  # fmt: skip
        print(
            "CPU columns: share of one core (the machine has "
            f"{cores}: {100 * (cores or 1)}% is all of it); load generators at nice 19"
        )
        print(
            f"before the start the machine was {busy:.0%} busy"
            + (": other work is running, these figures understate" if busy > 0.1 else "")
        )
        runs = [(1, False)] + [(count, True) for count in counts]
        print(f"\npaced: OpenNebula's periods / {args.scale:g} (the cost of a fixed load)")
        print(f"{'collectors':>10} {'accepted/s':>11} {'acked/s':>8} {'db rows/s':>10} "
              f"{'coll. CPU':>9} {'pg CPU':>7} {'machine':>8} {'rest':>7} "
              f"{'ms CPU/1k msg':>13}")  # fmt: skip
        for count, sharded in runs:
            r = fleet_run(pg, work, count, args, sharded, flat=False)
            name = f"{count}" if sharded else "1 (off)"
            print(f"{name:>10} {r['accepted_per_s']:>11,.0f} {r['acked_per_s']:>8,.0f} "
                  f"{r['rows_per_s']:>10,.0f} {r['collector_cpu']:>9.0%} "
                  f"{r['postgres_cpu']:>7.0%} {r['machine_cpu']:>8.0%} "
                  f"{r['others_cpu']:>7.0%} {r['cpu_ms_per_1k']:>13,.0f}", flush=True)  # fmt: skip
        print("\nflat out: the senders send as fast as they can (what the collectors can take)")
        print(f"{'collectors':>10} {'accepted/s':>11} {'per coll.':>10} {'offered/s':>10} "
              f"{'acked/s':>8} {'db rows/s':>10} {'db tx/s':>8} {'coll. CPU':>9} "
              f"{'pg CPU':>7} {'machine':>8} {'rest':>7} {'ms CPU/1k msg':>13}   (accepted/s, "
              f"{args.repeat} runs)", flush=True)  # fmt: skip
        for count, sharded in runs:
            tries = [fleet_run(pg, work, count, args, sharded) for _ in range(args.repeat)]
            r = median(tries, "accepted_per_s")
            low, high = (f(t["accepted_per_s"] for t in tries) for f in (min, max))
            name = f"{count}" if sharded else "1 (off)"
            print(f"{name:>10} {r['accepted_per_s']:>11,.0f} "
                  f"{r['accepted_per_s'] / count:>10,.0f} {r['sent_per_s']:>10,.0f} "
                  f"{r['acked_per_s']:>8,.0f} {r['rows_per_s']:>10,.0f} "
                  f"{r['commits_per_s']:>8,.0f} {r['collector_cpu']:>9.0%} "
                  f"{r['postgres_cpu']:>7.0%} {r['machine_cpu']:>8.0%} "
                  f"{r['others_cpu']:>7.0%} {r['cpu_ms_per_1k']:>13,.0f}   "
                  f"({low:,.0f}–{high:,.0f})",
                  flush=True)  # fmt: skip
        print("\nthe store alone: StoreWriter processes flat out into the same PostgreSQL")
        print(f"{'writers':>10} {'rows/s':>10} {'db tx/s':>8} {'pg CPU':>7} {'machine':>8} "
              f"{'rest':>7}", flush=True)  # fmt: skip
        for writers in counts:
            tries = [store_ceiling(pg, writers, args.writer_seconds) for _ in range(args.repeat)]
            r = median(tries, "rows_per_s")
            print(f"{writers:>10} {r['rows_per_s']:>10,.0f} {r['commits_per_s']:>8,.0f} "
                  f"{r['postgres_cpu']:>7.0%} {r['machine_cpu']:>8.0%} "
                  f"{r['others_cpu']:>7.0%}", flush=True)  # fmt: skip
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
