"""``promtool check metrics`` (Prometheus's own parser and linter) on real rendered bodies."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from metrics_states import HOSTILE_NAMES, rich_state

from onemon.collector.metrics import Renderer
from onemon.collector.model import Host, HostState, Vm

PROMTOOL = shutil.which("promtool")

ACCEPTED = {
    'opennebula_host_total non-counter metrics should not have "_total" suffix',
    'opennebula_vm_total non-counter metrics should not have "_total" suffix',
}
"""Lint findings we keep on purpose: OpenNebula's exporter names (reference §6.2)."""

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)


def promtool(body: bytes) -> set[str]:
    """promtool's findings; fails the test on a parse error."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode in (0, 3), output  # 1: parse error; 3: lint findings only
    return {line.strip() for line in output.splitlines() if line.strip()}


def test_rich_body_passes_promtool(renderer: Renderer) -> None:
    renderer.health.message("MONITOR_HOST", "legacy", "udp")
    assert promtool(renderer.render(*rich_state()).body) <= ACCEPTED


def test_hostile_body_passes_promtool(renderer: Renderer) -> None:
    hosts = {i: Host(i, name, HostState.ERROR) for i, name in enumerate(HOSTILE_NAMES)}
    vms = {
        i: Vm(
            i,
            i,
            deploy_id=name,
            monitoring={
                "NIC": {"ID": name, "TARGET": name, "RX_BYTES": 10**30},
                "DISK": {"ID": 0, "NAME": name, "RD_TIME_NS": 10**400, "WR_TIME_NS": "nan"},
                "CPU": float("inf"),
                "MEMORY": "12 KB",
            },
        )
        for i, name in enumerate(HOSTILE_NAMES)
    }
    renderer.health.message('ty"pe\n', "f\\", "\udcff")
    renderer.health.reject("x" * 4096)
    assert promtool(renderer.render(hosts, vms).body) <= ACCEPTED
