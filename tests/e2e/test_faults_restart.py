"""Collector kill -9 and restart under load: state and history come back, no acknowledged loss.

A fleet (``bench.fleet_sender``: 100 hosts, 400 VMs at ten times OpenNebula's rate, VM states
changing 20 times a second over acknowledged TCP) keeps sending while the collector is killed
and restarted on the same ports; like an agent, the sender sends again, in order, whatever was
not acknowledged. Every acknowledged state change must be in the journal, in order, and every
VM must end in the state the fleet last gave it.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from bench.fleet_collector import FleetCollector
from bench.fleet_hosts import FleetSpec
from bench.fleet_sender import ACK_OK, FleetSender
from onemon.collector.store import StoreReader
from tests.e2e import stack

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

SPEC = FleetSpec(hosts=100, vms=400, legacy_share=0.0, scale=10, churn=20, tcp_connections=4,
                 marker_rate=0, first_host=1000)  # fmt: skip


def monitoring(collector: FleetCollector, host_id: int) -> set[float]:
    """Timestamps of a host's history samples, as the API serves them."""
    return {
        row["timestamp"] for row in collector.get(f"/api/v1/hosts/{host_id}/monitoring?since=0")
    }


def is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    """Whether ``needle`` appears in ``haystack`` in order (not necessarily contiguous)."""
    rest = iter(haystack)
    return all(item in rest for item in needle)


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    collector = FleetCollector(tmp_path / "collector", SPEC,
                               extra={"hosts": {"manager_timer": 1.0}})  # fmt: skip
    collector.start()
    sender: FleetSender | None = None
    try:
        collector.wait_ready()
        sender = FleetSender(SPEC, collector.port, record_acks=True)
        warm = sender.call("warm", 3000.0, timeout=120)
        assert warm["unacked"] == 0
        stack.wait_until(
            lambda: collector.get("/api/v1/health")["vms"] == SPEC.vms, 20, "every VM known"
        )
        sender.begin("run", 12.0, False)
        time.sleep(4.0)
        sample = [SPEC.host_id(i) for i in range(0, SPEC.hosts, 10)]
        history_before = {h: monitoring(collector, h) for h in sample}
        acked_before_kill = sender.counter(ACK_OK)
        killed_at = time.time()
        collector.kill()
        time.sleep(2.0)
        collector.start()
        collector.wait_ready()
        result = sender.result(120)
        acked = sender.call("acked")
        truth = sender.call("state")
        hosts = collector.get("/api/v1/hosts")
        vms = {vm["id"]: vm for vm in collector.get("/api/v1/vms")}
        history_after = {h: monitoring(collector, h) for h in sample}
    finally:
        if sender is not None:
            sender.close()
        collector.stop()

    assert result["unacked"] == 0, result
    assert result["churn"] > 150 and acked_before_kill > 0
    assert result["resent"] > 0 or result["send_errors"] > 0  # the kill was felt
    assert set(result["acks"]) <= {"ok"}, result["acks"]
    # state back: hosts monitored, every VM there and in the fleet's last state
    assert {h["state"] for h in hosts} == {"MONITORED"}
    assert len(vms) == SPEC.vms
    wrong = {vm: (state, vms[vm]["report"]) for vm, state in truth.items()
             if vms[vm]["report"] != state}  # fmt: skip
    assert not wrong, f"{len(wrong)} VMs not in their last state: {list(wrong.items())[:5]}"
    # history back: what the API served before the kill is still there, and it grew since
    assert sum(map(len, history_before.values())) > 0
    for host, stamps in history_before.items():
        assert stamps <= history_after[host], f"host {host} lost history"
    assert any(max(s, default=0) > killed_at for s in history_after.values())
    # nothing acknowledged lost: per VM, the acknowledged changes appear in the journal in order
    sent: dict[int, list[str]] = defaultdict(list)
    for _host, _seq, changes in acked:
        for vm, state in changes:
            sent[vm].append(state)
    reader = StoreReader(collector.store_url)
    try:
        journal: dict[int, list[str]] = defaultdict(list)
        for change in reader.state_changes():
            if change.vm_id is not None and change.source == "state_vm":
                journal[change.vm_id].append(change.report)
    finally:
        reader.close()
    lost = {vm: (states, journal[vm]) for vm, states in sent.items()
            if not is_subsequence(states, journal[vm])}  # fmt: skip
    assert not lost, f"acknowledged changes missing from the journal: {list(lost.items())[:5]}"
    doubled = [vm for vm, reports in journal.items()
               if any(a == b for a, b in pairwise(reports))]  # fmt: skip
    assert not doubled, f"a state applied twice in a row: {doubled[:5]}"
