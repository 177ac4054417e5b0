"""Probe groups: built-in probes merged with the tree's executables, as one message each."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from onemon.agent.config import AgentConfig, ProbeConfig
from onemon.agent.groups import ProbeGroups
from onemon.wire.model import MessageType, Status, values


def probe(tree: Path, group: str, name: str, body: str) -> None:
    path = tree / "kvm-probes.d" / group / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def make_groups(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[ProbeGroups] = []

    def make(tree: Path, libvirt_uri: str = "test:///default") -> ProbeGroups:
        config = AgentConfig(
            host_id=5, host_name="node5", libvirt_uri=libvirt_uri,
            state_dir=tmp_path / "state", probes=ProbeConfig(tree=tree, timeout=5),
        )  # fmt: skip
        groups = ProbeGroups(config, dict, persistent=False)
        made.append(groups)
        return groups

    yield make
    for groups in made:
        groups.close()


async def test_exec_vm_monitor_output_is_decoded_like_the_legacy_wire(
    tmp_path: Path, make_groups
) -> None:  # type: ignore[no-untyped-def]
    monitor = base64.b64encode(b'CPU="12.5"\nMEMORY="2048"\n').decode()
    probe(tmp_path, "vm/monitor", "custom", f'echo \'VM = [ ID="8", MONITOR="{monitor}" ]\'\n')
    message = await make_groups(tmp_path).monitor_vm()
    assert message is not None and message.status is Status.SUCCESS
    (vm,) = [v for v in values(message.payload, "VM") if v["ID"] == "8"]
    assert vm["MONITOR"] == {"CPU": "12.5", "MEMORY": "2048"}


async def test_bad_monitor_text_fails_the_group_naming_it(tmp_path: Path, make_groups) -> None:  # type: ignore[no-untyped-def]
    probe(tmp_path, "vm/monitor", "custom", 'echo \'VM = [ ID="8", MONITOR="%%%" ]\'\n')
    message = await make_groups(tmp_path).monitor_vm()
    assert message is not None and message.status is Status.FAILURE
    assert "vm/monitor" in message.error and "MONITOR of VM 8" in message.error


async def test_an_admin_probe_overrides_a_built_in_attribute(tmp_path: Path, make_groups) -> None:  # type: ignore[no-untyped-def]
    probe(tmp_path, "host/system", "zz_name", "echo 'HOSTNAME=\"chosen-by-admin\"'\n")
    message = await make_groups(tmp_path).system_host()
    assert message is not None and message.type is MessageType.SYSTEM_HOST
    assert message.payload["HOSTNAME"] == "chosen-by-admin"
    assert int(message.payload["TOTALCPU"]) > 0  # built-ins still there
    wild = values(message.payload, "VM")
    assert [w["VM_NAME"] for w in wild] == ["test"]  # the test driver's domain is wild


async def test_a_failing_probe_makes_the_whole_group_a_failure(tmp_path: Path, make_groups) -> None:  # type: ignore[no-untyped-def]
    probe(tmp_path, "host/monitor", "broken", "echo partial; echo 'no disk' >&2; exit 3\n")
    groups = make_groups(tmp_path)
    message = await groups.monitor_host()
    assert message is not None and message.status is Status.FAILURE
    assert message.error == "Error executing broken: no disk"
    assert groups.counters.failures == 1


async def test_empty_groups_send_nothing_but_the_beacon_always_goes(
    tmp_path: Path, make_groups
) -> None:  # type: ignore[no-untyped-def]
    groups = make_groups(tmp_path)
    assert await groups.exec_vm() is None
    beacon = await groups.beacon_host()
    assert beacon is not None and beacon.type is MessageType.BEACON_HOST
    assert dataclasses.asdict(beacon)["payload"] == {}


async def test_a_failing_status_probe_does_not_hide_libvirts_state_changes(
    tmp_path: Path, make_groups
) -> None:  # type: ignore[no-untyped-def]
    """The tracker takes changes as reported: they go, SUCCESS, even when vm/status fails."""
    node = tmp_path / "node.xml"
    node.write_text(
        "<node><domain type='test'><name>one-7</name><memory>8192</memory>"
        "<os><type>hvm</type></os></domain></node>"
    )
    probe(tmp_path, "vm/status", "broken", "echo 'lost' >&2; exit 1\n")
    groups = make_groups(tmp_path, f"test://{node}")
    message = await groups.state_vm()
    assert message is not None and message.status is Status.SUCCESS
    assert [(vm["ID"], vm["STATE"]) for vm in values(message.payload, "VM")] == [(7, "RUNNING")]
    assert groups.counters.failures == 1
    again = await groups.state_vm()  # no change now: the probe's failure is what is left to say
    assert again is not None and again.status is Status.FAILURE
    assert again.error == "Error executing broken: lost"
