"""Built-in LXC probes on fixture cgroup trees (v1, v2 and this machine's hybrid layout)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from onemon.agent.probes.lxc_vms import CgroupLayout, LxcVms, vm_states
from onemon.agent.probes.roots import Roots
from onemon.agent.probes.vm_state import lxc_state
from onemon.wire.model import values

TREES = Path(__file__).resolve().parents[2] / "fixtures" / "lxc"


def probe(tree: Path) -> LxcVms:
    """An LxcVms reading the fixture tree ``tree``."""
    roots = Roots(procfs=str(tree / "proc"), sysfs=str(tree / "sys"), cgroupfs=str(tree / "cgroup"))
    return LxcVms(roots, lxc_path=str(tree / "lxc"))


@pytest.fixture
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A writable copy of the fixture tree named by the test's parameter."""
    name: str = request.param
    dest = tmp_path / name
    shutil.copytree(TREES / name, dest)
    return dest


def by_id(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["ID"]: e for e in entries}


@pytest.mark.parametrize(
    ("name", "pure_v2", "cpuacct"),
    [("v1", False, "cpu,cpuacct"), ("v2", True, None), ("hybrid", False, "cpuacct")],
)
def test_layout_detection(name: str, pure_v2: bool, cpuacct: str | None) -> None:
    lay = CgroupLayout.detect(str(TREES / name / "cgroup"))
    assert lay.pure_v2 is pure_v2
    assert (lay.cpuacct and Path(lay.cpuacct).name) == cpuacct
    if name == "hybrid":
        assert lay.unified is not None and lay.unified.endswith("unified")


def test_lxc_state_map() -> None:
    assert [lxc_state(s) for s in ("RUNNING", "STARTING", "STOPPING", "ABORTING", "STOPPED")] == [
        "RUNNING", "RUNNING", "RUNNING", "FAILURE", "POWEROFF",
    ]  # fmt: skip
    assert lxc_state("FROZEN") == "UNKNOWN"


def test_v1_containers_and_states() -> None:
    vms = probe(TREES / "v1")
    found = [(c.name, c.state, c.cgroup) for c in vms.containers()]
    assert found == [
        ("one-100", "RUNNING", "lxc.payload.one-100"),
        ("one-101", "FROZEN", "lxc/one-101"),  # legacy layout; lxc.monitor.* is not a container
    ]
    states = [(s.vm_id, s.deploy_id, s.state) for s in vm_states(vms.containers())]
    assert states == [(100, "one-100", "RUNNING"), (101, "one-101", "UNKNOWN")]


def test_v2_containers_skip_leftovers_and_wilds() -> None:
    vms = probe(TREES / "v2")
    found = [(c.name, c.state, c.vm_id) for c in vms.containers()]
    assert found == [
        ("one-100", "RUNNING", 100),
        ("one-101", "FROZEN", 101),
        ("web", "RUNNING", -1),
    ]
    assert [s.vm_id for s in vm_states(vms.containers())] == [100, 101]
    assert set(by_id(vms.sample(now=1.0))) == {100, 101}


@pytest.mark.parametrize("tree", ["v1", "v2", "hybrid"], indirect=True)
def test_figures_from_two_samples(tree: Path) -> None:
    vms = probe(tree)
    first = by_id(vms.sample(now=10.0))[100]
    assert first["DEPLOY_ID"] == "one-100"
    mon = first["MONITOR"]
    assert "CPU" not in mon  # first sighting
    assert mon["MEMORY"] == 10240  # 10 MiB in KB
    assert mon["CPU_TIME_NS"] in (5_000_000_000, 4_999_000_000)
    assert mon["NETRX"] >= 9000  # host veth tx_bytes = what the container received
    assert mon["NETTX"] >= 7000

    cg = tree / "cgroup"
    for usage in cg.glob("**/lxc.payload.one-100/cpuacct.usage"):
        usage.write_text("7500000000\n")  # +2.5 s
    for stat in cg.glob("**/lxc.payload.one-100/cpu.stat"):
        if not list(cg.glob("**/lxc.payload.one-100/cpuacct.usage")):
            stat.write_text("usage_usec 7500000\n")
    second = by_id(vms.sample(now=15.0))[100]["MONITOR"]
    assert second["CPU"] == 50.0  # percent of one core over 5 s


@pytest.mark.parametrize("tree", ["v1", "v2"], indirect=True)
def test_net_sums_swap_rx_and_tx(tree: Path) -> None:
    mon = by_id(probe(tree).sample(now=1.0))[100]["MONITOR"]
    nics = values(mon, "NIC")
    if tree.name == "v2":
        assert [n["TARGET"] for n in nics] == ["one-100-0", "one-100-1"]
        assert (mon["NETRX"], mon["NETTX"]) == (9000 + 300, 7000 + 100)
    else:
        assert (mon["NETRX"], mon["NETTX"]) == (9000, 7000)
    assert nics[0] == {"ID": 0, "TARGET": "one-100-0", "RX_BYTES": 9000, "TX_BYTES": 7000}


def test_frozen_container_reports_zero_io_as_opennebula() -> None:
    mon = by_id(probe(TREES / "v1").sample(now=1.0))[101]["MONITOR"]
    assert (mon["NETRX"], mon["NETTX"]) == (0, 0)
    assert mon["MEMORY"] == 2048
    assert mon["CPU_TIME_NS"] == 5_000_000_000  # cpuacct.stat: 500 ticks of 10 ms


@pytest.mark.parametrize("tree", ["v2"], indirect=True)
def test_container_gone_is_forgotten(tree: Path) -> None:
    vms = probe(tree)
    vms.sample(now=1.0)
    events = tree / "cgroup" / "lxc.payload.one-101" / "cgroup.events"
    events.write_text("populated 0\nfrozen 0\n")
    assert set(by_id(vms.sample(now=2.0))) == {100}
    assert len(vms._cpu) == 1


@pytest.mark.parametrize("tree", ["v2"], indirect=True)
def test_hostile_veth_names_are_ignored(tree: Path) -> None:
    config = tree / "lxc" / "one-100" / "config"
    config.write_text("lxc.net.0.veth.pair = ../../../etc\nlxc.net.1.veth.pair = ..\n")
    mon = by_id(probe(tree).sample(now=1.0))[100]["MONITOR"]
    assert "NIC" not in mon
    assert (mon["NETRX"], mon["NETTX"]) == (0, 0)


def test_missing_trees_give_nothing(tmp_path: Path) -> None:
    vms = probe(tmp_path)
    assert vms.containers() == []
    assert vms.sample() == []
