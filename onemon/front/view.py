"""The front's read side: snapshots of the collector's store (cached briefly), and history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from onemon.collector.model import Host, Vm
from onemon.collector.store import Sample, StoreError, StoreReader
from onemon.front.db.overrides import HostOverride, OverrideStore
from onemon.front.errors import Unavailable

POLL = 0.05
P = ParamSpec("P")
R = TypeVar("R")


class StoreUnavailable(Unavailable):
    """The store cannot be read now (logged; clients get an error without details)."""

    public = "Cannot read the monitoring store."


@dataclass(frozen=True)
class Snapshot:
    """Hosts, VMs and the front's host overrides, read together."""

    hosts: dict[int, Host] = field(default_factory=dict)
    vms: dict[int, Vm] = field(default_factory=dict)
    overrides: dict[int, HostOverride] = field(default_factory=dict)
    vms_by_host: dict[int, list[Vm]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, hosts: list[Host], vms: list[Vm], overrides: dict[int, HostOverride]
    ) -> Snapshot:
        """Index what the store returned."""
        by_host: dict[int, list[Vm]] = {}
        for vm in vms:
            by_host.setdefault(vm.host_id, []).append(vm)
        return cls({h.id: h for h in hosts}, {v.id: v for v in vms}, overrides, by_host)

    def host_name(self, host: Host) -> str:
        """The host's name, as renamed through the API if it was."""
        override = self.overrides.get(host.id)
        return override.name if override is not None and override.name else host.name

    def host_by_name(self, name: str) -> Host | None:
        """The host shown under ``name``."""
        return next((h for h in self.hosts.values() if self.host_name(h) == name), None)

    def override(self, host_id: int) -> HostOverride:
        """The host's override (empty when none)."""
        return self.overrides.get(host_id) or HostOverride(host_id)


class StoreView:
    """Cached snapshots and history reads; blocking database work runs in threads."""

    def __init__(self, reader: StoreReader, overrides: OverrideStore, url: str,
                 cache_seconds: float) -> None:  # fmt: skip
        self.reader = reader
        self.overrides = overrides
        self.cache_seconds = cache_seconds
        self._sqlite_file = _sqlite_file(url)
        self._snapshot: Snapshot | None = None
        self._taken = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Read the store again at the next request."""
        self._snapshot = None

    async def snapshot(self) -> Snapshot:
        """The current snapshot (at most ``cache_seconds`` old)."""
        async with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._taken >= self.cache_seconds:
                self._snapshot = await self._run(self._load)
                self._taken = now
            return self._snapshot

    async def wait_for(self, condition: Callable[[Snapshot], bool], timeout: float) -> bool:
        """Re-read the store until ``condition`` holds (read-your-writes); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.invalidate()
            if condition(await self.snapshot()):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)

    async def host_latest(self, host_id: int) -> Sample | None:
        """The host's latest monitoring row."""
        rows = await self._run(self.reader.host_history, host_id, 0.0, None, 1)
        return rows[-1] if rows else None

    async def vm_latest(self, vm_id: int) -> Sample | None:
        """The VM's latest monitoring row."""
        rows = await self._run(self.reader.vm_history, vm_id, 0.0, None, 1)
        return rows[-1] if rows else None

    async def host_history(self, host_id: int) -> list[Sample]:
        """All stored rows of a host, oldest first."""
        return await self._run(self.reader.host_history, host_id, 0.0)

    async def vm_history(self, vm_id: int) -> list[Sample]:
        """All stored rows of a VM, oldest first."""
        return await self._run(self.reader.vm_history, vm_id, 0.0)

    async def hosts_history(self, since: float) -> dict[int, list[Sample]]:
        """Every host's rows newer than ``since``."""
        return await self._run(self.reader.hosts_history, since)

    async def vms_history(self, since: float) -> dict[int, list[Sample]]:
        """Every VM's rows newer than ``since``."""
        return await self._run(self.reader.vms_history, since)

    def _load(self) -> Snapshot:
        snapshot = self.reader.load()
        return Snapshot.build(snapshot.hosts, snapshot.vms, self.overrides.load())

    async def _run(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``function`` in a thread; database failures become :class:`StoreUnavailable`."""
        if self._sqlite_file is not None and not self._sqlite_file.exists():
            raise StoreUnavailable(f"{self._sqlite_file} does not exist (collector not started?)")
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (SQLAlchemyError, StoreError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (never created by a reader), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)
