"""One collector name that resolves to several addresses: the agent fails over between them.

A real ``one-agent`` lists one name, ``collectors.onemon.test``, that its ``/etc/hosts`` (a
private mount namespace, ``tests/e2e/infra/hostsfile.py``) resolves to 127.0.0.2 and 127.0.0.3,
as a DNS name with two A records would. A real ``one-collector`` listens on each, same port.
The first is frozen (SIGSTOP): the kernel still completes TCP handshakes into its backlog, so the
agent connects and only the missing acknowledgements tell it that collector is dead. The agent
must move to the second address of the name (its host MONITORED there), and, when that one is
killed and the first thawed, back to the first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e import stack
from tests.e2e.infra import hostsfile

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0" or os.geteuid() != 0,
    reason="ONEMON_E2E=0 skips the e2e tier; a private /etc/hosts needs root",
)

HOST = 81
NAME = "collectors.onemon.test"
FIRST, SECOND = "127.0.0.2", "127.0.0.3"
ACK_TIMEOUT = 3.0
BOUND = 15.0
"""Seconds to reach the other address: an ack timeout, a back-off step, a connect, a report."""


def collector_on(directory: Path, key: Path, address: str, port: int) -> stack.CollectorProcess:
    """A collector listening on ``address``:``port`` (its HTTP API on 127.0.0.1)."""
    return stack.collector(directory, key, [(HOST, f"node{HOST}")], port=port,
                           extra={"listen": {"address": address}})  # fmt: skip


def monitored_since(collector: stack.CollectorProcess, since: float) -> bool:
    """True once the host is MONITORED on ``collector`` with a report after ``since``."""
    host = collector.host(HOST)
    return bool(host["state"] == "MONITORED" and host["last_seen"] > since)


def test_agent_fails_over_between_the_addresses_of_one_name(tmp_path: Path) -> None:
    key = stack.make_key(tmp_path)
    port = stack.free_port()
    first = collector_on(tmp_path / "first", key, FIRST, port)
    second = collector_on(tmp_path / "second", key, SECOND, port)
    hosts = hostsfile.write(tmp_path / "hosts", [(FIRST, NAME), (SECOND, NAME)])
    agent = stack.agent(tmp_path / "agent", key, HOST, [f"{NAME}:{port}"],
                        extra={"libvirt_uri": stack.empty_node(tmp_path / "node.xml"),
                               "send": {"ack_timeout": ACK_TIMEOUT}})  # fmt: skip
    agent.argv = hostsfile.argv(hosts, agent.argv)
    started: list[stack.Process] = []
    try:
        stack.start_ready((first, second), started)
        first.signal(signal.SIGSTOP)
        begin = time.time()
        agent.start()
        started.append(agent)
        stack.wait_until(lambda: monitored_since(second, begin), 30,
                         "the host MONITORED through the name's second address")  # fmt: skip
        to_second = time.time() - begin

        first.signal(signal.SIGCONT)
        second.kill()
        killed = time.time()
        stack.wait_until(lambda: monitored_since(first, killed + 1), 30,
                         "the agent back on the name's first address")  # fmt: skip
        to_first = time.time() - killed
        log = agent.output()
    finally:
        for process in reversed(started):
            with contextlib.suppress(Exception):
                process.kill()
    print(f"\none name, two addresses: first frozen -> second reached in {to_second:.1f} s; "
          f"second killed -> first reached in {to_first:.1f} s")
    assert "hostsfile launcher" not in log, log[-2000:]
    assert f"connected to collector {NAME}:{port} ({SECOND}" in log, log[-3000:]
    assert f"connected to collector {NAME}:{port} ({FIRST}" in log, log[-3000:]
    assert to_second < BOUND
    assert to_first < BOUND
