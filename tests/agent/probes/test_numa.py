"""NUMA topology and usage from the fixture sysfs (two nodes, 2 MB and 1 GB hugepages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from onemon.agent.probes import numa

SYSFS = str(Path(__file__).parents[2] / "fixtures" / "host" / "sys")


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0", [0]),
        ("0,4", [0, 4]),
        ("2-3", [2, 3]),
        ("0-2,8,10-11\n", [0, 1, 2, 8, 10, 11]),
        ("", []),
    ],
)
def test_parse_cpulist(text: str, cpus: list[int]) -> None:
    assert numa.parse_cpulist(text) == cpus


def test_closest_first_keeps_ties_in_id_order() -> None:
    assert numa.closest_first([10, 21], [0, 1]) == "0 1"
    assert numa.closest_first([21, 10], [0, 1]) == "1 0"
    # OpenNebula's hash keyed by distance would print "2 3" here, losing nodes 0 and 1.
    assert numa.closest_first([21, 21, 10, 31], [0, 1, 2, 3]) == "2 0 1 3"
    # Sparse node ids: the file lists online nodes in order.
    assert numa.closest_first([20, 10], [0, 4]) == "4 0"


def test_node_ids_ignore_other_entries() -> None:
    assert numa.node_ids(SYSFS) == [0, 1]
    assert numa.node_ids("/nonexistent") == []


def test_topology_exact() -> None:
    t = numa.topology(SYSFS)
    assert t["HUGEPAGE"] == [
        {"NODE_ID": 0, "SIZE": 2048, "PAGES": 512},
        {"NODE_ID": 0, "SIZE": 1048576, "PAGES": 4},
        {"NODE_ID": 1, "SIZE": 2048, "PAGES": 256},
        {"NODE_ID": 1, "SIZE": 1048576, "PAGES": 0},
    ]
    # node1 writes its siblings as ranges ("2-3"); its offline cpu8 has no topology.
    assert t["CORE"] == [
        {"NODE_ID": 0, "ID": 0, "CPUS": "0,4"},
        {"NODE_ID": 0, "ID": 1, "CPUS": "1,5"},
        {"NODE_ID": 1, "ID": 0, "CPUS": "2,3"},
        {"NODE_ID": 1, "ID": 1, "CPUS": "6,7"},
    ]
    assert t["MEMORY_NODE"] == [
        {"NODE_ID": 0, "TOTAL": 8388608, "DISTANCE": "0 1"},
        {"NODE_ID": 1, "TOTAL": 8388608, "DISTANCE": "1 0"},
    ]


def test_usage_exact() -> None:
    t = numa.usage(SYSFS)
    assert t["HUGEPAGE"] == [
        {"NODE_ID": 0, "SIZE": 2048, "FREE": 256},
        {"NODE_ID": 0, "SIZE": 1048576, "FREE": 2},
        {"NODE_ID": 1, "SIZE": 2048, "FREE": 128},
        {"NODE_ID": 1, "SIZE": 1048576, "FREE": 0},
    ]
    assert t["MEMORY_NODE"] == [
        {"NODE_ID": 0, "FREE": 4194304, "USED": 4194304},
        {"NODE_ID": 1, "FREE": 6291456, "USED": 2097152},
    ]


def test_no_numa_sysfs_gives_nothing(tmp_path: Path) -> None:
    assert numa.topology(str(tmp_path)) == {}
    assert numa.usage(str(tmp_path)) == {}


def test_node_without_meminfo_or_distance(tmp_path: Path) -> None:
    node = tmp_path / numa.NODE_DIR / "node0"
    (node / "hugepages" / "hugepages-2048kB").mkdir(parents=True)
    (node / "hugepages" / "hugepages-2048kB" / "free_hugepages").write_text("3\n")
    (node / "hugepages" / "bogus").mkdir()
    t = numa.usage(str(tmp_path))
    assert t == {"HUGEPAGE": {"NODE_ID": 0, "SIZE": 2048, "FREE": 3}}
    assert "HUGEPAGE" not in numa.topology(str(tmp_path))  # no nr_hugepages
    (node / "meminfo").write_text("Node 0 MemTotal:  100 kB\n")
    assert numa.topology(str(tmp_path))["MEMORY_NODE"] == {
        "NODE_ID": 0,
        "TOTAL": 100,
        "DISTANCE": "",
    }
