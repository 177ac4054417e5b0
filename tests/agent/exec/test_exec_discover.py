"""discover: byte order, executables only, leftovers skipped, read afresh on every call."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from onemon.agent.exec import discover, group_dir, run_group

FIXTURES = Path(__file__).parents[2] / "fixtures" / "probes"
ORDER = ["10_b", "2_a", "B_upper", "a_lower", "z_link"]


def test_sorted_by_bytes_executables_only() -> None:
    found = discover(FIXTURES, "kvm", "order")
    assert [p.name for p in found] == ORDER
    assert all(p.parent == FIXTURES / "kvm-probes.d" / "order" for p in found)


def test_missing_group_or_hypervisor_has_no_probes() -> None:
    assert discover(FIXTURES, "kvm", "no/such/group") == []
    assert discover(FIXTURES, "xen", "order") == []


@pytest.mark.parametrize(
    ("hypervisor", "group"),
    [("../kvm", "order"), ("", "order"), (".kvm", "order"), ("kvm", "../order"), ("kvm", "/etc")],
)
def test_names_that_leave_the_tree_are_refused(hypervisor: str, group: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        group_dir(FIXTURES, hypervisor, group)


async def test_dropped_in_probe_found_on_next_discover(tmp_path: Path) -> None:
    shutil.copytree(
        FIXTURES / "kvm-probes.d" / "order", tmp_path / "kvm-probes.d" / "order", symlinks=True
    )
    assert [p.name for p in discover(tmp_path, "kvm", "order")] == ORDER
    new = tmp_path / "kvm-probes.d" / "order" / "y_new"
    new.write_text("#!/bin/sh\necho 'NEW = 1'\n")
    assert [p.name for p in discover(tmp_path, "kvm", "order")] == ORDER  # not executable yet
    new.chmod(0o755)
    probes = discover(tmp_path, "kvm", "order")
    assert [p.name for p in probes] == [*ORDER[:-1], "y_new", "z_link"]
    result = await run_group(probes, ["kvm", "0", "h"], b"")
    assert "NEW = 1\n" in result.output
    new.unlink()
    assert [p.name for p in discover(tmp_path, "kvm", "order")] == ORDER
