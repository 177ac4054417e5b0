"""A collector that vanishes without a word (host down, network cut) while the agent's link is idle.

The agent runs in a network namespace and lists collectors A then B, both in the root namespace.
Its periods leave the acknowledged TCP link idle (no state changes, the system report every 10
minutes) while datagrams (beacons, host monitoring every second) follow that link to A. Then
every packet to A is dropped inside the namespace: no FIN, no RST, no error, as when A's machine
dies. TCP keepalives and the user timeout, sized from the ack timeout, must end the idle link,
and the agent's reports must reach B within a few ack timeouts; without them nothing would move
the agent until its next acknowledged message, ten minutes later.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e import stack
from tests.e2e.infra import netns

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

HOST = 91
ACK_TIMEOUT = 3.0
BOUND = 4 * ACK_TIMEOUT
"""Keepalive idle + probes (about ack_timeout), a back-off step, a connect, the next datagram."""
IDLE_LINK = {**stack.FAST_PERIODS, "beacon_host": 1, "monitor_host": 1, "system_host": 600,
             "sync_state_vm": 600, "exec_vm": 600}  # fmt: skip


def test_an_idle_link_to_a_vanished_collector_is_left_within_a_few_ack_timeouts(
    tmp_path: Path, netns_factory: Callable[[int], list[netns.Netns]]
) -> None:
    (ns,) = netns_factory(1)
    assert ns.host_ip is not None
    key = stack.make_key(tmp_path)
    listen = {"listen": {"address": ns.host_ip}}
    a = stack.collector(tmp_path / "a", key, [(HOST, f"node{HOST}")], extra=listen)
    b = stack.collector(tmp_path / "b", key, [(HOST, f"node{HOST}")], extra=listen)
    agent = stack.agent(tmp_path / "agent", key, HOST,
                        [f"{ns.host_ip}:{a.port}", f"{ns.host_ip}:{b.port}"], periods=IDLE_LINK,
                        extra={"libvirt_uri": stack.empty_node(tmp_path / "node.xml"),
                               "send": {"ack_timeout": ACK_TIMEOUT}})  # fmt: skip
    agent.argv = ns.argv(*agent.argv)
    rules = [["OUTPUT", "-d", ns.host_ip, "-p", proto, "--dport", str(a.port), "-j", "DROP"]
             for proto in ("tcp", "udp")]  # fmt: skip
    started: list[stack.Process] = []
    try:
        stack.start_ready((a, b), started)
        agent.start()
        started.append(agent)
        stack.wait_until(lambda: a.host(HOST)["state"] == "MONITORED", 30, "MONITORED on A")
        time.sleep(2 * ACK_TIMEOUT)  # the link is idle now: only datagrams flow, to A
        accepted_at_b = sum(b.get("/api/v1/health")["messages"].values())
        for rule in rules:
            ns.run("iptables", "-w", "-A", *rule)
        cut = time.time()
        stack.wait_until(lambda: b.host(HOST)["last_seen"] > cut, 3 * BOUND,
                         "the agent's reports at B")  # fmt: skip
        moved = time.time() - cut
        assert accepted_at_b == 0  # nothing reached B before the cut
        log = agent.output()
    finally:
        for rule in rules:
            with contextlib.suppress(Exception):
                ns.run("iptables", "-w", "-D", *rule, check=False)
        for process in reversed(started):
            with contextlib.suppress(Exception):
                process.kill()
    print(f"\nidle link to a vanished collector: reports at the next one after {moved:.1f} s "
          f"(ack timeout {ACK_TIMEOUT:g} s)")  # fmt: skip
    assert f"connected to collector {ns.host_ip}:{b.port}" in log, log[-3000:]
    assert moved < BOUND
