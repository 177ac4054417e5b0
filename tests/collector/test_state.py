"""OpenNebula's state rules as the collector applies them (reference §1.6, §2.4, §5.3)."""

from __future__ import annotations

import pytest

from onemon.collector.events import HostStateChanged, VmStateChanged, ZombiesChanged
from onemon.collector.model import HostState, LcmState, VmReport, VmState
from onemon.collector.state import CloudState, RejectedMessage, StatePolicy
from onemon.wire.model import Message, MessageType, Status

T = MessageType


def msg(mtype: MessageType, payload: dict[str, object] | None = None, host: int = 3) -> Message:
    return Message(mtype, Status.SUCCESS, host, 1.0, payload or {})


def failure(mtype: MessageType, error: str, host: int = 3) -> Message:
    return Message(mtype, Status.FAILURE, host, 1.0, {}, error)


def state_vm(*vms: tuple[int, str], sync: str | None = None) -> Message:
    payload: dict[str, object] = {
        "VM": [{"ID": i, "DEPLOY_ID": f"d{i}", "STATE": s} for i, s in vms]
    }
    if sync:
        payload.update({"SYNC_STATE": "yes", "MISSING_STATE": sync})
    return msg(T.STATE_VM, payload)


@pytest.fixture
def cloud() -> CloudState:
    state = CloudState(StatePolicy(host_interval=180))
    state.add_host(3, "node3")
    return state


def test_unknown_host_is_rejected_unless_auto_registration(cloud: CloudState) -> None:
    with pytest.raises(RejectedMessage) as err:
        cloud.apply(msg(T.BEACON_HOST, host=9), 10)
    assert err.value.reason == "unknown_host"
    auto = CloudState(StatePolicy(auto_register_hosts=True))
    auto.apply(msg(T.SYSTEM_HOST, {"HOSTNAME": "n9"}, host=9), 10)
    assert auto.hosts[9].name == "n9" and auto.hosts[9].state is HostState.MONITORED


def test_only_system_host_makes_a_host_monitored(cloud: CloudState) -> None:
    cloud.apply(msg(T.BEACON_HOST), 10)
    cloud.apply(msg(T.MONITOR_HOST, {"FREECPU": "792"}), 11)
    assert cloud.hosts[3].state is HostState.INIT
    out = cloud.apply(msg(T.SYSTEM_HOST, {"TOTALCPU": 800, "TOTALMEMORY": 8000}), 12)
    assert cloud.hosts[3].state is HostState.MONITORED
    assert out.events == [HostStateChanged(12, 3, HostState.INIT, HostState.MONITORED, "")]


def test_monitor_host_keeps_capacity_and_numa_with_receive_time(cloud: CloudState) -> None:
    payload = {
        "USEDMEMORY": "2147156", "FREEMEMORY": "5831016", "FREECPU": "792", "USEDCPU": "8",
        "NETRX": "10", "NETTX": "20",
        "HUGEPAGE": [{"NODE_ID": "0", "SIZE": "2048", "FREE": "0"}],
        "MEMORY_NODE": [{"NODE_ID": "0", "FREE": "173580", "USED": "1086600"}],
    }  # fmt: skip
    out = cloud.apply(msg(T.MONITOR_HOST, payload), 50)
    cap = cloud.hosts[3].capacity
    assert (cap.used_memory, cap.free_memory, cap.free_cpu, cap.used_cpu) == (
        2147156, 5831016, 792.0, 8.0,
    )  # fmt: skip
    assert cap.numa == [
        {"NODE_ID": 0, "HUGEPAGE": [{"SIZE": 2048, "FREE": 0}],
         "MEMORY": {"FREE": 173580, "USED": 1086600}},
    ]  # fmt: skip
    assert out.host_history == [(3, 50)] and cloud.hosts[3].last_monitored == 50


def test_failure_puts_host_in_error_and_its_vms_in_unknown(cloud: CloudState) -> None:
    cloud.apply(msg(T.SYSTEM_HOST), 1)
    cloud.apply(state_vm((12, "RUNNING"), (15, "POWEROFF")), 2)
    out = cloud.apply(failure(T.SYSTEM_HOST, "Error executing pci.rb: bad"), 3)
    host = cloud.hosts[3]
    assert host.state is HostState.ERROR and host.error == "Error executing pci.rb: bad"
    assert cloud.vms[12].report is VmReport.UNKNOWN
    assert cloud.vms[12].lcm_state is LcmState.UNKNOWN
    assert cloud.vms[15].report is VmReport.POWEROFF  # powered-off VMs stay so
    assert VmStateChanged(3, 12, 3, VmReport.RUNNING, VmReport.UNKNOWN, "host_error") in out.events


def test_vm_failure_messages_are_only_logged(cloud: CloudState) -> None:
    cloud.apply(msg(T.SYSTEM_HOST), 1)
    cloud.apply(failure(T.MONITOR_VM, "Error executing poll: x"), 2)
    assert cloud.hosts[3].state is HostState.MONITORED


def test_error_clears_only_with_system_host(cloud: CloudState) -> None:
    cloud.apply(failure(T.BEACON_HOST, "down"), 1)
    cloud.apply(msg(T.MONITOR_HOST, {"FREECPU": 1}), 2)
    assert cloud.hosts[3].state is HostState.ERROR
    cloud.apply(msg(T.SYSTEM_HOST), 3)
    assert cloud.hosts[3].state is HostState.MONITORED and cloud.hosts[3].error == ""


def test_vms_back_from_host_error_with_their_next_monitor_report(cloud: CloudState) -> None:
    """Better than OpenNebula issue 5121: no forceupdate needed."""
    cloud.apply(msg(T.SYSTEM_HOST), 1)
    cloud.apply(state_vm((12, "RUNNING")), 2)
    cloud.apply(failure(T.BEACON_HOST, "down"), 3)
    cloud.apply(msg(T.SYSTEM_HOST), 4)
    vm_report = {"VM": [{"ID": 12, "MONITOR": {"CPU": 5, "STATE": 1}}]}
    cloud.apply(msg(T.MONITOR_VM, vm_report), 5)
    assert cloud.vms[12].report is VmReport.RUNNING


def test_monitor_vm_merges_entries_and_previous_record(cloud: CloudState) -> None:
    first_report = {"VM": [
        {"ID": "12", "DEPLOY_ID": "u", "MONITOR": {"CPU": "1.01", "MEMORY": "140816"}},
        {"ID": "12", "MONITOR": {"DISK_SIZE": {"ID": "0", "SIZE": "2252"}}},
    ]}  # fmt: skip
    out = cloud.apply(msg(T.MONITOR_VM, first_report), 10)
    cloud.apply(msg(T.MONITOR_VM, {"VM": {"ID": 12, "MONITOR": {"CPU": "3"}}}), 20)
    vm = cloud.vms[12]
    assert vm.monitoring == {
        "CPU": "3",
        "MEMORY": "140816",
        "DISK_SIZE": {"ID": "0", "SIZE": "2252"},
    }
    assert vm.deploy_id == "u" and vm.last_poll == 20
    assert out.vm_history == [(12, 10)]


def test_sync_marks_missing_vms_poweroff_and_records_zombies(cloud: CloudState) -> None:
    cloud.add_host(4, "node4")
    cloud.apply(state_vm((12, "RUNNING"), (13, "RUNNING")), 1)
    cloud.apply(
        Message(T.STATE_VM, Status.SUCCESS, 4, 1, {"VM": {"ID": 40, "STATE": "RUNNING"}}), 1
    )
    out = cloud.apply(state_vm((12, "RUNNING"), (40, "RUNNING"), sync="POWEROFF"), 2)
    assert cloud.vms[13].report is VmReport.POWEROFF and cloud.vms[13].state is VmState.POWEROFF
    assert cloud.vms[12].report is VmReport.RUNNING
    assert cloud.hosts[3].zombies == [40]  # 40 runs on node4
    assert ZombiesChanged(2, 3, (40,)) in out.events


def test_missing_state_unknown_never_powers_off(cloud: CloudState) -> None:
    """When the agent cannot reach libvirt it says UNKNOWN (issues 5564/5708)."""
    cloud.apply(state_vm((12, "RUNNING")), 1)
    cloud.apply(state_vm(sync="UNKNOWN"), 2)
    assert cloud.vms[12].report is VmReport.UNKNOWN


def test_state_changes_apply_and_unchanged_states_make_no_event(cloud: CloudState) -> None:
    cloud.apply(state_vm((12, "RUNNING")), 1)
    assert cloud.apply(state_vm((12, "RUNNING")), 2).events == []
    out = cloud.apply(state_vm((12, "SUSPENDED")), 3)
    assert [e.new for e in out.events if isinstance(e, VmStateChanged)] == [VmReport.SUSPENDED]
    assert cloud.vms[12].state is VmState.SUSPENDED


def test_silent_host_goes_to_error_after_the_interval(cloud: CloudState) -> None:
    cloud.apply(msg(T.SYSTEM_HOST), 100)
    assert cloud.check_silence(100 + 179).events == []
    out = cloud.check_silence(100 + 181)
    assert cloud.hosts[3].state is HostState.ERROR
    assert "No monitoring message for 181 s" in cloud.hosts[3].error
    assert out.events and isinstance(out.events[0], HostStateChanged)


def test_offline_host_messages_are_refused_and_disabled_host_stays_disabled(
    cloud: CloudState,
) -> None:
    host = cloud.hosts[3]
    cloud.set_host_state(host, HostState.DISABLED, 1)
    cloud.apply(msg(T.SYSTEM_HOST), 2)
    assert host.state is HostState.DISABLED
    cloud.set_host_state(host, HostState.OFFLINE, 3)
    with pytest.raises(RejectedMessage) as err:
        cloud.apply(msg(T.BEACON_HOST), 4)
    assert err.value.reason == "host_offline"


def test_wilds_come_from_system_host_vms_with_negative_id(cloud: CloudState) -> None:
    wild = {"ID": "-1", "DEPLOY_ID": "uuid-w", "VM_NAME": "manual", "IMPORT_TEMPLATE": "x"}
    cloud.apply(msg(T.SYSTEM_HOST, {"VM": wild, "HOSTNAME": "n3"}), 1)
    assert cloud.hosts[3].wilds == [wild]
    cloud.apply(msg(T.SYSTEM_HOST, {"HOSTNAME": "n3"}), 2)
    assert cloud.hosts[3].wilds == [] and "VM" not in cloud.hosts[3].system
