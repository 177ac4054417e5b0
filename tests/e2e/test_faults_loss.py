"""20 % random loss both ways between an agent in its own network namespace and the collector.

The agent runs in a namespace joined to the root one by a veth pair; the collector listens on the
root end. iptables ``-m statistic`` drops 20 % of UDP and of TCP packets entering and leaving
the agent's namespace (this kernel has no netem). VM states change under the agent (a fake LXC
tree: containers started, frozen, thawed, removed). Asserted: every VM ends in its real state
within one sync period of the last change, and the collector's journal holds exactly the
transitions that happened, none applied twice or replayed out of order.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from bench.fleet_agent import FakeLxc
from onemon.collector.store import StoreReader
from tests.e2e import stack
from tests.e2e.infra import netns

HOST = 61
SYNC = 8.0
VMS = tuple(range(401, 407))
STEPS = 60 if os.environ.get("ONEMON_FAULTS_LONG") == "1" else 8
STEP_SECONDS = 1.5


def test_vm_states_converge_through_20_percent_loss_without_double_applying(
    tmp_path: Path, netns_factory: Callable[[int], list[netns.Netns]]
) -> None:
    (ns,) = netns_factory(1)
    assert ns.host_ip is not None
    key = stack.make_key(tmp_path)
    lxc = FakeLxc(tmp_path / "cgroup")
    truth: dict[int, str] = {}
    history: dict[int, list[str]] = {vm: [] for vm in VMS}

    def record(vm: int, state: str) -> None:
        truth[vm] = state
        if not history[vm] or history[vm][-1] != state:
            history[vm].append(state)

    for vm in VMS:
        lxc.start(vm)
        record(vm, "RUNNING")
    collector = stack.collector(tmp_path / "c", key, [(HOST, f"node{HOST}")],
                                extra={"listen": {"address": ns.host_ip}})  # fmt: skip
    periods = {**stack.FAST_PERIODS, "state_vm": 0.5, "sync_state_vm": SYNC, "monitor_vm": 1,
               "beacon_host": 1, "monitor_host": 1}  # fmt: skip
    (tmp_path / "probes").mkdir()
    agent = stack.agent(
        tmp_path / "a", key, HOST, [f"{ns.host_ip}:{collector.port}"], hypervisor="lxc",
        periods=periods,
        extra={"probes": {"tree": str(tmp_path / "probes"), "cgroupfs": str(lxc.root)},
               "send": {"ack_timeout": 2}},
    )  # fmt: skip
    agent.argv = ns.argv(*agent.argv)
    collector.start()
    try:
        collector.wait_ready()
        for proto in ("udp", "tcp"):
            for direction in ("in", "out"):
                count_packets(ns, proto, direction)
                netns.add_loss(ns, 0.2, proto=proto, direction=direction)
        agent.start()
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 30, "MONITORED")
        stack.wait_until(lambda: all(reports(collector).get(vm) == "RUNNING" for vm in VMS), 30,
                         "every VM RUNNING")  # fmt: skip
        rng = random.Random(7)
        cooling: dict[int, int] = {}  # a removed VM is left alone until POWEROFF is reported
        for step in range(STEPS):
            vm = rng.choice([v for v in VMS if cooling.get(v, -1) < step])
            state = truth[vm]
            if state == "RUNNING":
                if rng.random() < 0.7:
                    lxc.freeze(vm)
                    record(vm, "UNKNOWN")  # a frozen container is UNKNOWN for OpenNebula
                else:
                    lxc.remove(vm)
                    record(vm, "POWEROFF")
                    cooling[vm] = step + 2
            elif state == "UNKNOWN":
                lxc.thaw(vm)
                record(vm, "RUNNING")
            else:
                lxc.start(vm)
                record(vm, "RUNNING")
            lxc.tick()
            time.sleep(STEP_SECONDS)
        last_change = time.monotonic()
        converged = stack.wait_until(
            lambda: reports(collector) == truth and time.monotonic(), SYNC + 20, "convergence"
        )
        took = converged - last_change
        assert collector.host(HOST)["state"] == "MONITORED"
        health = collector.get("/api/v1/health")
        assert agent.proc is not None and agent.proc.poll() is None
        seen, dropped = loss_counters(ns)
    finally:
        agent.kill()
        collector.kill()
        netns.clear_loss(ns)
    # The loss really happened, in both protocols: at 20 % of the dozens of packets each carries,
    # a protocol with no drop at all is a broken rule (chance below 1e-3), not bad luck.
    print(f"packets seen {seen}, dropped {dropped}")
    assert seen["udp"] >= 30 and seen["tcp"] >= 30, f"too little traffic to test loss: {seen}"
    assert dropped["udp"] > 0 and dropped["tcp"] > 0, f"nothing was lost: {dropped} of {seen}"
    assert took <= SYNC, f"converged {took:.1f} s after the last change (sync period {SYNC:g} s)"
    reader = StoreReader(f"sqlite:///{collector.db}")
    try:
        journal: dict[int, list[str]] = {vm: [] for vm in VMS}
        for change in reader.state_changes():
            if change.vm_id in journal:
                journal[change.vm_id].append(change.report)
    finally:
        reader.close()
    for vm in VMS:
        reports_ = journal[vm]
        assert all(a != b for a, b in pairwise(reports_)), (vm, reports_)
        assert reports_ == history[vm], f"VM {vm}: journal {reports_}, real {history[vm]}"
    assert health["rejected"].get("replay", 0) + health["rejected"].get("internal_error", 0) == 0


def count_packets(ns: netns.Netns, proto: str, direction: str) -> None:
    """A rule with no target ahead of the loss rule: it counts every packet the loss rule sees."""
    ns.run("iptables", "-w", "-A", "INPUT" if direction == "in" else "OUTPUT", "-p", proto)


def loss_counters(ns: netns.Netns) -> tuple[dict[str, int], dict[str, int]]:
    """Packets the counting rules saw and the loss rules dropped, by protocol."""
    seen = {"udp": 0, "tcp": 0}
    dropped = {"udp": 0, "tcp": 0}
    names = {"17": "udp", "6": "tcp", "udp": "udp", "tcp": "tcp"}
    for chain in ("INPUT", "OUTPUT"):
        listing = ns.run("iptables", "-w", "-L", chain, "-v", "-n", "-x").stdout.decode()
        for line in listing.splitlines()[2:]:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "DROP" and fields[3] in names:
                dropped[names[fields[3]]] += int(fields[0])
            elif len(fields) > 2 and fields[2] in names:  # no target: the counting rule
                seen[names[fields[2]]] += int(fields[0])
    return seen, dropped


def reports(collector: stack.CollectorProcess) -> dict[int, str]:
    """The collector's report of each test VM."""
    return {vm["id"]: vm["report"] for vm in collector.get("/api/v1/vms") if vm["id"] in VMS}
