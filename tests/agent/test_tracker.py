"""VM state deltas, sync reports, times_missing, and never POWEROFF when libvirt is down."""

from __future__ import annotations

from pathlib import Path

from onemon.agent.tracker import SeenVm, StateTracker


def states(payload: dict[str, object] | None) -> dict[int, str]:
    if payload is None:
        return {}
    vms = payload["VM"]
    assert isinstance(vms, list)
    return {vm["ID"]: vm["STATE"] for vm in vms}


A = SeenVm(12, "uuid-12", "RUNNING")
B = SeenVm(15, "uuid-15", "RUNNING")


def test_first_cycle_is_a_full_sync_then_only_changes() -> None:
    tracker = StateTracker(None, sync_period=180)
    first = tracker.cycle([A, B], now=1000)
    assert (
        first is not None and first["SYNC_STATE"] == "yes" and first["MISSING_STATE"] == "POWEROFF"
    )
    assert states(first) == {12: "RUNNING", 15: "RUNNING"}
    assert tracker.cycle([A, B], now=1005) is None  # nothing changed: nothing sent
    paused = SeenVm(12, "uuid-12", "SUSPENDED")
    assert states(tracker.cycle([paused, B], now=1010)) == {12: "SUSPENDED"}


def test_sync_period_resends_everything() -> None:
    tracker = StateTracker(None, sync_period=180)
    tracker.cycle([A, B], now=1000)
    again = tracker.cycle([A, B], now=1181)
    assert again is not None and again["SYNC_STATE"] == "yes"
    assert states(again) == {12: "RUNNING", 15: "RUNNING"}


def test_vanished_vm_is_poweroff_only_after_times_missing_cycles() -> None:
    tracker = StateTracker(None, sync_period=10_000, times_missing=5)
    tracker.cycle([A, B], now=0)
    sent = [states(tracker.cycle([A], now=5 * i)) for i in range(1, 8)]
    assert sent[:5] == [{}, {}, {}, {}, {}]
    assert sent[5] == {15: "POWEROFF"}
    assert sent[6] == {}  # reported once, then forgotten


def test_a_vm_back_before_times_missing_is_not_reported_poweroff() -> None:
    tracker = StateTracker(None, sync_period=10_000, times_missing=5)
    tracker.cycle([A, B], now=0)
    tracker.cycle([A], now=5)
    tracker.cycle([A], now=10)
    assert tracker.cycle([A, B], now=15) is None  # same state as before: no change to send
    for i in range(4, 9):
        assert states(tracker.cycle([A, B], now=5 * i)) == {}


def test_unreachable_hypervisor_reports_unknown_never_poweroff() -> None:
    tracker = StateTracker(None, sync_period=10_000, times_missing=2)
    tracker.cycle([A, B], now=0)
    outage = [states(tracker.cycle(None, now=5 * i)) for i in range(1, 20)]
    assert outage[0] == {12: "UNKNOWN", 15: "UNKNOWN"}
    assert all(report == {} for report in outage[1:])
    assert "POWEROFF" not in str(outage)
    back = tracker.cycle([A, B], now=200)
    assert states(back) == {12: "RUNNING", 15: "RUNNING"}


def test_sync_during_outage_says_missing_state_unknown() -> None:
    tracker = StateTracker(None, sync_period=100)
    tracker.cycle([A], now=0)
    report = tracker.cycle(None, now=150)
    assert report is not None and report["MISSING_STATE"] == "UNKNOWN"
    assert states(report) == {12: "UNKNOWN"}


def test_state_survives_an_agent_restart(tmp_path: Path) -> None:
    path = tmp_path / "tracker.db"
    tracker = StateTracker(path, sync_period=180, times_missing=3)
    tracker.cycle([A, B], now=1000)
    tracker.cycle([A], now=1005)
    tracker.cycle([A], now=1010)
    tracker.close()
    restarted = StateTracker(path, sync_period=180, times_missing=3)
    assert restarted.cycle([A], now=1015) is None  # no re-report after restart
    assert states(restarted.cycle([A], now=1020)) == {15: "POWEROFF"}  # count kept


def test_sync_with_no_vm_carries_no_empty_list() -> None:
    """An empty repeated attribute is not expressible in a template (nor on the native wire)."""
    report = StateTracker(None, sync_period=100).cycle([], now=0)
    assert report == {"SYNC_STATE": "yes", "MISSING_STATE": "POWEROFF"}
