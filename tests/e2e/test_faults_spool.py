"""Collector down: the agent spools within its caps, drops the oldest, counts every drop exactly.

A counter probe makes every STATE_VM name a new VM, so the collector's journal says which of the
agent's messages arrived and in which order. The collector is killed (-9), stays down while the
agent spools far more than its cap, then comes back. ``ONEMON_FAULTS_LONG=1`` keeps it down for
10 minutes (as ``python -m bench.soak --collector-down 10`` does).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.fleet_agent import collector_outage

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

LONG = os.environ.get("ONEMON_FAULTS_LONG") == "1"


def test_collector_down_spool_capped_oldest_dropped_and_counted_rest_in_order(
    tmp_path: Path,
) -> None:
    down = 600.0 if LONG else 6.0
    figures = collector_outage(
        tmp_path, down, state_period=1.0 if LONG else 0.2, spool_cap=100 if LONG else 10
    )
    report = "\n".join(figures.describe())
    assert not figures.check(), report
    assert figures.dropped_reported > 0, report  # the cap was really reached
    assert figures.missing, report
    assert len(figures.delivered) >= figures.before + figures.spool_cap, report
