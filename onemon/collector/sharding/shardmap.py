"""Which shard a host belongs to: by hand (``[[sharding.assign]]``), else a stable hash of its id.

The hash is Lamping and Veach's jump consistent hash of the host id mixed by SplitMix64: the
same on every collector and every run (no salt, no Python ``hash()``), spread evenly over
consecutive ids, and growing the shard count from n to n + 1 moves only 1/(n + 1) of the hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from onemon.collector.config import ShardingConfig

_MASK: Final = (1 << 64) - 1


def splitmix64(value: int) -> int:
    """SplitMix64's finalizer: a 64-bit mix of ``value`` (two's complement for negatives)."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash of a 64-bit ``key`` into ``0 .. buckets - 1``."""
    if buckets < 1:
        raise ValueError("at least one bucket is needed")
    key &= _MASK
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK
        jump = int((bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


def hashed_shard(host_id: int, shards: int) -> int:
    """The shard of a host that is not assigned by hand."""
    return jump_hash(splitmix64(host_id), shards)


class ShardMap:
    """Host id → shard, memoized (the ingest path asks once per message)."""

    __slots__ = ("_assigned", "_cache", "shards")

    def __init__(self, shards: int, assigned: Mapping[int, int] | None = None) -> None:
        if shards < 1:
            raise ValueError("at least one shard is needed")
        self.shards = shards
        self._assigned = dict(assigned or {})
        if any(not 0 <= s < shards for s in self._assigned.values()):
            raise ValueError(f"assigned shards must be 0..{shards - 1}")
        self._cache: dict[int, int] = dict(self._assigned)

    @classmethod
    def from_lists(cls, shards: int, lists: Iterable[tuple[int, Iterable[int]]]) -> ShardMap:
        """From ``(shard, host ids)`` pairs, as ``[[sharding.assign]]`` gives them."""
        return cls(shards, {host: shard for shard, hosts in lists for host in hosts})

    @classmethod
    def from_config(cls, cfg: ShardingConfig) -> ShardMap:
        """The map a ``[sharding]`` section describes."""
        return cls.from_lists(cfg.shards, [(a.shard, a.hosts) for a in cfg.assign])

    def shard_of(self, host_id: int) -> int:
        """The shard ``host_id`` belongs to."""
        shard = self._cache.get(host_id)
        if shard is None:
            shard = hashed_shard(host_id, self.shards)
            if len(self._cache) < 1_000_000:  # bounded: ids come from authenticated peers
                self._cache[host_id] = shard
        return shard

    def assigned(self, host_id: int) -> bool:
        """True when ``host_id`` is assigned by hand."""
        return host_id in self._assigned
