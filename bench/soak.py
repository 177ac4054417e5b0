"""Soak: ten times OpenNebula's load for ten minutes; do the collector and an agent stay flat?

Run: ``python -m bench.soak`` (10 minutes; ``--minutes 2`` to shorten). The long outage run:
``python -m bench.soak --collector-down 10`` (an agent spooling while its collector is down for
10 minutes, then everything it kept arriving in order, every drop counted).

The load: a fleet of 2,500 hosts / 10,000 VMs (``bench.fleet``, 10 % of them on the legacy wire)
with every period divided by ten (about 1,900 UDP reports/s, 140 full state syncs/s and 100 VM
state changes/s over acknowledged TCP), plus one real one-agent (a fake LXC tree whose
containers keep changing state) reporting to the same collector on short periods. Every
``--sample`` seconds the collector's and the agent's RSS, threads and open fds are read from
/proc. After the warm-up (a fifth of the run, at least one minute, at most two) the RSS growth
is the median of the last samples against the median of the first ones (goal < 1 %), and
threads and fds must not grow at all.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from bench.fleet import Totals, reasons, wait_drained
from bench.fleet_agent import FakeLxc, collector_outage
from bench.fleet_collector import FleetCollector
from bench.fleet_hosts import FleetSpec
from bench.fleet_measure import MIB, ProcSample, Progress, read_proc
from bench.fleet_sender import TCP_FRAMES, UDP_SENT, FleetSender
from tests.e2e import stack

AGENT_HOST = 900_000
AGENT_VMS = tuple(range(990_001, 990_009))


@dataclass
class Series:
    """Samples of one process."""

    name: str
    pid: int
    samples: list[ProcSample] = field(default_factory=list)

    def read(self) -> None:
        """Take one sample (ignored if the process is gone)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.samples.append(read_proc(self.pid))

    def describe(self, warm_until: float, window: float) -> tuple[str, bool]:
        """One line, and whether it met the goals."""
        steady = [s for s in self.samples if s.at >= warm_until]
        if len(steady) < 4:
            return f"  {self.name}: too few samples after the warm-up", False
        first = [s for s in steady if s.at < steady[0].at + window] or steady[:2]
        last = [s for s in steady if s.at > steady[-1].at - window] or steady[-2:]
        start = statistics.median(s.rss for s in first)
        end = statistics.median(s.rss for s in last)
        growth = (end - start) / start
        envelope = (max(s.rss for s in last) - max(s.rss for s in first)) / max(
            s.rss for s in first
        )
        peak = max(s.rss for s in steady)
        threads = (statistics.median(s.threads for s in first), max(s.threads for s in steady),
                   statistics.median(s.threads for s in last))  # fmt: skip
        fds = (statistics.median(s.fds for s in first), max(s.fds for s in steady),
               statistics.median(s.fds for s in last))  # fmt: skip
        ok_rss = growth < 0.01 and envelope < 0.01
        ok_counts = threads[2] <= threads[0] and fds[2] <= fds[0]
        verdict = "ok" if ok_rss and ok_counts else "MISSED"
        span = steady[-1].at - steady[0].at
        marks = [_nearest(steady, steady[0].at + t * span) for t in (0, 0.25, 0.5, 0.75, 1)]
        curve = " → ".join(f"{m.rss / MIB:,.1f}" for m in marks)
        return (
            f"  {self.name}: RSS {start / MIB:,.1f} → {end / MIB:,.1f} MB ({growth:+.2%}; highest "
            f"of each window {envelope:+.2%}; goal < 1 %; peak {peak / MIB:,.1f} MB); threads "
            f"{threads[0]:g} → {threads[2]:g} (max "
            f"{threads[1]}), fds {fds[0]:g} → {fds[2]:g} (max {fds[1]}), goal no growth  {verdict}"
            f"\n    RSS at 0/25/50/75/100 % of the steady part: {curve} MB",
            ok_rss and ok_counts,
        )


def _nearest(samples: list[ProcSample], at: float) -> ProcSample:
    """The sample taken closest to ``at``."""
    return min(samples, key=lambda sample: abs(sample.at - at))


def agent_sent(collector: FleetCollector) -> int:
    """The real agent's MESSAGES_SENT as it last reported it."""
    host = collector.get(f"/api/v1/hosts/{AGENT_HOST}")
    return int(host.get("agent", {}).get("MESSAGES_SENT", 0))


def soak(args: argparse.Namespace, work: Path) -> bool:
    """The load soak; prints its figures and returns whether every goal was met."""
    spec = FleetSpec(hosts=args.hosts, vms=args.vms, legacy_share=0.1, scale=args.scale,
                     churn=args.vms / 1000 * args.scale, marker_rate=0)  # fmt: skip
    cpus = sorted(os.sched_getaffinity(0))
    rx_cpu, tx_cpu = (cpus[0], cpus[-1]) if len(cpus) > 1 else (None, None)
    collector = FleetCollector(work / "collector", spec, cpu=rx_cpu,
                               more_hosts=((AGENT_HOST, "soak-agent"),))  # fmt: skip
    lxc = FakeLxc(work / "cgroup")
    for vm in AGENT_VMS:
        lxc.start(vm)
    (work / "probes").mkdir()
    agent = stack.agent(
        work / "agent", collector.cluster_key, AGENT_HOST, [f"127.0.0.1:{collector.port}"],
        hypervisor="lxc",
        periods={"beacon_host": 3, "monitor_host": 3, "system_host": 60, "state_vm": 1,
                 "exec_vm": 5, "monitor_vm": 3, "sync_state_vm": 18},
        extra={"probes": {"tree": str(work / "probes"), "cgroupfs": str(lxc.root)}},
    )  # fmt: skip
    progress = Progress()
    seconds = args.minutes * 60
    warm_up = max(60.0, min(120.0, seconds / 5))  # at least the agent's system_host period
    window = max(10.0, min(60.0, (seconds - warm_up) / 5))
    print(
        f"soak: {spec.hosts:,} hosts / {spec.vms:,} VMs at {spec.scale:g}× OpenNebula's rate "
        f"({sum(v for k, v in spec.offered().items() if k not in ('churn', 'sync_state_vm')):,.0f}"
        f" UDP reports/s, {spec.offered()['sync_state_vm']:,.0f} syncs/s + {spec.churn:g} state "
        f"changes/s over TCP) plus one real agent, {args.minutes:g} min; warm-up {warm_up:.0f} s",
        flush=True,
    )
    collector.start()
    sender: FleetSender | None = None
    try:
        collector.wait_ready(300)
        agent.start()
        assert agent.proc is not None
        sender = FleetSender(spec, collector.port, cpu=tx_cpu)
        sender.call("warm", 2000.0)
        wait_drained(collector, sender.counter(UDP_SENT) + sender.counter(TCP_FRAMES), 300)
        series = [Series("one-collector", collector.pid), Series("one-agent", agent.proc.pid)]
        before = Totals.read(collector)
        agent_before = agent_sent(collector)
        started = time.monotonic()
        sender.begin("run", seconds, False)
        rng_step = 0
        backlog: list[tuple[float, int, int]] = []
        while not sender.ready():
            for item in series:
                item.read()
            store = collector.health.get()["store"]
            backlog.append((time.monotonic(), store["backlog_rows"], store["history_dropped"]))
            lxc.tick()
            vm = AGENT_VMS[rng_step % len(AGENT_VMS)]
            (lxc.freeze if rng_step % 2 == 0 else lxc.thaw)(vm)
            rng_step += 1
            elapsed = time.monotonic() - started
            last = series[0].samples[-1] if series[0].samples else None
            if last is not None:
                progress.show(
                    f"{elapsed:4.0f}/{seconds:.0f} s  collector RSS {last.rss / MIB:,.0f} MB, "
                    f"{last.threads} threads, {last.fds} fds  agent RSS "
                    f"{series[1].samples[-1].rss / MIB:,.1f} MB"
                )
            if not collector.alive() or agent.proc.poll() is not None:
                sender.stop_flag.set()
            time.sleep(args.sample)
        progress.done()
        result = sender.result()
        sent = result["udp_sent"] + result["tcp_frames"] + result["legacy_tcp"]
        wait_drained(collector, before.accepted + sent, 300)
        accepted, rejected, drops, _ = Totals.read(collector).minus(before)
        from_agent = agent_sent(collector) - agent_before
        alive = collector.alive() and agent.proc.poll() is None
    finally:
        progress.done()
        if sender is not None:
            sender.close()
        agent.kill()
        collector.stop()
    lost = sent + from_agent - accepted - sum(rejected.values()) - drops
    print(
        f"  fleet sent {sent:,} ({sent / max(result['seconds'], 1):,.0f}/s) + the agent "
        f"~{from_agent:,} (its own count, reported each MONITOR_HOST) = accepted {accepted:,} + "
        f"rejected {sum(rejected.values()):,}{reasons(rejected)} + kernel drops {drops:,} "
        f"({lost:+,}); STATE_VM acks {result['acks']}; both processes alive at the end: {alive}"
    )
    ok = alive
    for item in series:
        line, met = item.describe(started + warm_up, window)
        print(line)
        ok = ok and met
    print(f"  (medians of the first and last {window:.0f} s after the warm-up are compared)")
    steady = [b for b in backlog if b[0] >= started + warm_up]
    if steady:
        print(
            f"  store backlog after the warm-up: {steady[0][1]:,} → {steady[-1][1]:,} rows (max "
            f"{max(b[1] for b in steady):,}); history shed during the run {backlog[-1][2]:,} rows"
        )
    return ok


def outage(minutes: float, work: Path) -> bool:
    """The long collector-down run."""
    print(f"collector down for {minutes:g} min while an agent keeps producing state changes",
          flush=True)  # fmt: skip
    figures = collector_outage(work, minutes * 60, state_period=1.0, spool_cap=100, say=print)
    print("\n".join(figures.describe()))
    return not figures.check()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the soak (or the outage run) once."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (10)")
    parser.add_argument("--scale", type=float, default=10.0, help="load multiplier (10)")
    parser.add_argument("--hosts", type=int, default=2500)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument("--collector-down", type=float, metavar="MINUTES",
                        help="instead: the collector-down run, this long")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="onemon-soak-"))
    try:
        ok = outage(args.collector_down, work) if args.collector_down else soak(args, work)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"run directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
