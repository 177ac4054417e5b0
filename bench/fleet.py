"""Fleet simulator: N hosts and M VMs report to a real one-collector; what it takes, measured.

Run: ``python -m bench.fleet --preset one`` (2,500 hosts / 10,000 VMs, OpenNebula's guidance
for one instance) or ``--preset large`` (25,000 / 250,000); ``--hosts/--vms`` for any size,
``--duration`` to shorten, ``--scale 10`` for ten times OpenNebula's load, ``--flat`` to send
flat out instead of on the periods.

Every host has its own key (``h<id>``, a per-host key file), boot id and per-type seq, and
reports what the built-in probes send (SYSTEM_HOST, MONITOR_HOST with the agent's figures,
MONITOR_VM split into datagrams, beacons) on OpenNebula's default periods (divided by
``--scale``), in a shuffled round-robin as uniformly spread agents would; a share of the hosts
(``--legacy-share``) speaks OpenNebula's legacy lines instead. VM states change at ``--churn``
per second (STATE_VM deltas over TCP, acknowledged once applied and persisted) and every host
sends its full state every sync period. Phases: warm-up (every host reports once, its VMs are
created), an idle baseline (no load: CPU, /metrics scrape and API times to compare with), then
the load.

Reported: sent = accepted + rejected + kernel drops (from the collector's ``/api/v1/health``
and ``/proc/net/udp``); send→visible latency for MONITOR_HOST markers and VM state changes
(polled through the JSON API) and send→ack for every state change; the collector's CPU (of one
core; it is pinned) and RSS; ``/metrics`` scrape times while ingesting; the store's backlog; a
sample of churned VMs checked against the simulator's truth.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench.collector_ingest import rx_queue
from bench.fleet_collector import FleetCollector
from bench.fleet_hosts import UDP_KINDS, FleetSpec
from bench.fleet_measure import (
    MIB,
    Api,
    LatencyPoller,
    ProcSampler,
    Progress,
    Scraper,
    api_round_trip,
    ms,
    namespace_drops,
    percentile,
    rendered_at,
    socket_drops,
)
from bench.fleet_sender import TCP_FRAMES, UDP_SENT, FleetSender
from onemon.collector.app import RENDER_SHARE

PRESETS = {"one": (2_500, 10_000), "large": (25_000, 250_000)}
LATENCY_GOAL = 1.0
RENDER_WAIT = 60.0
"""Longest wait for /metrics to include the warmed-up state before the idle baseline."""
SCRAPE_GOAL = 0.2


@dataclass
class Totals:
    """The collector's counters at one moment."""

    accepted: int
    rejected: dict[str, int]
    by_key: dict[str, int]
    drops: int
    ns_drops: int
    health: dict[str, Any]

    @classmethod
    def read(cls, collector: FleetCollector) -> Totals:
        """Read them now."""
        health = collector.health.get()
        messages: dict[str, int] = health["messages"]
        return cls(
            sum(messages.values()),
            dict(health["rejected"]),
            dict(messages),
            socket_drops(collector.port),
            namespace_drops(),
            health,
        )

    def minus(self, before: Totals) -> tuple[int, dict[str, int], int, int]:
        """(accepted, rejected by reason, socket drops, namespace drops) since ``before``."""
        rejected = {
            k: v - before.rejected.get(k, 0)
            for k, v in self.rejected.items()
            if v != before.rejected.get(k, 0)
        }
        return (
            self.accepted - before.accepted,
            rejected,
            self.drops - before.drops,
            self.ns_drops - before.ns_drops,
        )


@dataclass
class Run:
    """Everything one run gathered, for the report."""

    spec: FleetSpec
    flat: bool
    duration: float
    idle_rss: int = 0
    warm: dict[str, Any] = field(default_factory=dict)
    warm_accounted: tuple[int, dict[str, int], int, int] = (0, {}, 0, 0)
    warm_seconds: float = 0.0
    base_cpu: float = math.nan
    base_rss: int = 0
    base_scrapes: list[float] = field(default_factory=list)
    base_scrape_size: int = 0
    render_wait: float = 0.0
    rendered: bool = False
    render_seconds: float = 0.0
    base_api: list[float] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    accounted: tuple[int, dict[str, int], int, int] = (0, {}, 0, 0)
    drained_seconds: float = 0.0
    cpu: tuple[float, float] = (math.nan, math.nan)
    rss_peak: int = 0
    rss_end: int = 0
    threads: int = 0
    fds: int = 0
    scraper: Scraper | None = None
    latency: LatencyPoller | None = None
    backlog_peak: int = 0
    lag_peak: float = 0.0
    store_end: dict[str, Any] = field(default_factory=dict)
    truth_checked: int = 0
    truth_wrong: list[tuple[int, str, str]] = field(default_factory=list)
    build_seconds: float = 0.0
    markers: int = 0
    hosts_states: dict[str, int] = field(default_factory=dict)
    aborted: str = ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), help="one: 2,500/10,000; large: 25,000/250,000"
    )
    parser.add_argument("--hosts", type=int, help="hosts (default 2,500)")
    parser.add_argument("--vms", type=int, help="VMs (default 4 per host)")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (180)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="load multiplier: periods are divided by it (1)")  # fmt: skip
    parser.add_argument("--churn", type=float, help="VM state changes/s (default VMs/1,000)")
    parser.add_argument("--legacy-share", type=float, default=0.1,
                        help="share of hosts on the legacy wire (0.1)")  # fmt: skip
    parser.add_argument("--cluster-key", action="store_true",
                        help="hosts share the cluster key (default: one each)")  # fmt: skip
    parser.add_argument("--flat", action="store_true", help="UDP flat out instead of paced")
    parser.add_argument("--tcp-connections", type=int, default=16)
    parser.add_argument("--marker-rate", type=float, default=10.0,
                        help="latency samples/s per kind (10)")  # fmt: skip
    parser.add_argument("--warm-rate", type=float, default=2000.0,
                        help="warm-up datagrams/s (2,000)")  # fmt: skip
    parser.add_argument("--idle", type=float, default=10.0, help="idle baseline seconds (10)")
    parser.add_argument("--scrape-interval", type=float, default=2.0)
    parser.add_argument("--store-url", help="store URL (default: SQLite in the run directory)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin collector/sender")
    parser.add_argument("--max-rss-gb", type=float, default=12.0,
                        help="stop the run if the collector's RSS passes this (12)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args(argv)
    hosts, vms = PRESETS[args.preset] if args.preset else (2_500, None)
    args.hosts = args.hosts or hosts
    args.vms = args.vms if args.vms is not None else (vms if vms is not None else 4 * args.hosts)
    if args.churn is None:
        args.churn = args.vms / 1000 * args.scale
    return args


def wait_drained(collector: FleetCollector, sent: int, timeout: float) -> float:
    """Until everything sent is counted (or nothing moves for 3 s with an empty socket queue)."""
    started = time.monotonic()
    last, still = -1, started
    while time.monotonic() < started + timeout:
        totals = Totals.read(collector)
        counted = totals.accepted + sum(totals.rejected.values()) + totals.drops
        if counted >= sent and rx_queue(collector.port) == 0:
            break
        if counted != last:
            last, still = counted, time.monotonic()
        elif time.monotonic() - still > 3 and rx_queue(collector.port) == 0:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def progress_line(run: Run, sender: FleetSender, collector: FleetCollector,
                  sampler: ProcSampler, elapsed: float, before: Totals) -> str:  # fmt: skip
    """The live line."""
    health = collector.health.get()
    accepted = sum(health["messages"].values()) - before.accepted
    rejected = sum(health["rejected"].values()) - sum(before.rejected.values())
    sent = sender.counter(UDP_SENT) + sender.counter(TCP_FRAMES)
    sample = sampler.latest()
    cpu, _ = sampler.cpu_share(time.monotonic() - 5, time.monotonic())
    rss = f"{sample.rss / MIB:,.0f} MB" if sample else "?"
    run.backlog_peak = max(run.backlog_peak, int(health["store"]["backlog_rows"]))
    run.lag_peak = max(run.lag_peak, float(health["loop_lag_seconds"]))
    return (
        f"{elapsed:5.0f}/{run.duration:.0f} s  sent {sent:,}  accepted {accepted:,}  "
        f"rejected {rejected:,}  drops {socket_drops(collector.port) - before.drops:,}  "
        f"CPU {cpu:.0%}  RSS {rss}  backlog {health['store']['backlog_rows']:,}"
    )


def execute(args: argparse.Namespace, work: Path) -> Run:
    """Start everything, run the phases, gather the figures."""
    spec = FleetSpec(
        hosts=args.hosts, vms=args.vms, legacy_share=args.legacy_share, scale=args.scale,
        churn=args.churn, host_keys=not args.cluster_key, tcp_connections=args.tcp_connections,
        marker_rate=args.marker_rate,
    )  # fmt: skip
    run = Run(spec, args.flat, args.duration)
    cpus = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cpus) > 1
    rx_cpu, tx_cpu = (cpus[0], cpus[-1]) if pin else (None, None)
    progress = Progress()
    say(f"building the collector's configuration and {spec.hosts:,} key files…")
    collector = FleetCollector(work / "collector", spec, cpu=rx_cpu, store_url=args.store_url,
                               extra={"listen": {"max_connections": 16384}})  # fmt: skip
    collector.start()
    sender: FleetSender | None = None
    sampler: ProcSampler | None = None
    try:
        collector.wait_ready(300)
        say("building the fleet's messages in the sender process…")
        sender = FleetSender(spec, collector.port, cpu=tx_cpu)  # forked before any thread starts
        sampler = ProcSampler(collector.pid, 1.0).start()
        time.sleep(1.5)
        run.idle_rss = sampler.samples[-1].rss if sampler.samples else 0
        run.build_seconds, run.markers = sender.build_seconds, sender.marker_hosts
        say(f"  built in {run.build_seconds:.1f} s; warm-up at {args.warm_rate:,.0f} datagrams/s…")
        before = Totals.read(collector)
        started = time.monotonic()
        run.warm = sender.call("warm", args.warm_rate)
        sent = run.warm["datagrams"] + run.warm["frames"]
        wait_drained(collector, sent, 300)
        run.warm_seconds = time.monotonic() - started
        run.warm_accounted = Totals.read(collector).minus(before)
        # idle baseline: state loaded and rendered, nothing arriving
        warm_end = time.time()
        deadline = time.monotonic() + RENDER_WAIT  # hosts silent for 180 s go to ERROR
        while rendered_at(collector.http_port) < warm_end and time.monotonic() < deadline:
            time.sleep(1.0)
        run.render_wait = time.time() - warm_end
        run.rendered = rendered_at(collector.http_port) >= warm_end
        say(f"  warm-up done in {run.warm_seconds:.0f} s, /metrics "
            f"{'rendered' if run.rendered else 'still not rendered'} {run.render_wait:.0f} s "
            f"later; idle baseline for {args.idle:.0f} s…")  # fmt: skip
        idle_start = time.monotonic()
        base_scraper = Scraper(collector.http_port, interval=1.0).start()
        time.sleep(args.idle)
        base_scraper.stop()
        run.base_scrapes = base_scraper.durations
        run.base_scrape_size = base_scraper.sizes[-1] if base_scraper.sizes else 0
        run.base_api = api_round_trip(collector.http_port, f"/api/v1/vms/{spec.vm_range(0).start}")
        run.base_cpu = sampler.cpu_share(idle_start, time.monotonic())[0]
        run.base_rss = sampler.samples[-1].rss if sampler.samples else 0
        # load
        say(f"  load: {args.duration:.0f} s {'flat out' if args.flat else 'paced'}…")
        before = Totals.read(collector)
        scraper = Scraper(collector.http_port, interval=args.scrape_interval).start()
        poller = LatencyPoller(collector.http_port, sender.events).start()
        run.scraper, run.latency = scraper, poller
        load_start = time.monotonic()
        sender.begin("run", args.duration, args.flat)
        while not sender.ready():
            time.sleep(1.0)
            elapsed = time.monotonic() - load_start
            progress.show(progress_line(run, sender, collector, sampler, elapsed, before))
            latest = sampler.latest()
            if latest is not None and latest.rss > args.max_rss_gb * 1024 * MIB:
                run.aborted = f"collector RSS passed {args.max_rss_gb:g} GB"
                sender.stop_flag.set()
            if not collector.alive():
                run.aborted = "the collector died"
                sender.stop_flag.set()
        progress.done()
        run.load = sender.result()
        load_end = time.monotonic()
        sent = run.load["udp_sent"] + run.load["tcp_frames"] + run.load["legacy_tcp"]
        run.drained_seconds = wait_drained(collector, before.accepted + sent, 300)
        scraper.stop()
        poller.stop()
        after = Totals.read(collector)
        run.accounted = after.minus(before)
        run.store_end = after.health["store"]
        run.render_seconds = float(after.health.get("render_seconds", 0.0))
        run.cpu = sampler.cpu_share(load_start, load_end)
        run.rss_peak = sampler.peak_rss(load_start, time.monotonic())
        last = sampler.latest()
        if last is not None:
            run.rss_end, run.threads, run.fds = last.rss, last.threads, last.fds
        check_truth(run, sender, collector)
        states: dict[str, int] = {}
        for host in collector.get("/api/v1/hosts", timeout=300):
            states[host["state"]] = states.get(host["state"], 0) + 1
        run.hosts_states = states
    finally:
        progress.done()
        if sampler is not None:
            sampler.stop()
        if sender is not None:
            sender.close()
        collector.stop()
    return run


def check_truth(run: Run, sender: FleetSender, collector: FleetCollector) -> None:
    """Compare a sample of churned VMs with the simulator's truth."""
    api = Api(collector.http_port)
    try:
        for vm, state in sender.call("truth", 500):
            found = api.json(f"/api/v1/vms/{vm}")
            run.truth_checked += 1
            report = "missing" if found is None else str(found["report"])
            if report != state:
                run.truth_wrong.append((vm, state, report))
    finally:
        api.close()


def say(text: str) -> None:
    """A status line (flushed)."""
    print(text, flush=True)


def verdict(ok: bool) -> str:
    """Goal met or not."""
    return "ok" if ok else "MISSED"


def report(run: Run) -> None:
    """Print the figures, each against its baseline or goal."""
    spec, load = run.spec, run.load
    legacy = sum(1 for i in range(spec.hosts) if spec.is_legacy(i))
    rates = spec.offered()
    udp_rate = sum(v for k, v in rates.items() if k in UDP_KINDS)
    keys = "cluster key" if not spec.host_keys else "one key per host"
    print(
        f"\nfleet: {spec.hosts:,} hosts ({spec.hosts - legacy:,} native with {keys}, {legacy:,} "
        f"legacy), {spec.vms:,} VMs; periods = OpenNebula's / {spec.scale:g}; churn "
        f"{spec.churn:g} VM state changes/s; {'flat out' if run.flat else 'paced'} "
        f"{load.get('seconds', 0):.0f} s"
    )
    if run.aborted:
        print(f"  RUN ABORTED: {run.aborted}")
    kinds = ", ".join(f"{k} {v:,.1f}" for k, v in rates.items() if k in UDP_KINDS)
    print(
        f"  offered: {udp_rate:,.0f} reports/s ({kinds}; SYSTEM_HOST over TCP as the agent), "
        f"{rates['sync_state_vm'] + spec.churn:,.1f} STATE_VM/s over TCP "
        f"(syncs {rates['sync_state_vm']:,.1f} + changes {spec.churn:g}); OpenNebula at "
        f"2,500/10,000 derives ~1,200 msg/s worst case (anchors §B.1)"
    )
    w_acc, w_rej, w_drops, _ = run.warm_accounted
    warm_sent = run.warm.get("datagrams", 0) + run.warm.get("frames", 0)
    print(
        f"  warm-up: {run.warm.get('datagrams', 0):,} datagrams + {run.warm.get('frames', 0):,} "
        f"full-state frames in {run.warm_seconds:.0f} s (fleet built in {run.build_seconds:.1f} s):"
        " "
        f"accepted {w_acc:,}, rejected {sum(w_rej.values()):,}{reasons(w_rej)}, kernel drops "
        f"{w_drops:,} {accounted(warm_sent - w_acc - sum(w_rej.values()) - w_drops)}"
    )
    acc, rej, sock_drops, ns_drops = run.accounted
    sent = load.get("udp_sent", 0) + load.get("tcp_frames", 0) + load.get("legacy_tcp", 0)
    seconds = max(load.get("seconds", 1), 1e-9)
    lost = sent - acc - sum(rej.values()) - sock_drops
    print(
        f"  sent {sent:,} ({sent / seconds:,.0f}/s: {load.get('udp_sent', 0):,} datagrams, "
        f"{load.get('tcp_frames', 0):,} native TCP frames incl. {load.get('resent', 0)} resent, "
        f"{load.get('legacy_tcp', 0):,} legacy TCP) = accepted {acc:,} + rejected "
        f"{sum(rej.values()):,}{reasons(rej)} + kernel drops {sock_drops:,} "
        f"{accounted(lost)}"
    )
    loss = sum(rej.values()) + sock_drops + max(lost, 0)
    print(
        f"    loss (rejected + drops + unaccounted) {loss:,}"
        f" (goal 0) {verdict(not rej and sock_drops == 0 and lost <= 0)}; namespace "
        f"RcvbufErrors +{ns_drops:,} (all processes); send errors {load.get('send_errors', 0)}; "
        f"drained {run.drained_seconds:.1f} s after the last send"
    )
    acks = load.get("acks", {})
    print(
        f"    TCP acks: {sum(acks.values()):,} {acks} for {load.get('churn', 0):,} changes, "
        f"{load.get('syncs', 0):,} syncs and the SYSTEM_HOST reports; unacknowledged at the end "
        f"{load.get('unacked', 0)}"
    )
    latency = run.latency
    api_p50 = percentile(run.base_api, 50)
    if latency is not None:
        for kind, label in (("host", "MONITOR_HOST marker"), ("vm", "VM state change")):
            values = latency.results[kind]
            p99 = percentile(values, 99)
            print(
                f"  send→visible in the API, {label}: p50 {ms(percentile(values, 50))} p99 "
                f"{ms(p99)} max {ms(max(values, default=math.nan))} (n={len(values):,}, not seen "
                f"in 10 s: {latency.missed[kind]}, skipped with the poller full: "
                f"{latency.skipped[kind]}); goal p99 ≤ 1 s "
                f"{verdict(bool(values) and p99 <= LATENCY_GOAL and not latency.missed[kind])}"
            )
        print(f"    baseline: one API GET on an idle collector p50 {ms(api_p50)} (the poll floor)")
    churn = load.get("ack_latency", {}).get("churn", [])
    syncs = load.get("ack_latency", {}).get("sync", [])
    print(
        f"  send→ack (applied and persisted), VM state change: p50 {ms(percentile(churn, 50))} "
        f"p99 {ms(percentile(churn, 99))} (n={len(churn):,}); full sync: p50 "
        f"{ms(percentile(syncs, 50))} p99 {ms(percentile(syncs, 99))} (n={len(syncs):,})"
    )
    cpu, main = run.cpu
    print(
        f"  collector CPU under load: {cpu:.1%} of one core (event loop thread {main:.1%}, store "
        f"writer + render threads {cpu - main:.1%}); idle baseline {run.base_cpu:.1%}"
    )
    print(
        f"  collector RSS: peak {run.rss_peak / MIB:,.0f} MB, end {run.rss_end / MIB:,.0f} MB; "
        f"after warm-up (idle) {run.base_rss / MIB:,.0f} MB; empty at start "
        f"{run.idle_rss / MIB:,.0f} MB; threads {run.threads}, fds {run.fds}"
    )
    scraper = run.scraper
    if scraper is not None:
        p99 = percentile(scraper.durations, 99)
        size = (scraper.sizes[-1] / MIB) if scraper.sizes else math.nan
        print(
            f"  /metrics scrape while ingesting (gzip): p50 {ms(percentile(scraper.durations, 50))}"
            f" p99 {ms(p99)} (n={len(scraper.durations)}, {size:.1f} MB, errors {scraper.errors})"
            f"; idle baseline p50 {ms(percentile(run.base_scrapes, 50))} p99 "
            f"{ms(percentile(run.base_scrapes, 99))} ({run.base_scrape_size / MIB:.1f} MB"
            f"{'' if run.rendered else ', the warm state not yet rendered'}); goal p99 < 200 ms "
            f"{verdict(p99 < SCRAPE_GOAL)}"
        )
        print(
            f"    one render of the state takes {run.render_seconds:.2f} s; the next may start "
            f"{RENDER_SHARE}× that later, so /metrics lags the state by up to "
            f"~{max(2.0, RENDER_SHARE * run.render_seconds) + run.render_seconds:.0f} s"
        )
    store = run.store_end
    print(
        f"  store: backlog peak {run.backlog_peak:,} rows (sampled each second), at the end "
        f"{store.get('backlog_rows', '?'):,}; history shed {store.get('history_dropped', '?'):,}; "
        f"event loop lag peak {run.lag_peak * 1e3:,.0f} ms"
    )
    wrong = run.truth_wrong
    print(
        f"  VM states: {run.truth_checked - len(wrong)}/{run.truth_checked} sampled churned VMs "
        f"match the simulator's truth {verdict(not wrong)}"
        + (f"; e.g. {wrong[:3]} (vm, truth, collector)" if wrong else "")
    )
    print(f"  hosts by state at the end: {run.hosts_states}")


def reasons(counts: dict[str, int]) -> str:
    """`` (reason n, …)`` when there are any."""
    return " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) + ")" if counts else ""


def accounted(missing: int) -> str:
    """Whether every input is counted somewhere."""
    return "(all accounted for)" if missing == 0 else f"({missing:+,} unaccounted)"


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the simulator once and print its figures."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="onemon-fleet-"))
    try:
        run = execute(args, work)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"run directory kept: {work}")
    report(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
