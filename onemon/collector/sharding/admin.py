"""Host administration on a sharded collector: only for the shards it leads, ids cloud-wide."""

from __future__ import annotations

from collections.abc import Callable

from onemon.collector.admin import AdminError, HostAdmin
from onemon.collector.events import EventBus
from onemon.collector.ingest import Ingest, Persistence
from onemon.collector.model import Host
from onemon.collector.sharding.coordinator import Coordinator
from onemon.collector.state import CloudState

ID_SEARCH = 4096
"""How many ids past the highest one are tried for one in a shard this collector leads."""


class ShardedHostAdmin(HostAdmin):
    """``HostAdmin`` that refuses hosts of shards led elsewhere (naming the leader) and takes
    names and ids unique across the whole store, not only among the hosts it holds."""

    def __init__(
        self,
        state: CloudState,
        store: Persistence,
        ingest: Ingest,
        bus: EventBus,
        shards: Coordinator,
        stored_names: Callable[[], dict[int, str]],
    ) -> None:
        super().__init__(state, store, ingest, bus)
        self.shards = shards
        self.stored_names = stored_names

    def create(self, name: str, host_id: int | None = None, im_mad: str = "kvm") -> Host:
        """Register a host of a shard led here; without an id, the next id that is."""
        known = {**self.stored_names(), **{h.id: h.name for h in self.state.hosts.values()}}
        if name in known.values():
            raise AdminError(f"a host named {name!r} exists")
        if host_id is None:
            start = max(known, default=-1) + 1
            host_id = next(
                (i for i in range(start, start + ID_SEARCH) if self.shards.leads(i)), None
            )
            if host_id is None:
                raise AdminError("this collector leads no shard now: ask another one")
        elif host_id in known:
            raise AdminError(f"host id {host_id} is taken or invalid")
        elif host_id >= 0 and not self.shards.leads(host_id):
            raise AdminError(self._elsewhere(host_id))
        return super().create(name, host_id, im_mad)

    def _host(self, host_id: int) -> Host:
        if host_id >= 0 and not self.shards.leads(host_id):
            raise AdminError(self._elsewhere(host_id))
        return super()._host(host_id)

    def _elsewhere(self, host_id: int) -> str:
        shard = self.shards.shard_of(host_id)
        leader = self.shards.leader_of(host_id)
        where = f"led by the collector at {leader}" if leader else "without a leader right now"
        return f"host {host_id} is in shard {shard}, {where}: send the request there"
