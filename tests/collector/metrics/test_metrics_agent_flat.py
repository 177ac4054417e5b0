"""The agent's self-metrics as one-agent really sends them (flat keys in the AGENT vector)."""

from __future__ import annotations

from onemon.collector.metrics.render import Renderer
from onemon.collector.model import Host


def test_flat_cycle_seconds_and_hypervisor_counter_are_exported() -> None:
    host = Host(id=7, name="n7")
    host.agent = {
        "CYCLE_SECONDS_MONITOR_VM": 0.25,
        "CYCLE_SECONDS_STATE_VM": "0.01",
        "HYPERVISOR_UNREACHABLE": 3,
        "SPOOL_MESSAGES": 2,
    }
    body = Renderer().render([host], []).body.decode()
    assert 'onemon_agent_cycle_seconds{one_host_id="7",group="monitor_vm"} 0.25' in body
    assert 'onemon_agent_cycle_seconds{one_host_id="7",group="state_vm"} 0.01' in body
    assert 'onemon_agent_hypervisor_unreachable_total{one_host_id="7"} 3' in body
    assert 'onemon_agent_spool_messages{one_host_id="7"} 2' in body
