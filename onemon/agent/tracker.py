"""VM state tracking: only changes are sent, plus a full report every sync period (§2.4).

OpenNebula's delta algorithm (``probe_db.rb``), done better: when the hypervisor cannot be
reached, VMs are reported UNKNOWN and their missing counters do not advance, so an outage of
libvirt is never turned into POWEROFF (issues 5564, 5708). The tracker's table lives in a small
SQLite file so an agent restart neither re-reports nor forgets a missing VM's count.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onemon.wire.model import Template

MISSING_STATE = "POWEROFF"
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class SeenVm:
    """A VM the hypervisor lists now."""

    vm_id: int
    deploy_id: str
    state: str


@dataclass(slots=True)
class _Row:
    deploy_id: str
    state: str
    missing: int
    timestamp: float


class StateTracker:
    """Decides, each state cycle, which VM states to report."""

    def __init__(self, path: Path | None, sync_period: float, times_missing: int = 5) -> None:
        self.sync_period = sync_period
        self.times_missing = times_missing
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS states (id INTEGER PRIMARY KEY, deploy_id TEXT, "
            "state TEXT, missing INTEGER, timestamp REAL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value REAL)")
        self._rows = {
            int(r[0]): _Row(r[1], r[2], int(r[3]), float(r[4]))
            for r in self._db.execute("SELECT id, deploy_id, state, missing, timestamp FROM states")
        }
        found = self._db.execute("SELECT value FROM settings WHERE key='last_sync'").fetchone()
        self.last_sync: float | None = float(found[0]) if found else None

    def close(self) -> None:
        """Close the state file."""
        self._db.close()

    def force_sync(self) -> None:
        """Make the next cycle a full report (after a reconnect or a reload)."""
        self.last_sync = None

    def cycle(self, seen: list[SeenVm] | None, now: float) -> Template | None:
        """One state cycle; ``seen=None`` means the hypervisor is unreachable.

        Returns the STATE_VM payload, or None when there is nothing to send.
        """
        last = self.last_sync
        # a clock stepped back (now < last) must not hold full syncs off until it catches up
        sync = last is None or now >= last + self.sync_period or now < last
        reports: list[dict[str, Any]] = []
        changed: dict[int, _Row | None] = {}
        if seen is None:
            self._unreachable(sync, now, reports, changed)
        else:
            self._reachable(seen, sync, now, reports, changed)
        self._save(changed, now if sync else None)
        if sync:
            self.last_sync = now
            missing_state = UNKNOWN if seen is None else MISSING_STATE
            payload: Template = {"SYNC_STATE": "yes", "MISSING_STATE": missing_state}
            if reports:
                payload["VM"] = reports
            return payload
        return {"VM": reports} if reports else None

    def _reachable(
        self,
        seen: list[SeenVm],
        sync: bool,
        now: float,
        reports: list[dict[str, Any]],
        changed: dict[int, _Row | None],
    ) -> None:
        present = set()
        for vm in seen:
            present.add(vm.vm_id)
            row = self._rows.get(vm.vm_id)
            new = row is None or row.state != vm.state or row.deploy_id != vm.deploy_id
            if new or row is None or row.missing:
                row = _Row(vm.deploy_id, vm.state, 0, now)
                self._rows[vm.vm_id] = row
                changed[vm.vm_id] = row
            if new or sync:
                reports.append(_entry(vm.vm_id, vm.deploy_id, vm.state))
        for vm_id in sorted(set(self._rows) - present):
            row = self._rows[vm_id]
            if row.missing >= self.times_missing:
                reports.append(_entry(vm_id, row.deploy_id, MISSING_STATE))
                del self._rows[vm_id]
                changed[vm_id] = None
                continue
            if sync:
                reports.append(_entry(vm_id, row.deploy_id, row.state))
            row.missing += 1
            changed[vm_id] = row

    def _unreachable(
        self, sync: bool, now: float, reports: list[dict[str, Any]], changed: dict[int, _Row | None]
    ) -> None:
        for vm_id, row in sorted(self._rows.items()):
            if row.state != UNKNOWN:
                row.state = UNKNOWN
                row.timestamp = now
                changed[vm_id] = row
                reports.append(_entry(vm_id, row.deploy_id, UNKNOWN))
            elif sync:
                reports.append(_entry(vm_id, row.deploy_id, UNKNOWN))

    def _save(self, changed: dict[int, _Row | None], last_sync: float | None) -> None:
        if not changed and last_sync is None:
            return
        with self._db:
            self._db.execute("BEGIN")
            for vm_id, row in changed.items():
                if row is None:
                    self._db.execute("DELETE FROM states WHERE id=?", (vm_id,))
                else:
                    self._db.execute(
                        "REPLACE INTO states VALUES (?,?,?,?,?)",
                        (vm_id, row.deploy_id, row.state, row.missing, row.timestamp),
                    )
            if last_sync is not None:
                self._db.execute("REPLACE INTO settings VALUES ('last_sync', ?)", (last_sync,))


def _entry(vm_id: int, deploy_id: str, state: str) -> dict[str, Any]:
    return {"ID": vm_id, "DEPLOY_ID": deploy_id, "STATE": state}
