"""MONITOR_HOST figures from the fixture procfs/sysfs: exact values, names and units."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from onemon.agent.probes.host_monitor import (
    NIC_NAMES,
    HostMonitor,
    is_physical_nic,
    read_cpu,
    read_meminfo,
)
from onemon.agent.probes.roots import Roots

FIXTURE = Path(__file__).parents[2] / "fixtures" / "host"
ROOTS = Roots(
    procfs=str(FIXTURE / "proc"), sysfs=str(FIXTURE / "sys"), cgroupfs=str(FIXTURE / "cgroup")
)

PHYSICAL = [
    "eth0",
    "eth1",
    "eno1",
    "ens1f0",
    "enp3s0f1",
    "enP2p1s0",
    "p2p1",
    "em1",
    "enx001122334455",
    "ib0",
    "wlp2s0",
]
VIRTUAL = [
    "lo",
    "eth0.100",
    "br0",
    "virbr0",
    "bond0",
    "vnet0",
    "tap0",
    "veth1a2b3c",
    "eth9",
    "docker0",
    "ifb0",
    "one-7-0",
]


@pytest.fixture
def roots(tmp_path: Path) -> Roots:
    """A writable copy of the fixture procfs."""
    shutil.copytree(FIXTURE / "proc", tmp_path / "proc")
    return Roots(procfs=str(tmp_path / "proc"), sysfs=ROOTS.sysfs, cgroupfs=ROOTS.cgroupfs)


def test_read_cpu_and_meminfo() -> None:
    assert read_cpu(ROOTS.procfs) == (10000, 8000, 8)  # guest time is inside user already
    assert read_meminfo(ROOTS.procfs) == {
        "MemTotal": 16777216,
        "MemFree": 8000000,
        "Buffers": 100000,
        "Cached": 2000000,
    }


@pytest.mark.parametrize("name", PHYSICAL)
def test_physical_nics(name: str) -> None:
    assert is_physical_nic(ROOTS.sysfs, name)


@pytest.mark.parametrize("name", VIRTUAL)
def test_virtual_nics(name: str) -> None:
    assert not is_physical_nic(ROOTS.sysfs, name)


def test_nic_names_match_whole_names() -> None:
    # OpenNebula anchors only its first alternative, so "eth0.100" and "vnet_ib0" matched there.
    for name in (
        "eth0",
        "ib1",
        "em1_2",
        "p2p1",
        "eno1d1",
        "ens1f0np0",
        "enx0011223344ff",
        "enP1p2s3f4",
        "enp3s0",
        "enaabcdi0",
    ):
        assert NIC_NAMES.fullmatch(name), name
    for name in ("eth0.100", "vnet_ib0", "br0", "bond0", "enx00", "veth0", "lo"):
        assert not NIC_NAMES.fullmatch(name), name


def test_collect_exact(roots: Roots) -> None:
    t = HostMonitor(roots, "kvm").collect()
    assert list(t) == [
        "HYPERVISOR",
        "USEDMEMORY",
        "FREEMEMORY",
        "FREECPU",
        "USEDCPU",
        "NETRX",
        "NETTX",
        "HUGEPAGE",
        "MEMORY_NODE",
    ]
    assert t["HYPERVISOR"] == "kvm"
    assert t["USEDMEMORY"] == 16777216 - 8000000 - 100000 - 2000000  # KB
    assert t["FREEMEMORY"] == 8000000 + 100000 + 2000000
    # no tick since the monitor was built: since-boot split, idle 8000 of 10000 jiffies
    assert (t["FREECPU"], t["USEDCPU"]) == (640, 160)
    # physical NICs are k = 1..11 with rx = 2**k, tx = 3 * 2**k; eth1 adds 2**40 / 2**41
    assert t["NETRX"] == 2**12 - 2 + 2**40
    assert t["NETTX"] == 3 * (2**12 - 2) + 2**41
    assert t["HUGEPAGE"][1] == {"NODE_ID": 0, "SIZE": 1048576, "FREE": 2}
    assert t["MEMORY_NODE"][1] == {"NODE_ID": 1, "FREE": 6291456, "USED": 2097152}
    for name in ("USEDMEMORY", "FREEMEMORY", "FREECPU", "USEDCPU", "NETRX", "NETTX"):
        assert type(t[name]) is int, name


def test_cpu_from_deltas(roots: Roots) -> None:
    monitor = HostMonitor(roots)
    stat = Path(roots.procfs) / "stat"
    lines = stat.read_text().splitlines(keepends=True)
    # +200 user, +100 system, +600 idle, +50 iowait, +50 steal, +400 guest (inside user)
    lines[0] = "cpu  1200 0 600 8600 350 50 50 150 800 0\n"
    stat.write_text("".join(lines))
    t = monitor.collect()
    assert (t["FREECPU"], t["USEDCPU"]) == (480, 320)  # 60 % idle of 8 CPUs
    t = monitor.collect()  # no tick since: since-boot split again
    assert (t["FREECPU"], t["USEDCPU"]) == (int(800 * 8600 / 11000 + 0.5), 800 - 625)


def test_cpu_counters_going_back(roots: Roots) -> None:
    stat = Path(roots.procfs) / "stat"
    monitor = HostMonitor(roots)
    stat.write_text(stat.read_text().replace("cpu  1000 0 500 8000", "cpu  1000 0 500 7000", 1))
    t = monitor.collect()
    assert 0 <= t["USEDCPU"] <= 800
    assert t["FREECPU"] + t["USEDCPU"] == 800


def test_nic_cache_follows_interfaces(roots: Roots) -> None:
    monitor = HostMonitor(roots)
    first = monitor.collect()["NETRX"]
    dev = Path(roots.procfs) / "net" / "dev"
    dev.write_text(
        "".join(
            line
            for line in dev.read_text().splitlines(keepends=True)
            if not line.lstrip().startswith("eno1:")
        )
    )
    assert monitor.collect()["NETRX"] == first - 2**3
    assert "eno1" not in monitor._physical


def test_missing_procfs_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        HostMonitor(Roots(procfs=str(tmp_path), sysfs=str(tmp_path), cgroupfs=str(tmp_path)))
