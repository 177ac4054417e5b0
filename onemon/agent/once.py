"""``one-agent --once``: every group run once and shown, for admins debugging probes."""

from __future__ import annotations

import json
import time
from typing import Any

from onemon.agent.config import AgentConfig
from onemon.agent.groups import ProbeGroups
from onemon.wire import template
from onemon.wire.errors import WireError
from onemon.wire.model import Message


async def run_once(config: AgentConfig) -> list[tuple[Message, float]]:
    """Every group once, without sending and without touching the tracker's state file."""
    groups = ProbeGroups(config, dict, persistent=False)
    results: list[tuple[Message, float]] = []
    try:
        for group in groups.groups():
            started = time.monotonic()
            message = await group.collect()
            if message is not None:
                results.append((message, time.monotonic() - started))
    finally:
        groups.close()
    return results


def describe(message: Message, seconds: float) -> str:
    """A message as an admin reads it: header line, then the template."""
    head = (
        f"== {message.type.name} {message.status.name} host {message.host_id} "
        f"({seconds * 1000:.1f} ms)"
    )
    if not message.ok:
        return f"{head}\n{message.error}\n"
    try:
        body = template.write(message.payload)
    except WireError as exc:
        body = f"(cannot be written as a template: {exc})\n{message.payload!r}\n"
    return f"{head}\n{body}"


def as_json(results: list[tuple[Message, float]]) -> str:
    """The messages as JSON, for scripts."""
    items: list[dict[str, Any]] = [
        {
            "type": m.type.name,
            "status": m.status.name,
            "host_id": m.host_id,
            "timestamp": m.timestamp,
            "seconds": round(seconds, 6),
            "payload": m.payload,
            "error": m.error,
        }
        for m, seconds in results
    ]
    return json.dumps(items, indent=2, sort_keys=True)
