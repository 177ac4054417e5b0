"""Contract of the host probes on this machine's real /proc and /sys, and through the wire."""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from onemon.agent.probes.datastores import MB
from onemon.agent.probes.host_monitor import HostMonitor
from onemon.agent.probes.host_system import collect_system
from onemon.agent.probes.roots import Roots
from onemon.wire.model import Message, MessageType, Status, Template, values

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux procfs")

FIXTURE = Path(__file__).parents[2] / "fixtures" / "host"
FIXTURE_ROOTS = Roots(
    procfs=str(FIXTURE / "proc"), sysfs=str(FIXTURE / "sys"), cgroupfs=str(FIXTURE / "cgroup")
)


def _is_int(value: Any) -> bool:
    return type(value) is int and value >= 0


@pytest.fixture(scope="module")
def system() -> Template:
    """SYSTEM_HOST of this machine."""
    return collect_system(Roots(), "kvm", "/var/lib/one/datastores", "1.2.3")


@pytest.fixture(scope="module")
def monitor_pair() -> tuple[Template, Template]:
    """Two MONITOR_HOST templates of this machine, 50 ms apart."""
    monitor = HostMonitor(Roots(), "kvm")
    first = monitor.collect()
    time.sleep(0.05)
    return first, monitor.collect()


def test_system_types_and_ranges(system: Template) -> None:
    for name in (
        "TOTALCPU",
        "CPUSPEED",
        "TOTALMEMORY",
        "DS_LOCATION_USED_MB",
        "DS_LOCATION_TOTAL_MB",
        "DS_LOCATION_FREE_MB",
    ):
        assert _is_int(system[name]), name
    assert system["ARCH"] == os.uname().machine
    assert system["HOSTNAME"] == os.uname().nodename
    assert system.get("CGROUPS_VERSION") in (1, 2, None)
    assert system["TOTALCPU"] == psutil.cpu_count() * 100
    assert system["TOTALMEMORY"] == psutil.virtual_memory().total // 1024
    assert system["DS_LOCATION_USED_MB"] <= system["DS_LOCATION_TOTAL_MB"]
    assert system["DS_LOCATION_FREE_MB"] <= system["DS_LOCATION_TOTAL_MB"]


def test_system_numa_consistent(system: Template) -> None:
    nodes = {m["NODE_ID"] for m in values(system, "MEMORY_NODE")}
    cores = values(system, "CORE")
    if cores:
        cpus = [int(c) for core in cores for c in core["CPUS"].split(",")]
        assert len(cpus) == len(set(cpus)) == psutil.cpu_count()
        assert {core["NODE_ID"] for core in cores} <= nodes
    for hp in values(system, "HUGEPAGE"):
        assert hp["NODE_ID"] in nodes
        assert _is_int(hp["SIZE"]) and hp["SIZE"] >= 4  # KB
        assert _is_int(hp["PAGES"])
    for mem in values(system, "MEMORY_NODE"):
        assert 0 < mem["TOTAL"] <= system["TOTALMEMORY"]
        assert sorted(int(n) for n in mem["DISTANCE"].split()) == sorted(nodes)
        assert int(mem["DISTANCE"].split()[0]) == mem["NODE_ID"]


def test_monitor_types_and_consistency(
    system: Template, monitor_pair: tuple[Template, Template]
) -> None:
    first, second = monitor_pair
    for t in monitor_pair:
        for name in ("USEDMEMORY", "FREEMEMORY", "FREECPU", "USEDCPU", "NETRX", "NETTX"):
            assert _is_int(t[name]), name
        assert t["USEDMEMORY"] + t["FREEMEMORY"] == system["TOTALMEMORY"]
        assert 0 <= t["USEDCPU"] <= system["TOTALCPU"]
        assert t["FREECPU"] + t["USEDCPU"] == system["TOTALCPU"]
    assert second["NETRX"] >= first["NETRX"]
    assert second["NETTX"] >= first["NETTX"]
    counters = psutil.net_io_counters(pernic=True)
    assert second["NETRX"] <= sum(c.bytes_recv for n, c in counters.items() if n != "lo")
    assert second["NETTX"] <= sum(c.bytes_sent for n, c in counters.items() if n != "lo")


def test_monitor_numa_matches_system(
    system: Template, monitor_pair: tuple[Template, Template]
) -> None:
    _, t = monitor_pair
    sizes = {(h["NODE_ID"], h["SIZE"]): h["PAGES"] for h in values(system, "HUGEPAGE")}
    for hp in values(t, "HUGEPAGE"):
        assert 0 <= hp["FREE"] <= sizes[(hp["NODE_ID"], hp["SIZE"])]
    totals = {m["NODE_ID"]: m["TOTAL"] for m in values(system, "MEMORY_NODE")}
    assert {m["NODE_ID"] for m in values(t, "MEMORY_NODE")} == set(totals)
    for mem in values(t, "MEMORY_NODE"):
        assert _is_int(mem["FREE"]) and _is_int(mem["USED"])
        assert mem["FREE"] + mem["USED"] == totals[mem["NODE_ID"]]


def _templates(system: Template, monitor_pair: tuple[Template, Template]) -> list[Template]:
    fixture = HostMonitor(FIXTURE_ROOTS, "kvm").collect()
    fixture_system = collect_system(FIXTURE_ROOTS, "kvm", str(FIXTURE), "1.2.3")
    return [system, monitor_pair[1], fixture, fixture_system]


def test_native_wire_round_trip(system: Template, monitor_pair: tuple[Template, Template]) -> None:
    native = pytest.importorskip("onemon.wire.native")
    keys = importlib.import_module("onemon.wire.keys")
    key = keys.Key("k", b"s" * 32)
    for kind, t in zip(
        [MessageType.SYSTEM_HOST, MessageType.MONITOR_HOST] * 2,
        _templates(system, monitor_pair),
        strict=True,
    ):
        data = native.encode(Message(kind, Status.SUCCESS, 7, 1.0, t), key, b"b" * 16, 1)
        assert native.decode(data, keys.KeyRing.single(key)).message.payload == t


def _as_text(value: Any) -> Any:
    """A value as the template language carries it: every scalar as text."""
    if isinstance(value, dict):
        return {k: _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return str(value)


@pytest.mark.skipif(
    importlib.util.find_spec("onemon.wire.template") is None,
    reason="onemon.wire.template not written yet",
)
def test_template_language_round_trip(
    system: Template, monitor_pair: tuple[Template, Template]
) -> None:
    template = importlib.import_module("onemon.wire.template")
    for t in _templates(system, monitor_pair):
        assert _as_text(template.parse(template.write(t))) == _as_text(t)


def test_ds_location_matches_statvfs(system: Template) -> None:
    path = "/var/lib/one/datastores"
    while not os.path.exists(path):
        path = os.path.dirname(path)
    assert system["DS_LOCATION_TOTAL_MB"] == -(-psutil.disk_usage(path).total // MB)
