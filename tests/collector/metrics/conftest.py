"""Fixtures: a renderer with a fixed clock and a fake procfs, the rich state."""

from __future__ import annotations

from pathlib import Path

import pytest
from metrics_states import CLOCK, rich_state, write_procfs

from onemon.collector.metrics import Renderer
from onemon.collector.model import Host, Vm


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    """A fake procfs: RcvbufErrors 7 + 1, InErrors 9 + 1."""
    return write_procfs(tmp_path / "proc")


@pytest.fixture
def renderer(procfs: Path) -> Renderer:
    """A renderer with a fixed clock and the fake procfs."""
    return Renderer(procfs=procfs, clock=lambda: CLOCK)


@pytest.fixture
def rich(renderer: Renderer) -> tuple[dict[int, Host], dict[int, Vm]]:
    """The rich state; the renderer's collector is sharded (leads shard 0 of 2)."""
    health = renderer.health
    health.shard_leader, health.shard_hosts = {0: 1, 1: 0}, {0: 3}
    health.shard_takeovers, health.shard_redirects, health.shard_relayed = {0: 1, 1: 0}, 5, 7
    return rich_state()
