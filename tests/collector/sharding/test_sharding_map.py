"""Which shard a host is in: stable, spread, minimal movement, assignment by hand wins."""

from __future__ import annotations

from collections import Counter

import pytest

from onemon.agent.sender import redirect
from onemon.collector.sharding import MOVED, NO_LEADER, ShardMap, hashed_shard
from onemon.collector.sharding.codes import MAX_ADDRESS
from onemon.collector.sharding.shardmap import jump_hash, splitmix64

PINNED = [3, 3, 0, 1, 3, 3, 0, 1, 0, 2, 2, 0]
"""Shards of hosts 0..11 among 4: changing them would move hosts between running collectors."""


def test_the_hash_is_fixed_forever() -> None:
    """Every collector (any version, any machine) must put a host in the same shard."""
    assert [hashed_shard(i, 4) for i in range(12)] == PINNED
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert jump_hash(0, 1) == 0 and hashed_shard(-5, 7) == hashed_shard(-5, 7)


def test_hosts_spread_evenly_and_few_move_when_a_shard_is_added() -> None:
    counts = Counter(hashed_shard(i, 4) for i in range(20_000))
    assert all(4_600 < n < 5_400 for n in counts.values()), counts
    moved = sum(hashed_shard(i, 4) != hashed_shard(i, 5) for i in range(20_000))
    assert 0.15 < moved / 20_000 < 0.25  # 1/5 ideally
    grown = [hashed_shard(i, 5) for i in range(20_000) if hashed_shard(i, 4) != hashed_shard(i, 5)]
    assert set(grown) == {4}  # only into the new shard


def test_assignment_by_hand_wins_and_is_checked() -> None:
    shard_map = ShardMap.from_lists(3, [(2, [0, 1]), (0, [7])])
    assert [shard_map.shard_of(h) for h in (0, 1, 7)] == [2, 2, 0]
    assert shard_map.shard_of(5) == hashed_shard(5, 3) and not shard_map.assigned(5)
    with pytest.raises(ValueError):
        ShardMap(2, {1: 2})


def test_agent_and_collector_speak_the_same_codes() -> None:
    assert (redirect.MOVED, redirect.NO_LEADER) == (MOVED, NO_LEADER)
    target = redirect.redirect_target(MOVED + "[2001:db8::1]:4200")
    assert target is not None and (target.host, target.port) == ("2001:db8::1", 4200)
    assert redirect.redirect_target("replay") is None
    assert redirect.redirect_target(MOVED + "bad host:1") is None
    assert len(MOVED) + MAX_ADDRESS + 16 < 256  # fits an ack frame
