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
import random
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bench.collector_ingest import ingest_figures
from onemon.collector.metrics import BY_NAME, Kind, Renderer
from onemon.collector.model import Host, HostCapacity, HostState, Vm, VmReport

HOSTS = 2_500
VMS_PER_HOST = 4


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
