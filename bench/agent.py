"""Agent benchmarks on real domains: VM-monitor cycle time against peers, and agent footprint.

Run as root: ``python -m bench.agent [--fillers 30] [--duration 300]``. It takes the machine-wide
e2e lock, starts libvirtd and N BIOS-only filler domains ``one-<id>`` (removed at the end, also
on Ctrl-C), then prints:

1. our built-in VM-monitor cycle (``LibvirtClient.domains()`` + ``VmSampler.sample()``, what
   ``monitor_vm`` runs) against OpenNebula's published 0.11 s/VM, a naive per-domain agent,
   ``virsh domstats`` and Debian's ``prometheus-libvirt-exporter`` scraping the same domains;
   next to it the client's variants (stats chunks called in parallel: 1, 2, 4, 8; vCPU group
   on/off) and the baseline of one ``getAllDomainStats`` call, timed in interleaved rounds;
2. RSS, PSS and CPU of a real ``one-agent`` (default periods) sending to a real
   ``one-collector`` for ``--duration`` seconds, with what its RSS is made of.

Fillers have no disk and no NIC: the per-domain peer makes no blockStats/interfaceStats calls
on them, and bulk stats have no block/net groups to fill, so both sides do the same work.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import agent_peers as peers
from bench import agent_proc as proc
from bench.agent_peers import Timing
from onemon.agent.config import Periods, ProbeConfig, SendConfig
from onemon.agent.probes.libvirt_client import (
    CHUNK_DOMAINS,
    LIST_ACTIVE,
    MAX_CHUNKS,
    STATS_ALL,
    STATS_BALLOON,
    STATS_BLOCK,
    STATS_CPU_TOTAL,
    STATS_INTERFACE,
    STATS_NOWAIT,
    STATS_STATE,
    STATS_VCPU,
    chunks_for,
)
from onemon.agent.probes.libvirt_vms import Domain, LibvirtClient, VmSampler
from onemon.collector.config import HostsConfig, HttpConfig
from tests.e2e.infra import guest, libvirtd, machine_lock

# tests.e2e.stack is loaded by name: mypy (strict, files onemon+bench) would otherwise follow it.
stack: Any = importlib.import_module("tests.e2e.stack")
REPO = Path(__file__).resolve().parents[1]
URI = libvirtd.URI
ONE_SECONDS_PER_VM = 0.11
"""OpenNebula's KVM probe: 52 s for 500 VMs (anchors §B.1)."""
GOAL_SPEEDUP = 200.0
GOAL_RSS_MIB = 30.0
GOAL_CPU_PERCENT = 0.5
FIRST_ID = 2000
"""Filler ids one-2000…: clear of the e2e suite's (100-102, 1000+)."""
HOST_ID = 7
FILLER_BUDGET_MIB = 64
"""Memory set aside per filler (qemu RSS is about 40 MiB) when deciding how many fit."""
RESERVE_MIB = 2048


@dataclass
class Cycle:
    """Our VM-monitor cycle: wall and client CPU per cycle."""

    wall: Timing
    cpu: Timing
    records: int


@dataclass
class Results:
    """Everything the summary prints."""

    domains: int = 0
    ours: Cycle | None = None
    baseline: Cycle | None = None
    variants: list[tuple[str, Cycle]] = field(default_factory=list)
    groups: list[tuple[str, float]] = field(default_factory=list)
    naive: Timing | None = None
    virsh: Timing | None = None
    exporter: peers.ExporterResult | None = None
    agent: proc.Footprint | None = None
    collector: proc.Footprint | None = None
    agent_map: list[tuple[str, float]] = field(default_factory=list)
    agent_split: dict[str, float] = field(default_factory=dict)
    libvirtd: proc.Footprint | None = None
    ladder: list[proc.Rung] = field(default_factory=list)
    reported_vms: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--fillers", type=int, default=30, help="filler domains (default 30)")
    parser.add_argument("--duration", type=float, default=300.0,
                        help="seconds of agent footprint sampling (default 300)")  # fmt: skip
    parser.add_argument("--cycles", type=int, default=20, help="timed cycles per variant")
    parser.add_argument("--scrapes", type=int, default=20, help="timed exporter scrapes")
    parser.add_argument("--lock-timeout", type=float, default=1800.0,
                        help="seconds to wait for the machine-wide e2e lock")  # fmt: skip
    parser.add_argument(
        "--footprint-only",
        action="store_true",
        help="skip section 1 (cycle times, peers): only the agent's footprint",
    )
    return parser.parse_args(argv)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks clean up."""
    raise KeyboardInterrupt


def fitting(wanted: int) -> int:
    """How many fillers fit in MemAvailable, keeping a reserve."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) // 1024
            return max(0, min(wanted, (available - RESERVE_MIB) // FILLER_BUDGET_MIB))
    return wanted


def start_fillers(conn: Any, count: int, made: list[guest.Guest]) -> None:
    """Start fillers one-FIRST_ID… into ``made`` until count or the first failure."""
    import libvirt

    started = time.monotonic()
    for vm_id in range(FIRST_ID, FIRST_ID + count):
        try:
            made.append(guest.start_filler(conn, vm_id))
        except libvirt.libvirtError as exc:
            print(f"  filler one-{vm_id} failed, continuing with {len(made)}: {exc}")
            break
    print(f"  {len(made)} fillers started in {time.monotonic() - started:.1f} s")


# --- 1. cycle times -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One shape of the client: chunking and vCPU group."""

    vcpu: bool = True
    max_chunks: int = MAX_CHUNKS
    chunk_domains: int = CHUNK_DOMAINS

    def label(self, n: int) -> str:
        """``4 chunks`` for n domains."""
        chunks = chunks_for(n, self.max_chunks, self.chunk_domains)
        return f"{chunks} chunk{'s' if chunks > 1 else ''}"


OURS = Variant()
"""What the agent runs (LibvirtClient's defaults)."""
VARIANTS = tuple(
    Variant(vcpu, chunks, per)
    for vcpu in (True, False)
    for chunks, per in ((1, CHUNK_DOMAINS), (2, CHUNK_DOMAINS), (MAX_CHUNKS, CHUNK_DOMAINS), (8, 1))
)  # fmt: skip


class SingleCallClient:
    """The client before chunking (baseline): every group of every domain in one call."""

    def __init__(self, uri: str) -> None:
        import libvirt

        self._conn = libvirt.openReadOnly(uri)

    def domains(self) -> list[Domain]:
        """One getAllDomainStats call, as LibvirtClient.domains() made it."""
        raw = self._conn.getAllDomainStats(STATS_ALL, LIST_ACTIVE | STATS_NOWAIT)
        return [Domain(dom.name(), dom.UUIDString(), stats) for dom, stats in raw]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def cycle_variants(runs: int, expected: int) -> tuple[Cycle, dict[Variant, Cycle]]:
    """Time domains() + VmSampler.sample(), as monitor_vm runs them, for the baseline and each
    variant: one client (connection) each, all run once per round in a shuffled order, so a
    change of machine load hits every variant alike. CPU is the whole process's (the chunk
    threads')."""
    clients: dict[Variant | None, Any] = {None: SingleCallClient(URI)}
    for v in VARIANTS:
        clients[v] = LibvirtClient(URI, vcpu=v.vcpu, max_chunks=v.max_chunks,
                                   chunk_domains=v.chunk_domains)  # fmt: skip
    samplers = {key: VmSampler() for key in clients}
    walls: dict[Variant | None, list[float]] = {key: [] for key in clients}
    cpus: dict[Variant | None, list[float]] = {key: [] for key in clients}
    records: dict[Variant | None, int] = {}
    order = list(clients)
    shuffle = random.Random(0).shuffle
    try:
        for key in order:
            for _ in range(2):  # connect, first CPU sample
                samplers[key].sample(clients[key].domains())
        for _ in range(runs):
            shuffle(order)
            for key in order:
                wall, cpu = time.perf_counter(), time.process_time()
                records[key] = len(samplers[key].sample(clients[key].domains()))
                cpus[key].append(time.process_time() - cpu)
                walls[key].append(time.perf_counter() - wall)
    finally:
        for client in clients.values():
            client.close()
    for key, got in records.items():
        if got != expected:
            print(f"  WARNING: {key or 'baseline'} returned {got} records for {expected} domains")
    cycles = {key: Cycle(Timing.of(walls[key]), Timing.of(cpus[key]), records[key])
              for key in clients}  # fmt: skip
    baseline = cycles.pop(None)
    return baseline, {key: cycle for key, cycle in cycles.items() if key is not None}


STAT_GROUPS = (
    ("state", STATS_STATE),
    ("cpu-total", STATS_CPU_TOTAL),
    ("balloon", STATS_BALLOON),
    ("vcpu", STATS_VCPU),
    ("interface", STATS_INTERFACE),
    ("block", STATS_BLOCK),
    ("state+cpu+balloon (the per-domain peer's data)",
     STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON),
    ("all six (ours)", STATS_ALL),
)  # fmt: skip


def group_breakdown(runs: int = 7) -> list[tuple[str, float]]:
    """Median wall seconds of one getAllDomainStats call per stats group alone."""
    import libvirt

    conn = libvirt.openReadOnly(URI)
    try:
        out = []
        for name, group in STAT_GROUPS:
            flags = LIST_ACTIVE | STATS_NOWAIT

            def call(g: int = group, f: int = flags) -> object:
                return conn.getAllDomainStats(g, f)

            out.append((name, peers.Timing.of(peers.timings(runs, call)).median))
        return out
    finally:
        conn.close()


def cycle_times(args: argparse.Namespace, conn: Any, res: Results, work: Path) -> None:
    """Section 1: our cycle, its stats groups, the per-domain peer, virsh, the exporter."""
    n = res.domains
    print(f"\n== VM-monitor cycle over {n} domains ({args.cycles} timed cycles after warm-up, "
          f"{len(VARIANTS) + 1} clients in shuffled rounds)")  # fmt: skip
    base, variants = cycle_variants(args.cycles, n)
    res.baseline, res.ours = base, variants[OURS]
    res.variants = [(f"vCPU {'on' if v.vcpu else 'off'}, {v.label(n)}", c)
                    for v, c in variants.items()]  # fmt: skip
    w = res.ours.wall
    print(f"  baseline (1 getAllDomainStats call + sample, the client before): median "
          f"{base.wall.median * 1e3:.1f} ms = {base.wall.median / n * 1e6:.0f} µs/VM; client CPU "
          f"{base.cpu.median * 1e3:.2f} ms/cycle")  # fmt: skip
    print(f"  ours (list + {OURS.label(n)} of domainListGetStats in parallel + sample, vCPU on): "
          f"best {w.best * 1e3:.1f} ms, median {w.median * 1e3:.1f} ms = "
          f"{w.median / n * 1e6:.0f} µs/VM; client CPU {res.ours.cpu.median * 1e3:.2f} ms/cycle; "
          f"{_vs(w.median, base.wall.median)} than the baseline")  # fmt: skip
    print(f"  vs OpenNebula 0.11 s/VM: {ONE_SECONDS_PER_VM / (w.median / n):.0f}× faster per VM"
          f" (goal ≥ {GOAL_SPEEDUP:.0f}×)")  # fmt: skip
    print("  variants, median wall ms (client CPU ms): "
          + "; ".join(f"{label} {c.wall.median * 1e3:.1f} ({c.cpu.median * 1e3:.2f})"
                      for label, c in res.variants))  # fmt: skip
    best_label, best = min(res.variants, key=lambda lc: lc[1].wall.median)
    print(f"  fastest here: {best_label} ({best.wall.median * 1e3:.1f} ms)")
    res.groups = group_breakdown()
    print("  one getAllDomainStats call per stats group (median): "
          + ", ".join(f"{g} {s * 1e3:.1f} ms" for g, s in res.groups))  # fmt: skip
    res.naive = Timing.of(peers.timings(args.cycles, lambda: peers.per_domain_cycle(conn)))
    print(
        f"  per-domain calls (XMLDesc+info+memoryStats[+block/if stats]): median "
        f"{res.naive.median * 1e3:.1f} ms = {res.naive.median / n * 1e6:.0f} µs/VM"
    )
    if peers.have_virsh():
        res.virsh = Timing.of(peers.timings(10, lambda: peers.virsh_domstats(URI)))
        print(
            f"  virsh domstats (one process): median {res.virsh.median * 1e3:.1f} ms = "
            f"{res.virsh.median / n * 1e6:.0f} µs/VM"
        )
    print(f"\n== {peers.EXPORTER_PACKAGE}: {args.scrapes} scrapes of /metrics")
    res.exporter = peers.run_exporter(URI, stack.free_port(), args.scrapes,
                                      work / "exporter.log", proc.rss_bytes)  # fmt: skip
    ex = res.exporter
    if ex.scrape is None:
        print(f"  no figures: {ex.error}")
        return
    print(f"  {ex.binary} {ex.version}: saw {ex.domains_seen}/{n} domains, {ex.samples} samples,"
          f" {ex.body_bytes / 1024:.0f} KiB; RSS {ex.rss_mib:.1f} MiB")  # fmt: skip
    print(f"  scrape: best {ex.scrape.best * 1e3:.1f} ms, median {ex.scrape.median * 1e3:.1f} ms"
          f" = {ex.scrape.median / n * 1e6:.0f} µs/VM; "
          f"{_vs(w.median, ex.scrape.median)}")  # fmt: skip
    for note in ex.notes:
        print(f"  note: {note}")


# --- 2. footprint ---------------------------------------------------------------------------------


def _libvirtd_pid() -> int | None:
    """The running libvirtd's pid (from its pid file), or None."""
    try:
        pid = int(libvirtd.LIBVIRTD_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _sample_all(prints: list[proc.Footprint]) -> None:
    for fp in prints:
        fp.read()


def _wait(check: Callable[[], bool], timeout: float, prints: list[proc.Footprint]) -> bool:
    """Sample every second until check() holds; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _sample_all(prints)
        try:
            if check():
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)
    return False


def compile_bytecode() -> None:
    """Write the agent's .pyc files, as its packages do at install (py3compile, compileall).

    Else, under PYTHONDONTWRITEBYTECODE (the test machines set it), every module edited since
    its .pyc was written is compiled again at each start, and the agent's RSS keeps some of
    what compiling allocated (about 1 MiB for a dozen modules).
    """
    pkg = REPO / "onemon"
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-l", str(pkg)], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(pkg / "agent"),
                    str(pkg / "wire")], check=True)  # fmt: skip


def footprint(args: argparse.Namespace, res: Results, work: Path) -> None:
    """Section 2: a real one-agent (default periods) sending to a real one-collector."""
    print(f"\n== one-agent footprint, default periods, {args.duration:.0f} s window")
    key = stack.make_key(work)
    hosts, http = HostsConfig(), HttpConfig()
    coll = stack.collector(work / "c", key, [(HOST_ID, "bench-node")], extra={
        "http": {"render_interval": http.render_interval},
        "hosts": {"manager_timer": hosts.manager_timer},
    })  # fmt: skip
    probes, send = ProbeConfig(), SendConfig()
    agent = stack.agent(
        work / "a", key, HOST_ID, [f"127.0.0.1:{coll.port}"],
        periods=dataclasses.asdict(Periods()),
        extra={"probes": {"times_missing": probes.times_missing, "timeout": probes.timeout},
               "send": {"ack_timeout": send.ack_timeout}},
    )  # fmt: skip
    compile_bytecode()
    try:
        coll.start()
        coll.wait_ready()
        agent.start()
        assert coll.proc is not None and agent.proc is not None
        res.agent = proc.Footprint("one-agent", agent.proc.pid)
        res.collector = proc.Footprint("one-collector", coll.proc.pid)
        prints = [res.agent, res.collector]
        libvirtd_pid = _libvirtd_pid()
        if libvirtd_pid is not None:  # where the bulk-stats work lands (not in the agent's CPU)
            res.libvirtd = proc.Footprint("libvirtd", libvirtd_pid)
            prints.append(res.libvirtd)
        ids = set(range(FIRST_ID, FIRST_ID + res.domains))

        def reported() -> int:
            vms = coll.get("/api/v1/vms")
            return sum(1 for v in vms if v["id"] in ids and v.get("last_poll"))

        def ready() -> bool:
            return bool(coll.host(HOST_ID)["state"] == "MONITORED" and reported() == len(ids))

        if not _wait(ready, 90, prints):
            print(f"  WARNING: collector never saw all {len(ids)} VMs; agent log tail:\n"
                  + agent.output()[-1500:])  # fmt: skip
        for fp in prints:
            fp.mark()
        window_epoch = time.time()
        before = coll.get("/api/v1/health").get("messages", {})
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if agent.proc.poll() is not None or coll.proc.poll() is not None:
                print("  WARNING: a daemon exited during the window")
                break
            _sample_all(prints)
        res.agent_map = proc.rss_by_mapping(agent.proc.pid)
        res.agent_split = proc.rss_split(agent.proc.pid)
        vms = coll.get("/api/v1/vms")
        res.reported_vms = sum(
            1 for v in vms if v["id"] in ids and (v.get("last_poll") or 0) >= window_epoch
        )
        after = coll.get("/api/v1/health").get("messages", {})
        res.messages = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    finally:
        agent.stop()
        coll.stop()
    for fp in prints:
        print(f"  {fp.name:13} RSS start {fp.rss_start():.1f} / end {fp.rss_end():.1f} / max "
              f"{fp.rss_max():.1f} MiB; PSS end {fp.pss_end():.1f} / max {fp.pss_max():.1f} MiB; "
              f"CPU {fp.cpu_percent():.3f} % of a core "
              f"(+children {fp.cpu_percent(True):.3f} %) over {fp.window_seconds():.0f} s; "
              f"CPU before window {fp.startup_cpu():.2f} s")  # fmt: skip
    print(f"  collector got fresh MONITOR data for {res.reported_vms}/{len(ids)} VMs in the "
          f"window; messages received in the window: {res.messages}")  # fmt: skip
    print("  agent RSS split (MiB): "
          + ", ".join(f"{k} {v:.1f}" for k, v in res.agent_split.items()))  # fmt: skip
    print("  agent RSS by mapping (MiB): "
          + ", ".join(f"{name} {mib:.1f}" for name, mib in res.agent_map))  # fmt: skip
    res.ladder = proc.import_ladder(REPO)
    print("  RSS / PSS of a fresh interpreter after cumulative imports (MiB): "
          + "; ".join(f"{r.label} {r.rss:.1f} / {r.pss:.1f}" for r in res.ladder))  # fmt: skip


# --- summary --------------------------------------------------------------------------------------


def summary(res: Results) -> None:
    """The table of every figure with its goal."""
    n = max(res.domains, 1)
    rows: list[tuple[str, str, str, str]] = []
    if res.ours is not None:
        w = res.ours.wall.median
        speedup = ONE_SECONDS_PER_VM / (w / n)
        rows += [
            ("our VM-monitor cycle (median)", f"{w * 1e3:.1f} ms", "", ""),
            ("our cost per VM", f"{w / n * 1e6:.0f} µs", "", ""),
            ("speed-up vs OpenNebula 0.11 s/VM", f"{speedup:.0f}×", f"≥ {GOAL_SPEEDUP:.0f}×",
             _ok(speedup >= GOAL_SPEEDUP)),
            ("our client CPU per cycle", f"{res.ours.cpu.median * 1e3:.2f} ms", "", ""),
        ]  # fmt: skip
        if res.baseline is not None:
            base = res.baseline.wall.median
            rows.append(("baseline: 1 getAllDomainStats call", f"{base * 1e3:.1f} ms",
                         _vs(w, base), ""))  # fmt: skip
        if res.variants:
            label, fastest = min(res.variants, key=lambda lc: lc[1].wall.median)
            rows.append((f"fastest variant: {label}", f"{fastest.wall.median * 1e3:.1f} ms",
                         _vs(w, fastest.wall.median), ""))  # fmt: skip
        ours = res.ours.wall.median
        ex = res.exporter
        peer_rows = [
            ("per-domain calls peer (median)", res.naive),
            ("virsh domstats (median)", res.virsh),
            ("libvirt-exporter scrape (median)", ex.scrape if ex is not None else None),
        ]
        for label, timing in peer_rows:
            if timing is not None:
                value = f"{timing.median * 1e3:.1f} ms"
                rows.append((label, value, _vs(ours, timing.median), ""))
    ex = res.exporter
    if ex is not None and ex.scrape is None:
        rows.append(("libvirt-exporter scrape", "n/a", ex.error[:60], ""))
    for fp in (res.agent, res.collector, res.libvirtd):
        if fp is None or not fp.samples:
            continue
        is_agent = fp is res.agent
        rss_ok = fp.rss_max() * proc.MIB <= GOAL_RSS_MIB * 1e6
        rows.append((f"{fp.name} RSS max", f"{fp.rss_max():.1f} MiB",
                     f"≤ {GOAL_RSS_MIB:.0f} MB" if is_agent else "",
                     _ok(rss_ok) if is_agent else ""))  # fmt: skip
        rows.append((f"{fp.name} PSS max", f"{fp.pss_max():.1f} MiB", "", ""))
        cpu = fp.cpu_percent()
        rows.append((f"{fp.name} CPU ({fp.window_seconds():.0f} s window)", f"{cpu:.3f} %",
                     f"≤ {GOAL_CPU_PERCENT} %" if is_agent else "",
                     _ok(cpu <= GOAL_CPU_PERCENT) if is_agent else ""))  # fmt: skip
    if res.agent is not None:
        rows.append(("VMs reported fresh in window", f"{res.reported_vms}/{res.domains}", "", ""))
    res.rows = rows
    widths = [max(len(r[i]) for r in [("figure", "value", "goal / peer", ""), *rows])
              for i in range(4)]  # fmt: skip
    print(f"\n== summary ({res.domains} filler domains, {time.strftime('%Y-%m-%d %H:%M')})")
    for row in [("figure", "value", "goal / peer", ""), *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _vs(ours: float, peer: float) -> str:
    """'ours N× faster' or 'ours N× slower' (wall times)."""
    if ours <= peer:
        return f"ours {peer / ours:.1f}× faster"
    return f"ours {ours / peer:.1f}× slower"


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark; clean up domains and daemons whatever happens."""
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.agent needs root (libvirtd, qemu:///system, apt-get)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    import libvirt

    res = Results()
    print(f"waiting for {machine_lock.LOCK_FILE} (up to {args.lock_timeout:.0f} s)…")
    lock = machine_lock.acquire(args.lock_timeout)
    daemons: libvirtd.Daemons | None = None
    conn: Any = None
    made: list[guest.Guest] = []
    try:
        daemons = libvirtd.ensure_running()
        print(f"libvirtd answering on {URI} (started by us: {sorted(daemons.started) or 'none'})")
        conn = libvirt.open(URI)
        swept = guest.cleanup_all(conn)
        if swept:
            print(f"  swept leftover test domains: {swept}")
        count = fitting(args.fillers)
        if count < args.fillers:
            print(f"  only {count} of {args.fillers} fillers fit in MemAvailable")
        start_fillers(conn, count, made)
        res.domains = len(made)
        if not made:
            print("no domains: nothing to measure", file=sys.stderr)
            return 1
        time.sleep(3.0)  # let SeaBIOS settle
        with tempfile.TemporaryDirectory(prefix="onemon-bench-agent-") as tmp:
            work = Path(tmp)
            if not args.footprint_only:
                cycle_times(args, conn, res, work)
            footprint(args, res, work)
        summary(res)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        summary(res)
        return 130
    finally:
        if conn is not None:
            print(f"removing {len(made)} fillers…")
            guest.remove_many(conn, made)
            conn.close()
        if daemons is not None:
            daemons.stop()
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
