"""The agents' self-metrics, relayed per host (``host.agent``; any key may be missing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from onemon.collector.model import Host

from .access import distinct, put, vectors
from .labels import Labels, sub
from .sink import Sink
from .text import plain

_FLAT: Final = (
    ("onemon_agent_probe_failures_total", "PROBE_FAILURES"),
    ("onemon_agent_probe_timeouts_total", "PROBE_TIMEOUTS"),
    ("onemon_agent_group_skips_total", "GROUP_SKIPS"),
    ("onemon_agent_messages_sent_total", "MESSAGES_SENT"),
    ("onemon_agent_messages_dropped_total", "MESSAGES_DROPPED"),
    ("onemon_agent_spool_messages", "SPOOL_MESSAGES"),
    ("onemon_agent_spool_bytes", "SPOOL_BYTES"),
)
_GROUP: Final = ("group",)


def emit(sink: Sink, hosts: Sequence[Host], labels: Labels) -> None:
    """Every ``onemon_agent_*`` family."""
    flat = [(sink.out(name), key) for name, key in _FLAT]
    cycle = sink.out("onemon_agent_cycle_seconds")
    for host in hosts:
        agent = host.agent
        if not agent:
            continue
        try:
            owner = labels.host(host)
            skipped = 0
            for family, key in flat:
                skipped += put(family, owner.braces, agent.get(key), plain)
            groups = distinct(
                [(sub(owner, _GROUP, (vec.get("GROUP"),)), vec)
                 for vec in vectors(agent, "CYCLE_SECONDS")]
            )  # fmt: skip
            for tag, vec in groups:
                skipped += put(cycle, tag, vec.get("SECONDS"), plain)
            sink.skipped += skipped
        except Exception:  # an agent dict of an unexpected shape
            sink.skipped += 1
