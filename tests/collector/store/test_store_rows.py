"""Row conversions: compact columns, lossless JSON part, and nothing that can poison a batch."""

from __future__ import annotations

import json
import math

import pytest

from onemon.collector.model import HostCapacity, HostState
from onemon.collector.store.coltypes import compact_json
from onemon.collector.store.rows import (
    host_sample,
    host_sample_row,
    plain,
    progress_from_row,
    progress_row,
    to_json,
    vm_sample,
    vm_sample_row,
)


def stored(row: dict[str, object], *json_columns: str) -> dict[str, object]:
    """``row`` as read back: JSON text columns parsed, as JsonText does."""
    return {k: json.loads(v) if k in json_columns and v is not None else v for k, v in row.items()}  # type: ignore[arg-type]


def test_plain_copies_deeply_and_only_json() -> None:
    source = {"A": [1, {"B": 2}], 3: (4.5, float("inf")), "S": {7}, "E": HostState.ERROR}
    source["raw"] = b"\x00\xff"
    copy = plain(source)
    source["A"][1]["B"] = 99  # type: ignore[index]
    assert copy == {"A": [1, {"B": 2}], "3": [4.5, None], "S": [7], "E": 3, "raw": "AP8="}
    json.loads(compact_json(copy))  # always serializable, never NaN


def test_vm_sample_splits_known_figures_from_the_rest() -> None:
    row = vm_sample_row(
        5,
        10.0,
        {
            "CPU": "3.5",
            "MEMORY": "1024",
            "NETRX": 10.0,
            "NETTX": "n/a",
            "DISKWRIOPS": 2**64,
            "DISKRDIOPS": True,
            "OS_ID": "debian",
        },
    )
    assert row["cpu"] == 3.5
    assert row["memory"] == 1024
    assert row["netrx"] == 10
    assert row["nettx"] is None and row["diskwriops"] is None and row["diskrdiops"] is None
    assert json.loads(row["extra"]) == {
        "NETTX": "n/a",
        "DISKWRIOPS": 2**64,
        "DISKRDIOPS": True,
        "OS_ID": "debian",
    }
    ts, back = vm_sample(stored(row, "extra"))
    assert ts == 10.0
    assert back["CPU"] == 3.5 and back["MEMORY"] == 1024 and back["OS_ID"] == "debian"


def test_templates_are_snapshotted_as_strict_json() -> None:
    template = {"A": [1], "NAN": float("nan"), "RAW": b"x", 7: {"T": (1, 2)}}
    row = vm_sample_row(1, 1.0, template)
    template["A"].append(2)  # type: ignore[attr-defined]
    assert json.loads(row["extra"]) == {"A": [1], "NAN": None, "RAW": "eA==", "7": {"T": [1, 2]}}
    loop: list[object] = []
    loop.append(loop)
    assert json.loads(to_json({"SELF": loop}))  # type: ignore[arg-type]  # text, never an error


def test_vm_sample_with_only_figures_has_no_json() -> None:
    row = vm_sample_row(5, 1.0, {"CPU": 1, "MEMORY": 2, "NETRX": 3, "NETTX": 4})
    assert row["extra"] is None


def test_host_sample_names_are_opennebula_capacity_names() -> None:
    cap = HostCapacity(free_cpu=math.nan, used_cpu=1.0, free_memory=5, numa=[{"NODE_ID": 0}])
    ts, out = host_sample(stored(host_sample_row(1, 2.0, cap), "numa"))
    assert ts == 2.0
    assert out == {
        "USED_CPU": 1.0,
        "FREE_MEMORY": 5,
        "USED_MEMORY": 0,
        "NETRX": 0,
        "NETTX": 0,
        "NUMA_NODE": [{"NODE_ID": 0}],
    }


@pytest.mark.parametrize("window", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_progress_window_round_trips_through_a_signed_bigint(window: int) -> None:
    row = progress_row(1, 7, b"b" * 16, 5, window)
    assert -(2**63) <= row["window"] < 2**63
    assert progress_from_row(row).window == window


def test_progress_rejects_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="window"):
        progress_row(1, 7, b"b" * 16, 5, 2**64)


def test_row_builders_name_every_column_of_their_table() -> None:
    from onemon.collector.store import rows, schema

    for columns, table, generated in (
        (rows.HOST_COLUMNS, schema.hosts, set()),
        (rows.VM_COLUMNS, schema.vms, set()),
        (rows.HOST_SAMPLE_COLUMNS, schema.host_monitoring, set()),
        (rows.VM_SAMPLE_COLUMNS, schema.vm_monitoring, set()),
        (rows.JOURNAL_COLUMNS, schema.state_changes, {"id"}),
        (rows.PROGRESS_COLUMNS, schema.progress, set()),
    ):
        assert len(set(columns)) == len(columns)
        assert set(columns) | generated == {c.name for c in table.columns}, table.name


def test_a_host_sample_copies_the_figures_it_is_given() -> None:
    from onemon.collector.store.rows import capture_host_sample, host_sample_params

    cap = HostCapacity(free_cpu=1.5, free_memory=7, numa=[{"NODE_ID": 0}])
    capture = capture_host_sample(1, 2.0, cap)
    cap.free_cpu, cap.free_memory = 9.0, 9  # the next MONITOR_HOST updates it in place
    cap.numa = [{"NODE_ID": 1}]  # and replaces the NUMA list
    params = host_sample_params(capture)
    assert params[:5] == (1, 2.0, 1.5, 0.0, 7)
    assert json.loads(params[-1]) == [{"NODE_ID": 0}]


def test_a_vm_row_reuses_its_history_sample_json_with_the_same_content() -> None:
    from onemon.collector.model import Vm
    from onemon.collector.store.rows import MonitoringTexts, vm_params, vm_sample_params

    monitoring = {
        "DISK_SIZE": [{"ID": 0, "SIZE": 2252}],
        "CPU": 1.5,
        **{key: 7 for key in ("MEMORY", "NETRX", "NETTX", "DISKRDBYTES", "DISKWRBYTES")},
        "DISKRDIOPS": 2**62,
        "DISKWRIOPS": 0,
        "STATE": 1,
    }
    vm = Vm(5, 1, "deploy", monitoring=monitoring)
    texts: MonitoringTexts = {}
    vm_sample_params((5, 1.0, monitoring), texts)
    reused, alone = vm_params(vm, texts), vm_params(vm)
    assert reused[:8] == alone[:8] and reused[9:] == alone[9:]
    assert json.loads(reused[8]) == json.loads(alone[8]) == monitoring
    only_figures = {k: v for k, v in monitoring.items() if k not in ("DISK_SIZE", "STATE")}
    vm.monitoring = only_figures  # another object than the sample's: encoded on its own
    assert vm_params(vm, texts) == vm_params(vm)
    vm_sample_params((5, 2.0, only_figures), texts)  # no extra part: "{figures}"
    assert json.loads(vm_params(vm, texts)[8]) == only_figures
