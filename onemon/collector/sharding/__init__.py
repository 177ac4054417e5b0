"""Several collectors on one store: shards of hosts, one leader each (docs/sharding.md).

``shardmap`` says which shard a host is in; ``leases`` holds the database side (the lock
session, the lease table, the writers' fence); ``coordinator`` takes, keeps and gives up shards;
``router`` is the ingest hook for messages of shards led elsewhere (redirect or relay);
``admin`` restricts host administration to the shards led here.
"""

from onemon.collector.sharding.admin import ShardedHostAdmin
from onemon.collector.sharding.codes import MOVED, NO_LEADER
from onemon.collector.sharding.coordinator import Coordinator, Parts
from onemon.collector.sharding.router import Router
from onemon.collector.sharding.shardmap import ShardMap, hashed_shard

__all__ = [
    "MOVED",
    "NO_LEADER",
    "Coordinator",
    "Parts",
    "Router",
    "ShardMap",
    "ShardedHostAdmin",
    "hashed_shard",
]
