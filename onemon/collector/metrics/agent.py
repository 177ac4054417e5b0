"""The agents' self-metrics, relayed per host (``host.agent``; any key may be missing)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any, Final

from onemon.collector.model import Host

from .access import Fields, Rows, distinct, vectors
from .columns import column
from .labels import Labels, Owner, sub
from .sink import Sink
from .text import plain

_FLAT: Final[Fields] = (
    ("onemon_agent_probe_failures_total", "PROBE_FAILURES", plain),
    ("onemon_agent_probe_timeouts_total", "PROBE_TIMEOUTS", plain),
    ("onemon_agent_group_skips_total", "GROUP_SKIPS", plain),
    ("onemon_agent_messages_sent_total", "MESSAGES_SENT", plain),
    ("onemon_agent_messages_dropped_total", "MESSAGES_DROPPED", plain),
    ("onemon_agent_spool_messages", "SPOOL_MESSAGES", plain),
    ("onemon_agent_spool_bytes", "SPOOL_BYTES", plain),
    ("onemon_agent_hypervisor_unreachable_total", "HYPERVISOR_UNREACHABLE", plain),
)
_CYCLE: Final[Fields] = (("onemon_agent_cycle_seconds", "SECONDS", plain),)
_GROUP: Final = ("group",)
_CYCLE_PREFIX: Final = "CYCLE_SECONDS_"
"""One-agent sends ``CYCLE_SECONDS_<GROUP>=s`` (flat: a template vector cannot nest)."""


def _cycles(agent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(group, {"SECONDS": s}) from flat keys, plus any ``CYCLE_SECONDS=[GROUP, SECONDS]``."""
    found = [
        (key[len(_CYCLE_PREFIX) :].lower(), {"SECONDS": value})
        for key, value in agent.items()
        if key.startswith(_CYCLE_PREFIX)
    ]
    found += [(str(v.get("GROUP")), v) for v in vectors(agent, "CYCLE_SECONDS")]
    return found


def emit(sink: Sink, hosts: Sequence[Host], labels: Labels) -> None:
    """Every ``onemon_agent_*`` family, a column at a time."""
    owners: list[Owner] = []
    agents: list[dict[str, Any]] = []
    cycles = Rows()
    for host in hosts:
        agent = host.agent
        if not agent:
            continue
        try:
            if not isinstance(agent, dict):
                raise TypeError("agent metrics are not a template")
            owner = labels.host(host)
            groups = [(sub(owner, _GROUP, (group,)), v) for group, v in _cycles(agent)]
        except Exception:  # an agent template of an unexpected shape
            sink.skipped += 1
            continue
        owners.append(owner)
        agents.append(agent)
        cycles.extend(distinct(groups))
    tags = [owner.braces for owner in owners]
    for name, key, conv in _FLAT:
        column(sink, name, tags, list(map(dict.get, agents, repeat(key))), conv)
    cycles.write(sink, _CYCLE)
