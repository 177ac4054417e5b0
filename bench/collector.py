"""Collector benchmarks: native UDP ingest rate on one core, and ``/metrics`` render cost.

Run: ``python -m bench.collector [--only ingest|render]``.

Ingest: a real one-collector process (uvloop, SQLite store in a temporary directory, the hosts
registered in its configuration) pinned to one CPU receives pre-signed native datagrams from a
sender process pinned to another CPU (``bench.collector_load``): flat out for a few seconds,
against a bare uvloop receiver that only counts (``bench.collector_bare``), then paced at
12,000/s to check that the kernel drops nothing. Accepted and rejected counts come from the
collector's ``/api/v1/health``, kernel drops from ``/proc/net/snmp`` (RcvbufErrors).

Render: the state is 10,000 VMs (about 20 series each) on 2,500
hosts (about 20 series each), about 250k samples. Times are this thread's CPU time (steady on a
busy machine). prometheus_client gets the very samples we rendered, already parsed, and builds
its families from them on each collect: it is spared our walk over the state.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bench.collector_load import MIX, Fleet, sender_main
from onemon.collector.metrics import BY_NAME, Kind, Renderer
from onemon.collector.metrics.kernel import udp_errors
from onemon.collector.model import Host, HostCapacity, HostState, Vm, VmReport
from onemon.wire.keys import write_key_file

HOSTS = 2_500
VMS_PER_HOST = 4
REPO = Path(__file__).resolve().parents[1]
FLAT_SECONDS = 3.0
"""How long the sender goes flat out; the rate is taken from 0.5 s in to 0.3 s before the end."""
PACED_RATE = 12_000.0


def best_of(runs: int, action: Callable[[], object]) -> float:
    """Least thread CPU time of ``runs`` runs of ``action``, in seconds (steady on a busy box)."""
    best = float("inf")
    for _ in range(runs):
        start = time.thread_time()
        action()
        best = min(best, time.thread_time() - start)
    return best


def host(host_id: int, rng: random.Random) -> Host:
    """A monitored host with one datastore and agent self-metrics."""
    total = 64 * 1024 * 1024
    used = rng.randrange(total)
    return Host(
        host_id, f"node{host_id:05d}.example.org", HostState.MONITORED,
        last_seen=1716200040.5, last_monitored=1716200040.0,
        system={"TOTALCPU": 6400, "TOTALMEMORY": total,
                "DS": {"ID": 0, "TOTAL_MB": 10**6, "USED_MB": rng.randrange(10**6), "FREE_MB": 1}},
        capacity=HostCapacity(
            free_cpu=rng.uniform(0, 6400), used_cpu=rng.uniform(0, 6400), free_memory=total - used,
            used_memory=used, netrx=rng.randrange(10**13), nettx=rng.randrange(10**13),
            cpu_speed=2400,
        ),
        agent={"MESSAGES_SENT": rng.randrange(10**6), "SPOOL_MESSAGES": 0},
    )  # fmt: skip


def vm(vm_id: int, host_id: int, rng: random.Random) -> Vm:
    """A running VM as the native agent reports it (reference §2.3 keys plus libvirt details)."""
    rx, tx = rng.randrange(10**12), rng.randrange(10**12)
    item = Vm(vm_id, host_id, f"{rng.getrandbits(128):032x}", last_poll=1716200041.25, monitoring={
        "CPU": round(rng.uniform(0, 400), 2), "MEMORY": rng.randrange(131_072, 16_777_216),
        "NETRX": rx, "NETTX": tx, "DISKRDBYTES": rng.randrange(10**12),
        "DISKWRBYTES": rng.randrange(10**12), "DISKRDIOPS": rng.randrange(10**9),
        "DISKWRIOPS": rng.randrange(10**9), "STATE": 1, "REASON": 1,
        "CPU_TIME_NS": rng.randrange(10**15),
        "NIC": {"ID": 0, "TARGET": f"one-{vm_id}-0", "RX_BYTES": rx, "TX_BYTES": tx},
        "BALLOON": {"RSS": rng.randrange(131_072, 16_777_216)},
    })  # fmt: skip
    item.set_report(VmReport.RUNNING)
    return item


def state(seed: int = 1) -> tuple[dict[int, Host], dict[int, Vm]]:
    """The benchmark fleet."""
    rng = random.Random(seed)
    hosts = {i: host(i, rng) for i in range(HOSTS)}
    vms = {i: vm(i, i // VMS_PER_HOST, rng) for i in range(HOSTS * VMS_PER_HOST)}
    return hosts, vms


Samples = list[tuple[str, Kind, list[str], list[tuple[list[str], float]]]]


def samples_of(text: str) -> Samples:
    """Our body parsed back into families: name, kind, label names, (label values, value)."""
    out: Samples = []
    for family in text_string_to_metric_families(text):
        first = family.samples[0]
        metric = BY_NAME[first.name]
        names = list(metric.labels)
        rows = [([s.labels[n] for n in names], float(s.value)) for s in family.samples]
        out.append((metric.name, metric.kind, names, rows))
    return out


class SameData(Collector):
    """prometheus_client's way: families built from the data on every collect."""

    def __init__(self, data: Samples) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        """One family per declared metric, rebuilt each scrape."""
        for name, kind, names, rows in self.data:
            family_type = CounterMetricFamily if kind is Kind.COUNTER else GaugeMetricFamily
            family = family_type(name, BY_NAME[name].help, labels=names)
            for values, value in rows:
                family.add_metric(values, value)
            yield family


def render_figures() -> None:
    """Print our render time against prometheus_client's ``generate_latest``, and body sizes."""
    hosts, vms = state()
    renderer = Renderer()
    cold = best_of(1, lambda: renderer.render(hosts, vms))
    rendered = renderer.render(hosts, vms)
    ours = best_of(5, lambda: renderer.body(hosts, vms, 0.0))
    ours_gzip = best_of(5, lambda: renderer.render(hosts, vms))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SameData(samples_of(rendered.body.decode())))
    theirs_body = generate_latest(registry)
    theirs = best_of(3, lambda: generate_latest(registry))
    samples = rendered.samples
    their_samples = sum(1 for line in theirs_body.splitlines() if not line.startswith(b"#"))
    rate = "samples/s"
    print(
        f"render of {samples:,} samples ({len(vms):,} VMs, {len(hosts):,} hosts), "
        f"CPU time, best of 5 (3 for prometheus_client):"
    )
    print(f"  ours, body:                  {ours * 1e3:7.1f} ms  {samples / ours:11,.0f} {rate}")
    print(
        f"  ours, body + gzip-{renderer.gzip_level}:         {ours_gzip * 1e3:7.1f} ms"
        f"  (first render, labels cold: {cold * 1e3:.0f} ms)"
    )
    print(
        f"  prometheus_client {client_version()}: {theirs * 1e3:7.1f} ms  "
        f"{samples / theirs:11,.0f} {rate} ({their_samples:,} samples, same data)"
    )
    print(f"  ratio: {theirs / ours:.1f}x (body), {theirs / ours_gzip:.1f}x (body + gzip)")
    plain, zipped, their_size = (
        len(b) / 1e6 for b in (rendered.body, rendered.gzip_body, theirs_body)
    )
    print(
        f"  size: ours {plain:.1f} MB, gzip {zipped:.2f} MB; prometheus_client {their_size:.1f} MB"
    )


def client_version() -> str:
    """The installed prometheus_client version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{version('prometheus_client'):<6}"
    except PackageNotFoundError:
        return "?     "


# --- ingest ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A flat-out run: what the sender did and what the receiver counted in the steady part."""

    sent: int
    send_seconds: float
    counted: int
    seconds: float
    cpu: dict[str, float]
    """CPU use of the receiver's threads in the window, in fractions of a CPU."""

    @property
    def rate(self) -> float:
        """Receiver's messages/s in the steady part."""
        return self.counted / self.seconds

    @property
    def send_rate(self) -> float:
        """Sender's datagrams/s."""
        return self.sent / self.send_seconds


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_share(
    pid: int, before: dict[int, float], after: dict[int, float], seconds: float
) -> dict[str, float]:
    """The main thread's and the other threads' CPU use over ``seconds``."""
    main_thread = (after.get(pid, 0.0) - before.get(pid, 0.0)) / seconds
    total = (sum(after.values()) - sum(before.values())) / seconds
    return {"main": main_thread, "others": total - main_thread}


def flat_out(conn: Connection, port: int, count: Callable[[], int], pid: int) -> Window:
    """Have the sender go flat out at ``port``; ``count()`` reads the receiver's counter."""
    conn.send(("flat", port, FLAT_SECONDS))
    go = time.perf_counter()
    time.sleep(0.5)
    start_cpu, (start, first) = thread_cpu(pid), timed(count)
    time.sleep(max(0.0, go + FLAT_SECONDS - 0.3 - time.perf_counter()))
    end, last = timed(count)
    end_cpu = thread_cpu(pid)
    sent, send_seconds = conn.recv()
    seconds = end - start
    return Window(
        sent, send_seconds, last - first, seconds, cpu_share(pid, start_cpu, end_cpu, seconds)
    )


def timed(count: Callable[[], int]) -> tuple[float, int]:
    """(mid-point time of the call, its value)."""
    before = time.perf_counter()
    value = count()
    return (before + time.perf_counter()) / 2, value


@contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """Run the body (e.g. starting a process, which inherits it) on ``cpu`` only."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def drops() -> int:
    """Kernel UDP receive-buffer drops so far (whole namespace, IPv4 + IPv6)."""
    errors = udp_errors()
    return errors.rcvbuf_errors if errors is not None else -1


def bare_rate(conn: Connection, cpu: int) -> Window:
    """The flat-out run against the counting-only uvloop receiver."""
    with pinned(cpu):
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.collector_bare"], stdout=subprocess.PIPE, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        _, port, control = proc.stdout.readline().split()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ask:
            ask.settimeout(5)
            ask.connect(("127.0.0.1", int(control)))

            def count() -> int:
                ask.send(b"?")
                return int(ask.recv(64))

            return flat_out(conn, int(port), count, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class CollectorConfig:
    """A benchmark collector's configuration file, ports and log."""

    path: Path
    port: int
    http_port: int
    log_path: Path
    log: IO[bytes]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def collector_config(directory: Path, fleet: Fleet) -> CollectorConfig:
    """Defaults but the addresses, the store in ``directory``, the fleet's hosts registered."""
    key = directory / "cluster.key"
    write_key_file(key, fleet.key)
    port, http_port = free_port(), free_port()
    lines = [
        'log_level = "INFO"',
        f'[listen]\naddress = "127.0.0.1"\nport = {port}',
        f'[keys]\ncluster_key_file = "{key}"',
        f'[store]\nurl = "sqlite:///{directory / "collector.db"}"',
        f'[http]\naddress = "127.0.0.1"\nport = {http_port}',
        *(
            f'[[hosts.register]]\nid = {h}\nname = "node{h:05d}.example.org"'
            for h in range(fleet.hosts)
        ),
    ]
    path = directory / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    log_path = directory / "collector.log"
    return CollectorConfig(path, port, http_port, log_path, log_path.open("wb"))


def wait_ready(proc: subprocess.Popen[bytes], health: HealthApi, log: Path) -> None:
    """Until the collector's API answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"one-collector exited: {log.read_text()[-2000:]}")
        try:
            health.get()
        except OSError:
            time.sleep(0.2)
            continue
        return
    raise RuntimeError("one-collector did not answer in 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the collector flushes its store), SIGKILL after 60 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HealthApi:
    """The collector's JSON health, summed."""

    def __init__(self, http_port: int) -> None:
        self.url = f"http://127.0.0.1:{http_port}/api/v1/health"

    def get(self) -> dict[str, Any]:
        """The health document."""
        with urllib.request.urlopen(self.url, timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
        return found

    def accepted(self) -> int:
        """Messages accepted and applied, all types."""
        return sum(self.get()["messages"].values())

    def rejected(self) -> dict[str, int]:
        """Rejections by reason (non-zero only)."""
        found: dict[str, int] = self.get()["rejected"]
        return found


def settle(read: Callable[[], int], target: int | None, timeout: float) -> int:
    """Poll ``read`` until it reaches ``target`` (or stops moving for 0.5 s); its last value."""
    deadline = time.monotonic() + timeout
    last, still_since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
        if target is not None and value >= target:
            return value
        if value != last:
            last, still_since = value, time.monotonic()
        elif target is None and time.monotonic() - still_since >= 0.5:
            break
    return last


def ingest_figures() -> None:
    """Print the native UDP ingest rate on one core against bare uvloop, and drops at 12k/s."""
    fleet = Fleet()
    cpus = sorted(os.sched_getaffinity(0))
    rx_cpu, tx_cpu = cpus[0], cpus[-1]
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {tx_cpu})  # this process (polls, sleeps) stays off the receiver's CPU
    context = multiprocessing.get_context("fork")
    conn, child = context.Pipe()
    sender = context.Process(target=sender_main, args=(child, fleet, tx_cpu), daemon=True)
    sender.start()
    try:
        with tempfile.TemporaryDirectory(prefix="onemon-bench-") as tmp:
            _, build_seconds, sizes, vms_in_part, warm_count = conn.recv()
            bare = bare_rate(conn, rx_cpu)
            config = collector_config(Path(tmp), fleet)
            with pinned(rx_cpu):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "onemon.collector.cli", "-c", str(config.path)],
                    stdout=config.log, stderr=subprocess.STDOUT, cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
            try:
                pid = proc.pid
                health = HealthApi(config.http_port)
                wait_ready(proc, health, config.log_path)
                conn.send(("warm", config.port, 10_000.0))
                conn.recv()
                warm_accepted = settle(health.accepted, warm_count, 30)
                warm_rejected = health.rejected()
                drops_before, accepted_before = drops(), health.accepted()
                full = flat_out(conn, config.port, health.accepted, pid)
                accepted_after = settle(health.accepted, None, 60)
                drops_flat = drops() - drops_before
                rejected_flat = health.rejected()
                store = health.get()["store"]
                settle(lambda: -health.get()["store"]["backlog_rows"], 0, 60)
                before_paced = (drops(), health.accepted(), health.rejected())
                conn.send(("paced", config.port, PACED_RATE))
                paced_sent, paced_seconds = conn.recv()
                paced_accepted = settle(health.accepted, before_paced[1] + paced_sent, 10)
                paced_accepted -= before_paced[1]
                time.sleep(0.2)
                paced_drops = drops() - before_paced[0]
                paced_rejected = subtract(health.rejected(), before_paced[2])
                affinity = sorted(os.sched_getaffinity(pid))
            finally:
                stop(proc)
                config.log.close()
    finally:
        conn.send(("stop", 0, 0))
        sender.join(10)
        os.sched_setaffinity(0, saved)
    mix = ", ".join(f"{w * 10}% {t.name} {sizes[t.name]:,.0f} B" for t, w in MIX)
    print(
        f"native UDP ingest on one core: {fleet.hosts:,} hosts ({fleet.hosts * vms_in_part:,} VMs), "
        f"mix {mix} ({vms_in_part} VMs), mean {sizes['all']:.0f} B;"
    )
    print(
        f"  receiver on CPU {rx_cpu} (collector threads {affinity}), one sender process on "
        f"CPU {tx_cpu}, {fleet.flat:,} datagrams pre-signed in {build_seconds:.1f} s; "
        f"flat out {FLAT_SECONDS:.0f} s, rate from 0.5 s in to 0.3 s before the end"
    )
    print(
        f"  warm-up: {warm_count:,} sent (SYSTEM_HOST etc. for every host), {warm_accepted:,} accepted, rejected {warm_rejected or 0}"
    )
    print(
        f"  sender:                    {full.send_rate:9,.0f} dgram/s (bare run: {bare.send_rate:,.0f})"
    )
    print(
        f"  bare uvloop, count only:   {bare.rate:9,.0f} msg/s   main thread {bare.cpu['main']:.0%} CPU"
    )
    print(
        f"  one-collector, accepted:   {full.rate:9,.0f} msg/s   goal >= 100,000  "
        f"event loop thread {full.cpu['main']:.0%} CPU, other threads (store, render) {full.cpu['others']:.0%}"
    )
    print(f"  ratio collector / bare:    {full.rate / bare.rate:9.1%}         goal >= 50 %")
    accepted = accepted_after - accepted_before
    print(
        f"  whole run: sent {full.sent:,}, accepted {accepted:,}, rejected {sum(rejected_flat.values())} "
        f"{rejected_flat or ''} (goal 0), kernel drops {drops_flat:,} (overload, expected); "
        f"store history shed {store['history_dropped']:,}, backlog {store['backlog_rows']:,} rows"
    )
    print(f"kernel drops at {PACED_RATE:,.0f} msg/s to one-collector (same mix, same pinning):")
    print(
        f"  sent {paced_sent:,} in {paced_seconds:.1f} s ({paced_sent / paced_seconds:,.0f}/s); "
        f"accepted {paced_accepted:,} (goal = sent); rejected {sum(paced_rejected.values())} (goal 0); "
        f"RcvbufErrors delta {paced_drops} (goal 0)"
    )


def subtract(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per-key increase."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def main(argv: list[str] | None = None) -> None:
    """Print every collector figure (or only one part)."""
    parser = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__)
    parser.add_argument("--only", choices=("ingest", "render"), help="run only this part")
    args = parser.parse_args(argv)
    if args.only in (None, "ingest"):
        ingest_figures()
    if args.only in (None, "render"):
        render_figures()


if __name__ == "__main__":
    main()
