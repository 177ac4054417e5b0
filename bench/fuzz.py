"""Socket fuzzer: mutated native and legacy datagrams and TCP streams into a running collector.

Run: ``python -m bench.fuzz`` (1,000,000 inputs against a one-collector it starts; ``--inputs``,
``--seed``). The same ``run`` is used by the CI test (``tests/e2e/test_security.py``) with
20,000 inputs.

Checks, from the outside only: the collector process stays alive and its API answers; it
counts every input exactly once by reason: Δ(accepted + rejected) + kernel drops of its socket
== what was sent (a TCP stream counts once per complete frame; see ``bench.fleet_fuzz``);
``internal_error`` (an exception a listener caught: a bug) stays 0 and its log holds no
traceback. Inputs are paced by the collector's own count (at most ``--window`` uncounted), so the
kernel drops nothing. On a crash the last inputs are written next to the log to replay.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.collector_ingest import HealthApi
from bench.fleet_collector import FleetCollector
from bench.fleet_fuzz import FuzzKeys, Generator, Input
from bench.fleet_hosts import CLUSTER_SECRET, FleetSpec
from bench.fleet_measure import Progress, socket_drops
from onemon.wire.keys import CLUSTER_KEY_ID, Key

HOSTS = 8
"""Registered hosts; the first half have keys of their own, the others use the cluster key."""


@dataclass
class FuzzReport:
    """What a fuzz run sent and what the collector counted."""

    inputs: int = 0
    datagrams: int = 0
    streams: int = 0
    expected: int = 0
    cut_streams: int = 0
    send_errors: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    drops: int = 0
    seconds: float = 0.0
    alive: bool = True
    api_ok: bool = True
    tracebacks: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    crash_file: str = ""

    @property
    def counted(self) -> int:
        """Inputs the collector accounted for (accepted, rejected, or dropped by the kernel)."""
        return self.accepted + sum(self.rejected.values()) + self.drops

    @property
    def internal_errors(self) -> int:
        """Exceptions a listener caught (each one a bug)."""
        return self.rejected.get("internal_error", 0)

    @property
    def ok(self) -> bool:
        """No crash, every input counted, no internal error."""
        return (
            self.alive
            and self.api_ok
            and self.counted == self.expected
            and not self.internal_errors
            and not self.tracebacks
        )


def fuzz_keys(spec: FleetSpec, keyed: set[int]) -> FuzzKeys:
    """The keys a fuzz collector built from ``spec`` knows."""
    return FuzzKeys(
        cluster=Key(CLUSTER_KEY_ID, CLUSTER_SECRET),
        per_host={spec.host_id(i): spec.key(i) for i in keyed},
        hosts=tuple(spec.host_id(i) for i in range(spec.hosts)),
    )


def fuzz_collector(directory: Path, cpu: int | None = None) -> tuple[FleetCollector, FuzzKeys]:
    """A collector for fuzzing: HOSTS registered, half with their own key (not started)."""
    spec = FleetSpec(hosts=HOSTS, vms=0, first_host=1, host_keys=True)
    keyed = set(range(HOSTS // 2))
    collector = FleetCollector(directory, spec, cpu=cpu, keyed=keyed,
                               extra={"store": {"max_backlog_rows": 50_000}})  # fmt: skip
    return collector, fuzz_keys(spec, keyed)


def _stream(port: int, data: bytes) -> None:
    """One TCP connection: send everything, close our side, read until the collector closes."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def _counted(health: HealthApi, port: int) -> tuple[int, dict[str, int], int]:
    doc = health.get()
    return sum(doc["messages"].values()), dict(doc["rejected"]), socket_drops(port)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def run(
    collector: FleetCollector,
    keys: FuzzKeys,
    inputs: int,
    seed: int = 1,
    *,
    tcp_share: float = 0.05,
    window: int = 2000,
    known_bugs: bool = True,
    progress: Progress | None = None,
) -> FuzzReport:
    """Feed ``inputs`` mutated inputs to a running collector and account for each."""
    report = FuzzReport()
    generator = Generator(keys, seed, tcp_share, known_bugs)
    health = collector.health
    accepted0, rejected0, drops0 = _counted(health, collector.port)
    recent: deque[Input] = deque(maxlen=200)
    started = time.monotonic()
    streams: list[Future[None]] = []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    udp.connect(("127.0.0.1", collector.port))
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fuzz-tcp")

    def counted_now() -> int:
        accepted, rejected, drops = _counted(health, collector.port)
        return (
            accepted - accepted0
            + sum(rejected.values()) - sum(rejected0.values())
            + drops - drops0
        )  # fmt: skip

    gap = 0
    """Inputs found never counted so far (a bug); pacing stops waiting for them."""
    try:
        for n in range(1, inputs + 1):
            item = generator.next()
            recent.append(item)
            report.inputs += 1
            report.labels[item.label] += 1
            if item.kind == "udp":
                try:
                    udp.send(item.data)
                except OSError:
                    report.send_errors += 1
                    continue
                report.datagrams += 1
            else:
                report.streams += 1
                report.cut_streams += item.cut
                streams.append(pool.submit(_stream, collector.port, item.data))
            report.expected += item.counts
            if n % 500 == 0:
                if not _alive(collector.pid):
                    report.alive = False
                    break
                streams = [f for f in streams if not f.done()]
                last, still = -1, time.monotonic()
                while (now := counted_now()) + gap < report.expected - window - 10 * len(streams):
                    if not _alive(collector.pid):
                        report.alive = False
                        break
                    if now != last:
                        last, still = now, time.monotonic()
                    elif time.monotonic() - still > 1.0:  # idle: the rest will not be counted
                        gap = report.expected - now  # (it shows in the report) so stop waiting
                        break
                    time.sleep(0.005)
                if progress is not None:
                    rate = n / (time.monotonic() - started)
                    progress.show(f"{n:,}/{inputs:,} inputs  {rate:,.0f}/s  counted "
                                  f"{counted_now():,}/{report.expected:,}")  # fmt: skip
        for future in streams:
            with contextlib.suppress(Exception):
                future.result(60)
        deadline = time.monotonic() + 60
        last, still = -1, time.monotonic()
        while report.alive and time.monotonic() < deadline:
            now = counted_now()
            if now >= report.expected:
                break
            if now != last:
                last, still = now, time.monotonic()
            elif time.monotonic() - still > 5:
                break
            time.sleep(0.05)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        udp.close()
        if progress is not None:
            progress.done()
    report.seconds = time.monotonic() - started
    report.alive = report.alive and _alive(collector.pid)
    try:
        accepted, rejected, drops = _counted(health, collector.port)
    except OSError:
        report.api_ok = False
    else:
        report.accepted = accepted - accepted0
        report.rejected = {
            k: v - rejected0.get(k, 0) for k, v in rejected.items() if v != rejected0.get(k, 0)
        }
        report.drops = drops - drops0
    report.tracebacks = collector.log_tail(10**9).count("Traceback")
    if not report.ok:
        crash = collector.directory / "fuzz-last-inputs.txt"
        crash.write_text("".join(f"{i.kind} {i.label} {i.counts} {i.data.hex()}\n" for i in recent))
        report.crash_file = str(crash)
    return report


def describe(report: FuzzReport) -> list[str]:
    """The report as printed lines."""
    verdict = "ok" if report.ok else "FAILED"
    rate = report.inputs / max(report.seconds, 1e-9)
    lines = [
        f"fuzz: {report.inputs:,} inputs in {report.seconds:.0f} s ({rate:,.0f}/s): "
        f"{report.datagrams:,} datagrams, {report.streams:,} TCP streams "
        f"({report.cut_streams:,} cut inside a frame), send errors {report.send_errors}",
        f"  collector alive {report.alive}, API answers {report.api_ok}, tracebacks in its log "
        f"{report.tracebacks}, internal_error {report.internal_errors} (goal 0)",
        f"  expected counts {report.expected:,} = accepted {report.accepted:,} + rejected "
        f"{sum(report.rejected.values()):,} + kernel drops {report.drops:,}: "
        f"{'every input counted' if report.counted == report.expected else f'{report.expected - report.counted:+,} NOT counted'}"  # noqa: E501
        f"  {verdict}",
        "  rejected by reason: "
        + ", ".join(
            f"{k} {v:,}" for k, v in sorted(report.rejected.items(), key=lambda kv: -kv[1])
        ),
        "  inputs by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.labels.items())),
    ]
    if report.crash_file:
        lines.append(f"  last inputs written to {report.crash_file}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Start a collector, fuzz it, print the figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--tcp-share", type=float, default=0.05)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--avoid-known-bugs", action="store_true",
                        help="do not generate the inputs of bugs already reported")  # fmt: skip
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="onemon-fuzz-"))
    cpus = sorted(os.sched_getaffinity(0))
    collector, keys = fuzz_collector(work / "collector", cpus[0] if len(cpus) > 1 else None)
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[-1]})
    collector.start()
    report: FuzzReport | None = None
    try:
        collector.wait_ready()
        print(f"fuzzing one-collector (pid {collector.pid}) with seed {args.seed}", flush=True)
        report = run(collector, keys, args.inputs, args.seed, tcp_share=args.tcp_share,
                     window=args.window, known_bugs=not args.avoid_known_bugs,
                     progress=Progress())  # fmt: skip
    finally:
        collector.stop()
        if args.keep or report is None or not report.ok:
            print(f"run directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(describe(report)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
