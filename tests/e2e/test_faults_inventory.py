"""Hostile inventory: names with quotes, newlines, ``$()``, 4 KB, invalid UTF-8, end to end.

They come from everywhere an agent reads names: libvirt domains (the ``test:///`` driver with a
node file of our own, wild domains included), exec probes' output (host/system wild VMs and
HOSTNAME, vm/status DEPLOY_IDs, raw non-UTF-8 bytes) and the agent's own host name, which every
probe of the shipped tree gets as an argument. Each string would create a canary file if any
shell evaluated it. Asserted: no canary ever appears; the host stays monitored; ``/metrics``
passes ``promtool check metrics`` and parses; every label value is bounded and every series has
few labels; the hostile VMs are there with their names kept.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.fleet_agent import write_probe
from onemon.agent.config import SHIPPED_PROBES
from onemon.collector.metrics.text import MAX_LABEL_CHARS
from tests.e2e import stack

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

HOST = 71
PROMTOOL_ACCEPTED = {
    'opennebula_host_total non-counter metrics should not have "_total" suffix',
    'opennebula_vm_total non-counter metrics should not have "_total" suffix',
}
"""Lint findings kept on purpose (OpenNebula's exporter names; tests/collector/metrics)."""
TOKEN = uuid.uuid4().hex[:10]


def hostile(canary: str) -> list[str]:
    """Strings that run ``touch <canary>`` wherever a shell evaluates them."""
    return [
        f"q\"uote's $(touch {canary})",
        f"back`touch {canary}`tick",
        f"semi; touch {canary}; #",
        f"pipe | touch {canary} && touch {canary}",
        f"new\nline $(touch {canary})\n",
        "brackets ]] > [x] \\ \\\\ =",
        "é✓😀 ünïcödé",
        "w" * 4096,
    ]


def template_text(value: str) -> str:
    """A double-quoted template value (only \\" is an escape, as in OpenNebula)."""
    return '"' + value.replace('"', '\\"') + '"'


def shell_literal(text: str) -> str:
    """``text`` as a single-quoted sh literal (for probes printing it verbatim)."""
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class Seen:
    """What the collector showed with hostile inventory."""

    canaries: list[Path]
    appeared: list[str]
    host: dict[str, object]
    vms: dict[int, dict[str, object]]
    metrics: str
    promtool: subprocess.CompletedProcess[bytes] | None


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    work = tmp_path_factory.mktemp("inventory")
    canary = work / f"canary-{TOKEN}"
    relative = f"onemon-canary-{TOKEN}"  # libvirt names cannot hold '/'
    canaries = [canary, stack.REPO / relative, work / relative]
    names = hostile(str(canary))
    # libvirt: one-9201 plus wild domains with hostile names
    domains = [("one-9201", str(uuid.uuid4()))]
    domains += [(n, str(uuid.uuid4())) for n in hostile(relative) if "/" not in n]
    domains.append(("cdata ]]> end", str(uuid.uuid4())))  # exec output may not hold it; libvirt may
    node = work / "node.xml"
    node.write_text("<node>\n" + "".join(
        f'<domain type="test"><name>{escape(n)}</name><uuid>{u}</uuid><memory>1024</memory>'
        f"<vcpu>1</vcpu><os><type>hvm</type></os></domain>\n" for n, u in domains
    ) + "</node>\n")  # fmt: skip
    # the shipped probe tree plus probes printing hostile inventory
    tree = work / "probes"
    shutil.copytree(SHIPPED_PROBES, tree)
    wild = "".join(
        f"VM=[ID=-1,VM_NAME={template_text(n)},DEPLOY_ID={template_text(n)},"
        f"IMPORT_TEMPLATE={template_text(base64.b64encode(n.encode()).decode())}]\n"
        for n in names
    )
    system = f"HOSTNAME={template_text(names[0])}\nNOTE={template_text(names[4])}\n{wild}"
    write_probe(tree, "kvm", "host/system", "zz-hostile",
                f"#!/bin/sh\nprintf '%s' {shell_literal(system)}\n"
                "printf 'RAW=\"\\377\\376 not utf-8 \\300\"\\n'\n")  # fmt: skip
    states = "".join(
        f"VM=[ID={9101 + i},DEPLOY_ID={template_text(n)},STATE=RUNNING]\n"
        for i, n in enumerate(names)
    )
    write_probe(tree, "kvm", "vm/status", "zz-hostile",
                f"#!/bin/sh\nprintf '%s' {shell_literal(states)}\n"
                "printf 'VM=[ID=9199,DEPLOY_ID=\"\\377bad\\376\",STATE=RUNNING]\\n'\n")  # fmt: skip
    key = stack.make_key(work)
    collector = stack.collector(work / "c", key, [(HOST, "node71")])
    agent = stack.agent(
        work / "a", key, HOST, [f"127.0.0.1:{collector.port}"],
        periods={**stack.FAST_PERIODS, "system_host": 2, "sync_state_vm": 2},
        extra={"libvirt_uri": f"test://{node}", "host_name": names[3],
               "probes": {"tree": str(tree)}},
    )  # fmt: skip
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "MONITORED")
        ids = [9201, *range(9101, 9101 + len(names)), 9199]
        stack.wait_until(lambda: all(vm_or_none(collector, i) for i in ids), 20, "hostile VMs")
        stack.wait_until(lambda: collector.host(HOST)["wilds"], 20, "wild VMs")
        time.sleep(2.5)  # another cycle of every group, and a render of /metrics
        body = collector.metrics()
        checked = None
        if shutil.which("promtool"):
            checked = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                                     capture_output=True, timeout=60, check=False)  # fmt: skip
        result = Seen(
            canaries, [str(c) for c in canaries if c.exists()], collector.host(HOST),
            {i: collector.vm(i) for i in ids}, body, checked,
        )  # fmt: skip
        assert agent.proc is not None and agent.proc.poll() is None, agent.output()[-2000:]
        yield result
    finally:
        agent.kill()
        collector.kill()
        for path in canaries:
            path.unlink(missing_ok=True)


def vm_or_none(collector: stack.CollectorProcess, vm_id: int) -> dict[str, object] | None:
    """A VM from the API, None while unknown."""
    try:
        return collector.vm(vm_id)
    except OSError:
        return None


def test_no_shell_ever_ran_a_name(seen: Seen) -> None:
    assert seen.appeared == []


def test_host_stays_monitored_and_names_are_kept(seen: Seen) -> None:
    assert seen.host["state"] == "MONITORED"
    template = seen.host["template"]
    assert isinstance(template, dict)
    assert template["HOSTNAME"] == hostile(str(seen.canaries[0]))[0]
    assert "\ufffd" in str(template["RAW"])  # invalid UTF-8 arrives replaced, not dropped
    assert seen.vms[9201]["report"] == "RUNNING"
    deploy_ids = [str(seen.vms[9101 + i]["deploy_id"]) for i in range(8)]
    assert deploy_ids == hostile(str(seen.canaries[0]))
    wilds = seen.host["wilds"]
    assert isinstance(wilds, list)
    assert {str(w["VM_NAME"]) for w in wilds} >= set(hostile(str(seen.canaries[0])))


def test_metrics_stay_valid_for_promtool_and_labels_bounded(seen: Seen) -> None:
    if seen.promtool is None:
        pytest.skip("promtool is not installed")
    findings = {line.strip() for line in (seen.promtool.stdout + seen.promtool.stderr).decode(
        errors="replace").splitlines() if line.strip()}  # fmt: skip
    assert seen.promtool.returncode in (0, 3), findings  # 1 would be a parse error
    assert findings <= PROMTOOL_ACCEPTED, findings
    series = 0
    deploy_ids: dict[str, str] = {}
    for family in text_string_to_metric_families(seen.metrics):
        for sample in family.samples:
            series += 1
            assert len(sample.labels) <= 10, sample
            for value in sample.labels.values():
                assert len(value) <= MAX_LABEL_CHARS + 1, (sample.name, value[:60])
            if sample.name == "opennebula_vm_info":
                deploy_ids[sample.labels["one_vm_id"]] = sample.labels["deploy_id"]
    assert deploy_ids["9108"].startswith("w" * 100)  # the 4 KB name, cut and marked
    assert len(deploy_ids["9108"]) <= MAX_LABEL_CHARS + 1
    assert deploy_ids["9105"].startswith("new\nline")  # a newline, escaped then parsed back
    assert series > 100


def test_many_wild_domains_are_all_reported(tmp_path: Path) -> None:
    """A SYSTEM_HOST larger than a datagram once lost wild VMs (split along VM, each part
    replacing the last); it now travels whole over TCP (16b6551)."""
    node = tmp_path / "node.xml"
    node.write_text("<node>\n" + "".join(
        f'<domain type="test"><name>imported-by-hand-{n:02d}</name><uuid>{uuid.uuid4()}</uuid>'
        f"<memory>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>\n"
        for n in range(20)
    ) + "</node>\n")  # fmt: skip
    (tmp_path / "probes").mkdir()
    key = stack.make_key(tmp_path)
    collector = stack.collector(tmp_path / "c", key, [(HOST, "node71")])
    agent = stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"],
                        extra={"libvirt_uri": f"test://{node}",
                               "probes": {"tree": str(tmp_path / "probes")}})  # fmt: skip
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "MONITORED")
        time.sleep(2)
        wilds = collector.host(HOST)["wilds"]
    finally:
        agent.kill()
        collector.kill()
    assert len(wilds) == 20, f"{len(wilds)} wild VMs of 20"


def test_an_opennebula_vm_monitor_probe_reaches_the_collector(tmp_path: Path) -> None:
    """OpenNebula's vm/monitor format (base64 MONITOR) was once dropped on the native wire;
    the agent now decodes it (32c1015)."""
    tree = tmp_path / "probes"
    monitor = base64.b64encode(b"CPU=12.5\nMEMORY=2048\nNETRX=77\n").decode()
    write_probe(tree, "kvm", "vm/monitor", "poll",
                f'#!/bin/sh\necho \'VM=[ID=9301,DEPLOY_ID="d9301",MONITOR="{monitor}"]\'\n')  # fmt: skip
    key = stack.make_key(tmp_path)
    collector = stack.collector(tmp_path / "c", key, [(HOST, "node71")])
    agent = stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"],
                        extra={"libvirt_uri": "test:///default", "probes": {"tree": str(tree)}})  # fmt: skip
    collector.start()
    try:
        collector.wait_ready()
        agent.start()
        stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "MONITORED")
        time.sleep(3)  # monitor_vm runs every 2 s
        found = vm_or_none(collector, 9301)
    finally:
        agent.kill()
        collector.kill()
    assert found is not None
    monitoring = found["monitoring"]
    assert isinstance(monitoring, dict)
    assert float(monitoring["CPU"]) == 12.5 and int(monitoring["NETRX"]) == 77
