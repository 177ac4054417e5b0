"""SYSTEM_HOST figures from the fixture procfs/sysfs: exact values, OpenNebula's names and units."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from onemon.agent.probes.host_system import cgroups_version, collect_system, cpu_model, cpu_speed
from onemon.agent.probes.roots import Roots

FIXTURE = Path(__file__).parents[2] / "fixtures" / "host"
ROOTS = Roots(
    procfs=str(FIXTURE / "proc"), sysfs=str(FIXTURE / "sys"), cgroupfs=str(FIXTURE / "cgroup")
)


@pytest.fixture
def system(tmp_path: Path) -> dict[str, object]:
    """collect_system on the fixture, with one monitored datastore."""
    (tmp_path / "ds" / "0").mkdir(parents=True)
    (tmp_path / "ds" / "0" / ".monitor").write_text("ssh")
    return collect_system(ROOTS, "kvm", str(tmp_path / "ds"), "7.0.0")


def test_names_in_opennebula_probe_order(system: dict[str, object]) -> None:
    assert list(system) == [
        "ARCH",
        "MODELNAME",
        "HYPERVISOR",
        "TOTALCPU",
        "CPUSPEED",
        "TOTALMEMORY",
        "CGROUPS_VERSION",
        "DS_LOCATION_USED_MB",
        "DS_LOCATION_TOTAL_MB",
        "DS_LOCATION_FREE_MB",
        "DS",
        "HOSTNAME",
        "HUGEPAGE",
        "CORE",
        "MEMORY_NODE",
        "VERSION",
    ]


def test_exact_figures(system: dict[str, object]) -> None:
    assert system["ARCH"] == os.uname().machine
    assert system["MODELNAME"] == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert system["HYPERVISOR"] == "kvm"
    assert system["TOTALCPU"] == 800  # 8 online CPUs x 100
    assert system["CPUSPEED"] == 2101  # 2100.500 MHz, rounded half up as Ruby's Float#round
    assert system["TOTALMEMORY"] == 16777216  # KB
    assert system["CGROUPS_VERSION"] == 2
    assert system["HOSTNAME"] == "node-7.example"
    assert system["VERSION"] == "7.0.0"
    assert system["HUGEPAGE"] == [
        {"NODE_ID": 0, "SIZE": 2048, "PAGES": 512},
        {"NODE_ID": 0, "SIZE": 1048576, "PAGES": 4},
        {"NODE_ID": 1, "SIZE": 2048, "PAGES": 256},
        {"NODE_ID": 1, "SIZE": 1048576, "PAGES": 0},
    ]
    assert system["MEMORY_NODE"] == [
        {"NODE_ID": 0, "TOTAL": 8388608, "DISTANCE": "0 1"},
        {"NODE_ID": 1, "TOTAL": 8388608, "DISTANCE": "1 0"},
    ]
    ds = system["DS"]
    assert isinstance(ds, dict)
    assert ds["ID"] == 0
    assert ds["TOTAL_MB"] == system["DS_LOCATION_TOTAL_MB"]


def test_values_are_numbers_not_text(system: dict[str, object]) -> None:
    for name in (
        "TOTALCPU",
        "CPUSPEED",
        "TOTALMEMORY",
        "CGROUPS_VERSION",
        "DS_LOCATION_USED_MB",
        "DS_LOCATION_TOTAL_MB",
        "DS_LOCATION_FREE_MB",
    ):
        assert type(system[name]) is int, name
    for name in ("ARCH", "MODELNAME", "HYPERVISOR", "HOSTNAME", "VERSION"):
        assert type(system[name]) is str, name


def test_cpu_model_fallbacks(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("processor\t: 0\ncpu\t\t: POWER9 (raw), altivec\n\n")
    assert cpu_model(str(tmp_path)) == ("POWER9 (raw), altivec", None)
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\n")
    assert cpu_model(str(tmp_path)) == ("", None)
    assert cpu_model(str(tmp_path / "missing")) == ("", None)
    # no "cpu MHz" (aarch64): cpufreq's maximum in kHz, else 0 as OpenNebula
    assert cpu_speed(ROOTS.sysfs, None) == 3900
    assert cpu_speed(str(tmp_path), None) == 0
    assert cpu_speed(str(tmp_path), 2599.49) == 2599


def test_cgroups_version(tmp_path: Path) -> None:
    assert cgroups_version(ROOTS.cgroupfs) == 2
    for name in ("cpu", "memory", "unified"):  # hybrid: OpenNebula says 1 when v1 is mounted
        (tmp_path / name).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("")
    assert cgroups_version(str(tmp_path)) == 1
    assert cgroups_version(str(tmp_path / "unified" / "nothing")) is None
    (tmp_path / "empty").mkdir()
    assert cgroups_version(str(tmp_path / "empty")) is None


def test_optional_parts_left_out(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURE / "proc", proc)
    (proc / "cpuinfo").write_text("processor\t: 0\n\n")
    roots = Roots(procfs=str(proc), sysfs=str(tmp_path / "sys"), cgroupfs=str(tmp_path / "cg"))
    t = collect_system(roots, "lxc", str(tmp_path / "ds"), "")
    for name in (
        "MODELNAME",
        "CGROUPS_VERSION",
        "VERSION",
        "DS",
        "HUGEPAGE",
        "CORE",
        "MEMORY_NODE",
    ):
        assert name not in t
    assert t["HYPERVISOR"] == "lxc"
    assert t["CPUSPEED"] == 0
