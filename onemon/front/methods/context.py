"""What the methods work with: the store view, the collector's API, the front's own tables."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from onemon.collector.model import Host
from onemon.front.collector_api import CollectorAdmin
from onemon.front.db.overrides import OverrideStore
from onemon.front.rpc.dispatch import Call
from onemon.front.rpc.errors import authorization, no_exists
from onemon.front.view import Snapshot, StoreView


class HostHooks(Protocol):
    """Told about host changes made through the API (the IM driver starts/stops agents)."""

    async def host_created(self, host_id: int) -> None:
        """A host was allocated."""

    async def host_status(self, host_id: int, action: str) -> None:
        """``enable``, ``disable`` or ``offline`` was applied."""

    async def host_deleted(self, host_id: int) -> None:
        """A host was deleted."""


class NoHooks:
    """Nobody to tell."""

    async def host_created(self, host_id: int) -> None:
        """Nothing."""

    async def host_status(self, host_id: int, action: str) -> None:
        """Nothing."""

    async def host_deleted(self, host_id: int) -> None:
        """Nothing."""


@dataclass
class Context:
    """Shared by every method."""

    view: StoreView
    admin: CollectorAdmin
    overrides: OverrideStore
    write_wait: float = 5.0
    listen_address: str = "::"
    port: int = 2633
    session_seconds: float = 900.0
    hooks: HostHooks = field(default_factory=NoHooks)
    changes: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Host changes run one at a time (name checks and the collector's answer stay coherent)."""


def require_admin(call: Call, operation: str) -> None:
    """AUTHORIZATION unless the caller is in group 0 (ACLs come with more users)."""
    if not call.identity.is_admin:
        raise authorization(call.identity.uid, operation)


def get_host(snapshot: Snapshot, host_id: int) -> Host:
    """The host, or NO_EXISTS."""
    host = snapshot.hosts.get(host_id)
    if host is None:
        raise no_exists("host", host_id)
    return host
