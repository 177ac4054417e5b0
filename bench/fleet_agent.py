"""Real one-agent processes for the soak and the fault tests, and what they are fed.

- ``FakeLxc``: a cgroup v2 tree an ``hypervisor = "lxc"`` agent reads as its containers
  (``lxc.payload.one-<id>``): containers can be started, frozen (OpenNebula UNKNOWN), thawed and
  removed (POWEROFF after ``times_missing`` cycles) by writing files, so the agent's state
  tracker produces real deltas without libvirt or LXC.
- ``write_probe``: an executable in the agent's probe tree.
- ``collector_outage``: the "collector down" scenario (short in CI, 10 minutes in the soak):
  every state cycle the agent sends one STATE_VM naming a new VM (a counter probe), so the
  collector's journal says which messages arrived and in which order; the agent's spool is
  capped; the collector is killed, stays down, comes back. Checked: what arrived is in order,
  what is missing is one block of the oldest spooled messages of exactly the size the agent
  reports as dropped; the spool never passed its cap; the agent's RSS stayed flat.
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fleet_measure import MIB, read_proc
from onemon.collector.store import StoreReader
from tests.e2e import stack


class FakeLxc:
    """A pure cgroup v2 tree with ``one-<id>`` payload cgroups."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        self.usage: dict[int, int] = {}

    def _dir(self, vm_id: int) -> Path:
        return self.root / f"lxc.payload.one-{vm_id}"

    def start(self, vm_id: int, memory: int = 64 * MIB) -> None:
        """A running container."""
        path = self._dir(vm_id)
        path.mkdir(exist_ok=True)
        self.usage[vm_id] = self.usage.get(vm_id, 0) + 1_000_000
        (path / "cpu.stat").write_text(f"usage_usec {self.usage[vm_id]}\n")
        (path / "memory.current").write_text(f"{memory}\n")
        (path / "cgroup.events").write_text("populated 1\nfrozen 0\n")

    def freeze(self, vm_id: int) -> None:
        """Frozen: OpenNebula's LXC map makes it UNKNOWN."""
        (self._dir(vm_id) / "cgroup.events").write_text("populated 1\nfrozen 1\n")

    def thaw(self, vm_id: int) -> None:
        """Running again."""
        (self._dir(vm_id) / "cgroup.events").write_text("populated 1\nfrozen 0\n")

    def remove(self, vm_id: int) -> None:
        """Gone: POWEROFF once missing for ``times_missing`` cycles."""
        shutil.rmtree(self._dir(vm_id), ignore_errors=True)

    def tick(self) -> None:
        """Every running container used some more CPU."""
        for vm_id in list(self.usage):
            path = self._dir(vm_id)
            if path.exists():
                self.usage[vm_id] += 50_000
                (path / "cpu.stat").write_text(f"usage_usec {self.usage[vm_id]}\n")


def write_probe(tree: Path, hypervisor: str, group: str, name: str, script: str) -> Path:
    """An executable ``<tree>/<hv>-probes.d/<group>/<name>`` with ``script`` as its text."""
    path = tree / f"{hypervisor}-probes.d" / group / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


COUNTER_PROBE = """#!/bin/sh
# one STATE_VM entry per run, naming a new VM: the journal then says which runs arrived
[ -e "{stop}" ] && exit 0
n=$(cat "{counter}" 2>/dev/null || echo 0)
echo $((n + 1)) > "{counter}.tmp" && mv "{counter}.tmp" "{counter}"
echo "VM=[ID=$(({base} + n)),DEPLOY_ID=\\"m$n\\",STATE=RUNNING]"
"""
MARKER_BASE = 700_000


@dataclass
class OutageFigures:
    """What the collector-down scenario saw."""

    down_seconds: float
    runs: int = 0
    """STATE_VM messages the agent made (counter probe runs)."""
    before: int = 0
    """Runs delivered before the collector went down."""
    delivered: list[int] = field(default_factory=list)
    """Run numbers in the order the collector applied them."""
    dropped_reported: int = -1
    spool_cap: int = 0
    spool_peak: int = 0
    spool_bytes_peak: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    reconnect_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        """Runs never applied."""
        got = set(self.delivered)
        return [n for n in range(self.runs) if n not in got]

    def check(self) -> list[str]:
        """What users care about, as problems (empty: all good)."""
        out = list(self.problems)
        if self.delivered != sorted(self.delivered):
            out.append("state changes were applied out of order")
        if len(set(self.delivered)) != len(self.delivered):
            out.append("a state change was applied twice")
        missing = self.missing
        if missing and missing != list(range(missing[0], missing[0] + len(missing))):
            out.append(f"missing runs are not one block of the oldest spooled: {missing[:20]}")
        if len(missing) != self.dropped_reported:
            out.append(f"{len(missing)} missing but the agent reports {self.dropped_reported}")
        if self.spool_peak > self.spool_cap:
            out.append(f"spool held {self.spool_peak} > cap {self.spool_cap}")
        if self.rss_peak - self.rss_before > 32 * MIB:
            out.append(f"agent RSS grew {(self.rss_peak - self.rss_before) / MIB:.0f} MB")
        return out

    def describe(self) -> list[str]:
        """Printed lines."""
        problems = self.check()
        return [
            f"collector down {self.down_seconds:.0f} s: the agent made {self.runs} state messages "
            f"({self.before} before the outage); {len(self.delivered)} applied, in order "
            f"{self.delivered == sorted(self.delivered)}; {len(self.missing)} missing = "
            f"{self.dropped_reported} dropped as reported by the agent (spool cap "
            f"{self.spool_cap} messages)",
            f"  spool peak {self.spool_peak} messages, {self.spool_bytes_peak / 1024:.0f} KiB on "
            f"disk; agent RSS before {self.rss_before / MIB:.1f} MB, peak during the outage "
            f"{self.rss_peak / MIB:.1f} MB, after {self.rss_after / MIB:.1f} MB; reconnected "
            f"{self.reconnect_seconds:.1f} s after the collector was back",
            "  " + ("ok" if not problems else "PROBLEMS: " + "; ".join(problems)),
        ]


def _spool(state_dir: Path) -> tuple[int, int]:
    """(messages, bytes on disk) of the agent's spool, read-only."""
    path = state_dir / "spool.sqlite"
    size = sum(p.stat().st_size for p in state_dir.glob("spool.sqlite*") if p.exists())
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            count = int(conn.execute("SELECT count(*) FROM spool").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        count = 0
    return count, size


def _delivered(collector: stack.CollectorProcess) -> list[int]:
    reader = StoreReader(f"sqlite:///{collector.db}")
    try:
        changes = reader.state_changes()
    finally:
        reader.close()
    return [
        c.vm_id - MARKER_BASE
        for c in changes
        if c.vm_id is not None and c.vm_id >= MARKER_BASE and c.source == "state_vm"
    ]


def collector_outage(
    work: Path,
    down_seconds: float,
    *,
    state_period: float = 0.2,
    spool_cap: int = 10,
    host_id: int = 31,
    say: Callable[[str], None] = lambda text: None,
) -> OutageFigures:
    """Run the scenario; the figures' ``check()`` says what went wrong."""
    figures = OutageFigures(down_seconds, spool_cap=spool_cap)
    key = stack.make_key(work)
    tree = work / "probes"
    counter, stop = work / "counter", work / "stop"
    write_probe(tree, "lxc", "vm/status", "counter",
                COUNTER_PROBE.format(counter=counter, stop=stop, base=MARKER_BASE))  # fmt: skip
    lxc = FakeLxc(work / "cgroup")
    port = stack.free_port()
    collector = stack.collector(work / "collector", key, [(host_id, f"node{host_id}")], port=port)
    periods = {**stack.FAST_PERIODS, "state_vm": state_period, "sync_state_vm": 10**6,
               "monitor_host": 1, "monitor_vm": 5, "system_host": 30}  # fmt: skip
    agent = stack.agent(
        work / "agent", key, host_id, [f"127.0.0.1:{port}"], hypervisor="lxc", periods=periods,
        extra={
            "probes": {"tree": str(tree), "cgroupfs": str(lxc.root)},
            "send": {"spool_max_messages": spool_cap, "ack_timeout": 3},
        },
    )  # fmt: skip
    state_dir = work / "agent" / "state"
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        assert agent.proc is not None
        pid = agent.proc.pid
        stack.wait_until(lambda: len(_delivered(collector)) >= 5, 30, "state messages arriving")
        figures.rss_before = read_proc(pid).rss
        say(f"  agent up, {len(_delivered(collector))} state messages applied; collector kill -9")
        collector.kill()
        figures.before = len(_delivered(collector))
        down_until = time.monotonic() + down_seconds
        last_say = 0.0
        while time.monotonic() < down_until:
            count, size = _spool(state_dir)
            figures.spool_peak = max(figures.spool_peak, count)
            figures.spool_bytes_peak = max(figures.spool_bytes_peak, size)
            figures.rss_peak = max(figures.rss_peak, read_proc(pid).rss)
            if time.monotonic() - last_say > 30:
                left = down_until - time.monotonic()
                say(f"  collector down, {left:.0f} s to go; spool {count} messages")
                last_say = time.monotonic()
            time.sleep(0.2)
        back = time.monotonic()
        collector.start()
        collector.wait_ready()

        def agent_figure(name: str) -> Any:
            return collector.host(host_id).get("agent", {}).get(name)

        stack.wait_until(lambda: _spool(state_dir)[0] == 0 and agent_figure("SPOOL_MESSAGES") == 0,
                         120, "the spool drained")  # fmt: skip
        figures.reconnect_seconds = time.monotonic() - back
        stop.touch()  # no more state messages; let the last ones through
        time.sleep(3 * state_period + 0.5)
        figures.runs = int(counter.read_text())
        stack.wait_until(lambda: _spool(state_dir)[0] == 0, 30, "the last messages acknowledged")
        drained_at = time.time()  # any MONITOR_HOST from now on carries the final drop count
        stack.wait_until(lambda: collector.host(host_id)["last_monitored"] > drained_at, 10,
                         "a MONITOR_HOST after the drain")  # fmt: skip
        figures.dropped_reported = int(agent_figure("MESSAGES_DROPPED"))
        figures.rss_after = read_proc(pid).rss
        figures.delivered = _delivered(collector)
        if agent.proc.poll() is not None:
            figures.problems.append(f"the agent exited: {agent.output()[-500:]}")
    finally:
        agent.kill()
        collector.kill()
    return figures
