"""Hung and runaway probes in a real agent's probe tree: killed on time, nothing left behind.

Three hostile probes, each in a group of its own: one sleeps forever (vm/execution), one is a
fork bomb (vm/monitor; bounded by a pids cgroup it moves itself into, since root ignores
``ulimit -u``), one writes gigabytes to stdout (vm/snapshot). The host's own groups and the
VM state tracker (a fake LXC tree) must keep their schedule, observed at the collector.

The agent runs under a small subreaper, as under systemd: this machine's PID 1 does not reap
orphans, and a killed probe's children are orphans of the agent (see ``test_*_reaped``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.fleet_agent import FakeLxc, write_probe
from bench.fleet_measure import MIB, read_proc
from tests.e2e import stack

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

HOST = 51
TIMEOUT = 2.0
WINDOW = 9.0
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
REAPER = """\
import ctypes, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans of the agent's probes come here
child = os.fork()
if child == 0:
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the reaper
    os.execv(sys.argv[1], sys.argv[1:])
open(os.environ["REAPER_PIDFILE"], "w").write(str(child))
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
reaped = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        continue
    if pid == child:
        break
    reaped += 1
deadline = time.monotonic() + 5  # the agent is gone: reap what its last probes leave behind
while time.monotonic() < deadline:
    try:
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.02)
"""
HANG = """#!/bin/sh
echo "$$ $(date +%s.%N)" >> {dir}/hang.runs
exec sleep 3600
"""
BOMB = """#!/bin/bash
echo $$ > {cgroup}/cgroup.procs   # bounded like systemd's TasksMax (root ignores ulimit -u)
echo "$$ $(date +%s.%N)" >> {dir}/bomb.runs
b() {{ if [ "$1" -gt 0 ]; then b $(($1 - 1)) & b $(($1 - 1)) & wait; else exec sleep 3600; fi; }}
b 7 2>/dev/null
"""
FLOOD = """#!/bin/sh
echo "$$ $(date +%s.%N)" >> {dir}/flood.runs
exec head -c 3000000000 /dev/zero
"""


@dataclass
class Observed:
    """What happened while the hostile probes ran."""

    work: Path
    agent_pid: int
    counts: dict[str, int]
    """Messages applied per type during the window."""
    host_states: list[str]
    rss: list[int]
    agent: dict[str, int]
    lifetimes: dict[str, list[float]] = field(default_factory=dict)
    """Seconds each run of each hostile probe lived (start to its process group gone)."""
    leftovers: list[str] = field(default_factory=list)
    bomb_peak: int = 0
    bomb_limit: int = 0


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2])


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in group ``pgid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = proc_stat(int(entry))
            if found is not None and found[2] == pgid:
                out.append((int(entry), found[0]))
    return out


def runs(path: Path) -> list[tuple[int, float]]:
    """(pid, start time) of each run a probe logged."""
    if not path.exists():
        return []
    return [(int(p), float(t)) for p, t in (line.split() for line in path.read_text().splitlines())]


def track(
    work: Path,
    live: dict[tuple[str, int], float],
    ended: dict[str, list[float]],
    seen: set[tuple[str, int]],
) -> None:
    """Note new runs of the hostile probes, and how long each lived once its group is gone."""
    for name in ended:
        for probe_pid, started_at in runs(work / f"{name}.runs"):
            if (name, probe_pid) not in seen:
                seen.add((name, probe_pid))
                live[(name, probe_pid)] = started_at
    for (name, probe_pid), started_at in list(live.items()):
        if all(state == "Z" for _, state in group_members(probe_pid)):
            ended[name].append(time.time() - started_at)
            del live[(name, probe_pid)]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    if os.geteuid() != 0 or not (PIDS_CGROUP / "cgroup.procs").exists():
        pytest.skip("needs root and the cgroup v1 pids controller to bound the fork bomb")
    work = tmp_path_factory.mktemp("probes")
    cgroup = PIDS_CGROUP / f"onemon-bomb-{os.getpid()}"
    cgroup.mkdir()
    limit = 64
    (cgroup / "pids.max").write_text(f"{limit}\n")
    key = stack.make_key(work)
    tree = work / "probes"
    write_probe(tree, "lxc", "vm/execution", "hang", HANG.format(dir=work))
    write_probe(tree, "lxc", "vm/monitor", "bomb", BOMB.format(dir=work, cgroup=cgroup))
    write_probe(tree, "lxc", "vm/snapshot", "flood", FLOOD.format(dir=work))
    lxc = FakeLxc(work / "cgroup")
    lxc.start(301)
    collector = stack.collector(work / "c", key, [(HOST, f"node{HOST}")])
    periods = {"beacon_host": 1, "monitor_host": 1, "system_host": 2, "state_vm": 0.5,
               "exec_vm": 1, "monitor_vm": 1, "sync_state_vm": 2}  # fmt: skip
    agent = stack.agent(
        work / "a", key, HOST, [f"127.0.0.1:{collector.port}"], hypervisor="lxc", periods=periods,
        extra={"probes": {"tree": str(tree), "cgroupfs": str(lxc.root), "timeout": TIMEOUT,
                          "max_output_bytes": 1024 * 1024}},
    )  # fmt: skip
    (work / "reaper.py").write_text(REAPER)
    pidfile = work / "agent.pid"
    agent.argv = [sys.executable, str(work / "reaper.py"), *agent.argv]
    os.environ["REAPER_PIDFILE"] = str(pidfile)
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        stack.wait_until(lambda: pidfile.exists() and pidfile.read_text(), 10, "the agent's pid")
        pid = int(pidfile.read_text())
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "MONITORED")
        before = collector.get("/api/v1/health")["messages"]
        started = time.monotonic()
        states, rss, peak = [], [], 0
        live: dict[tuple[str, int], float] = {}
        ended: dict[str, list[float]] = {"hang": [], "bomb": [], "flood": []}
        seen: set[tuple[str, int]] = set()
        while time.monotonic() - started < WINDOW:
            states.append(collector.host(HOST)["state"])
            rss.append(read_proc(pid).rss)
            peak = max(peak, len((cgroup / "cgroup.procs").read_text().split()))
            track(work, live, ended, seen)
            time.sleep(0.2)
        after = collector.get("/api/v1/health")["messages"]
        counts = {k.split("/")[0]: after[k] - before.get(k, 0) for k in after}
        result = Observed(work, pid, counts, states, rss, collector.host(HOST)["agent"],
                          lifetimes=ended, bomb_peak=peak, bomb_limit=limit)  # fmt: skip
        agent.signal(signal.SIGTERM)  # the agent (through the reaper) ends its probes and exits
        assert agent.proc is not None
        agent.proc.wait(20)
        time.sleep(0.5)
        for name, probe_pid in seen:
            members = group_members(probe_pid)
            if members:
                result.leftovers.append(f"{name} group {probe_pid}: {members[:5]}")
        for entry in os.listdir("/proc"):
            found = proc_stat(int(entry)) if entry.isdigit() else None
            if found is not None and found[0] == "Z" and found[1] == pid:
                result.leftovers.append(f"zombie child {entry} of the agent")
        yield result
    finally:
        agent.kill()
        collector.kill()
        os.environ.pop("REAPER_PIDFILE", None)
        for left in (cgroup / "cgroup.procs").read_text().split():
            os.kill(int(left), signal.SIGKILL)
        stack.wait_until(lambda: not (cgroup / "cgroup.procs").read_text().split(), 10,
                         "the bomb cgroup empty")  # fmt: skip
        cgroup.rmdir()


def test_hostile_probes_were_killed_on_time_with_their_whole_group(observed: Observed) -> None:
    lifetimes = observed.lifetimes
    assert len(lifetimes["hang"]) >= 2, "the hung probe should have run (and ended) repeatedly"
    assert lifetimes["bomb"], "the fork bomb ran and ended"
    assert lifetimes["flood"], "the flood ran and ended"
    late = TIMEOUT + 2 * 1.0 + 1.2  # timeout, SIGTERM grace, SIGKILL grace; slack for a busy CI
    assert max(lifetimes["hang"]) <= late, lifetimes
    assert min(lifetimes["hang"]) >= TIMEOUT - 0.3, lifetimes
    assert max(lifetimes["bomb"]) <= late, lifetimes
    assert max(lifetimes["flood"]) < TIMEOUT, lifetimes  # cut at max_output_bytes, not at timeout
    assert observed.leftovers == [], observed.leftovers


def test_the_fork_bomb_stayed_within_its_bound(observed: Observed) -> None:
    assert 10 < observed.bomb_peak <= observed.bomb_limit


def test_agent_memory_stayed_bounded_despite_gigabytes_of_output(observed: Observed) -> None:
    assert max(observed.rss) < 150 * MIB
    assert max(observed.rss) - min(observed.rss) < 40 * MIB
    assert observed.agent["PROBE_TRUNCATED"] >= 1  # the flood was cut at max_output_bytes
    assert observed.agent["PROBE_TIMEOUTS"] >= 2


def test_other_groups_kept_their_schedule(observed: Observed) -> None:
    assert set(observed.host_states) == {"MONITORED"}
    counts = observed.counts
    expected = WINDOW - 3  # one per second, less slack for a busy machine
    assert counts.get("BEACON_HOST", 0) >= expected, counts
    assert counts.get("MONITOR_HOST", 0) >= expected, counts
    assert counts.get("STATE_VM", 0) >= WINDOW / 2 - 2, counts  # a full sync every 2 s
    assert counts.get("SYSTEM_HOST", 0) >= WINDOW / 2 - 2, counts
    assert observed.agent["GROUP_SKIPS"] >= 1  # hung runs overlapping their period were skipped
