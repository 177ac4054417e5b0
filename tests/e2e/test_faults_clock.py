"""A node's clock stepped back an hour: the host stays monitored and its figures keep updating.

The agent runs under a fake wall clock (no faketime: a wrapper replaces ``time.time`` before
onemon is imported, and SIGUSR2 steps it back 3600 s while the agent runs), reporting containers
of a fake LXC tree. The native wire orders by (boot id, seq), so the collector must not care;
OpenNebula's legacy wire would drop the host's reports for an hour (reference §1.5, #6039).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.fleet_agent import FakeLxc
from tests.e2e import stack

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

HOST = 41
SYNC = 1.5
WINDOW = 6.0
WRAPPER = """\
import runpy, signal, sys, time

_real = time.time
_offset = [0.0]
def _fake():
    return _real() - _offset[0]
def _step(signum, frame):
    _offset[0] += 3600.0
time.time = _fake
signal.signal(signal.SIGUSR2, _step)
sys.argv = ["one-agent", *sys.argv[1:]]
runpy.run_module("onemon.agent.cli", run_name="__main__", alter_sys=True)
"""


@dataclass
class Stepped:
    """What the collector showed before and after the agent's clock stepped back."""

    before: dict[str, Any]
    after: list[dict[str, Any]] = field(default_factory=list)
    vm_before: dict[str, Any] = field(default_factory=dict)
    vm_after: dict[str, Any] = field(default_factory=dict)
    frozen_report: str = ""
    state_messages: tuple[int, int] = (0, 0)
    """STATE_VM messages applied in the window before the step, and in the one after it."""
    agent_alive: bool = True


def state_count(collector: stack.CollectorProcess) -> int:
    """STATE_VM messages applied so far."""
    return int(collector.get("/api/v1/health")["messages"].get("STATE_VM/native/tcp", 0))


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stepped]:
    work = tmp_path_factory.mktemp("clock")
    key = stack.make_key(work)
    lxc = FakeLxc(work / "cgroup")
    lxc.start(101)
    lxc.start(102)
    collector = stack.collector(work / "c", key, [(HOST, f"node{HOST}")])
    periods = {**stack.FAST_PERIODS, "monitor_host": 1, "monitor_vm": 1, "state_vm": 0.5,
               "sync_state_vm": SYNC, "beacon_host": 1, "system_host": 3}  # fmt: skip
    (work / "probes").mkdir()
    agent = stack.agent(
        work / "a", key, HOST, [f"127.0.0.1:{collector.port}"], hypervisor="lxc",
        periods=periods, extra={"probes": {"tree": str(work / "probes"), "cgroupfs": str(lxc.root)}},
    )  # fmt: skip
    wrapper = work / "clockshift.py"
    wrapper.write_text(WRAPPER)
    agent.argv = [sys.executable, str(wrapper), *agent.argv[3:]]  # python wrapper -c <config>
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "MONITORED")
        stack.wait_until(lambda: collector.vm(102)["report"] == "RUNNING", 20, "VMs RUNNING")
        count = state_count(collector)
        time.sleep(WINDOW)
        before_window = state_count(collector) - count
        result = Stepped(collector.host(HOST), vm_before=collector.vm(101)["monitoring"])
        agent.signal(signal.SIGUSR2)  # the node's clock steps back an hour
        count = state_count(collector)
        time.sleep(1.0)
        lxc.freeze(102)  # a state change made after the step
        deadline = time.monotonic() + WINDOW - 1.0
        while time.monotonic() < deadline:
            lxc.tick()
            result.after.append(collector.host(HOST))
            time.sleep(0.5)
        result.state_messages = (before_window, state_count(collector) - count)
        result.vm_after = collector.vm(101)["monitoring"]
        result.frozen_report = str(collector.vm(102)["report"])
        assert agent.proc is not None
        result.agent_alive = agent.proc.poll() is None
        yield result
    finally:
        agent.kill()
        collector.kill()


def test_host_stays_monitored_and_its_figures_update_after_the_clock_steps_back(
    stepped: Stepped,
) -> None:
    assert stepped.agent_alive
    assert [h["state"] for h in stepped.after] == ["MONITORED"] * len(stepped.after)
    last = stepped.after[-1]
    assert last["last_monitored"] > stepped.before["last_monitored"]  # MONITOR_HOST applied
    sent = [h["agent"]["MESSAGES_SENT"] for h in (stepped.before, last)]
    assert sent[1] > sent[0]  # the agent's own figures moved
    assert stepped.vm_after["CPU_TIME_NS"] > stepped.vm_before["CPU_TIME_NS"]  # MONITOR_VM too
    assert stepped.frozen_report == "UNKNOWN"  # and a state change made after the step


def test_full_state_syncs_continue_after_the_clock_steps_back(stepped: Stepped) -> None:
    before, after = stepped.state_messages
    assert before >= WINDOW / SYNC - 1  # syncs every SYNC seconds
    assert after >= WINDOW / SYNC - 1 + 1  # the same, plus the freeze
