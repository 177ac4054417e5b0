"""Host administration (create, delete, enable/disable/offline), persisted and evented."""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from onemon.collector.events import EventBus
from onemon.collector.ingest import Ingest, Persistence
from onemon.collector.model import Host, HostState
from onemon.collector.state import CloudState, Outcome

STATUS_TARGETS = {
    "enable": HostState.INIT,
    "disable": HostState.DISABLED,
    "offline": HostState.OFFLINE,
}
"""``onehost enable|disable|offline``: enable restarts monitoring from INIT, as OpenNebula."""

IM_ACTIONS = ("error", "monitored")
"""What an IM driver reports: its agent (re)start failed, or it succeeded (reference §1.7, §5.3)."""
MAX_ERROR_CHARS = 4096


class AdminError(ValueError):
    """A refused administrative request (the message says why)."""


def load_or_create_token(path: Path) -> str:
    """The admin token from ``path``, created (mode 600) on first start."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def token_matches(expected: str, header: str | None) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    given = (header or "").removeprefix("Bearer ").strip()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


class HostAdmin:
    """Changes what the collector accepts and expects, as OpenNebula's host actions do."""

    def __init__(
        self, state: CloudState, store: Persistence, ingest: Ingest, bus: EventBus
    ) -> None:
        self.state = state
        self.store = store
        self.ingest = ingest
        self.bus = bus

    def create(self, name: str, host_id: int | None = None, im_mad: str = "kvm") -> Host:
        """Register a host (INIT); ids are allocated like OpenNebula's when not given."""
        if not name or len(name) > 128:
            raise AdminError("a host needs a name of 1..128 characters")
        if any(h.name == name for h in self.state.hosts.values()):
            raise AdminError(f"a host named {name!r} exists")
        if host_id is None:
            host_id = max(self.state.hosts, default=-1) + 1
        if host_id < 0 or host_id in self.state.hosts:
            raise AdminError(f"host id {host_id} is taken or invalid")
        host = self.state.add_host(host_id, name, im_mad)
        self.store.put_host(host)
        return host

    def delete(self, host_id: int) -> None:
        """Forget a host, its VMs and its streams; its agent's messages are refused from now."""
        self._host(host_id)
        for vm_id in self.state.remove_host(host_id):
            self.store.delete_vm(vm_id)
        self.store.delete_host(host_id)
        self.ingest.ordering.forget_host(host_id)

    def set_status(self, host_id: int, action: str, message: str = "") -> Host:
        """enable / disable / offline, or IM ``error`` (with message) or ``monitored``."""
        host = self._host(host_id)
        if action == "error":
            return self._start_failed(host, message)
        if action == "monitored":
            return self._start_succeeded(host)
        target = STATUS_TARGETS.get(action)
        if target is None:
            raise AdminError(
                f"unknown action {action!r}: enable, disable, offline, error or monitored"
            )
        if host.state is not target:
            event = self.state.set_host_state(host, target, time.time())
            self.store.put_host(host)
            self.bus.publish([event])
        return host

    def _start_failed(self, host: Host, message: str) -> Host:
        """start_monitor_failure: host → ERROR with the driver's text, its VMs → UNKNOWN."""
        if host.state is HostState.OFFLINE:
            return host  # as onemonitord: an offline host's failures are ignored
        error = message.strip()[:MAX_ERROR_CHARS] or "Error starting the monitoring agent"
        out = Outcome()
        self.state._host_error(host, error, time.time(), out)  # the FAILURE rule, unchanged
        self.state.version += 1
        self.ingest.persist(out)
        return host

    def _start_succeeded(self, host: Host) -> Host:
        """start_monitor_success: INIT/ERROR → MONITORED when its template is known already."""
        now = time.time()
        if host.state in (HostState.INIT, HostState.ERROR) and host.system:
            event = self.state.set_host_state(host, HostState.MONITORED, now)
            self.store.put_host(host)
            self.bus.publish([event])
        elif host.state is HostState.DISABLED and host.error:
            host.error = ""
            self.state.version += 1
            self.store.put_host(host)
        return host

    def _host(self, host_id: int) -> Host:
        host = self.state.hosts.get(host_id)
        if host is None:
            raise AdminError(f"no host {host_id}")
        return host
