"""``onemon host sync [--force]``: push the probe tree to nodes reporting an older VERSION (§4.7).

As ``onehost sync``: OFFLINE hosts are skipped; without force only hosts whose SYSTEM_HOST
``VERSION`` is older than the tree's ``VERSION`` file (or missing) get it; the agents are not
restarted (probes are new processes every run, so new and changed probes take effect at once).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from onemon.front.im.api import CollectorApi, HostView
from onemon.front.im.driver import ImDriver
from onemon.front.im.runtime import Runtime

_PART = re.compile(r"[.\-+_~]")


def read_version(tree: Path) -> str:
    """The tree's ``VERSION`` (empty when it has none)."""
    try:
        return (tree / "VERSION").read_text().strip()
    except OSError:
        return ""


def version_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key: numeric parts as numbers, text parts after them (``7.5.80`` < ``7.10``)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in _PART.split(text.strip())
        if part
    )


def is_older(reported: str, shipped: str) -> bool:
    """Whether a node reporting ``reported`` needs the tree versioned ``shipped``."""
    if not shipped:
        return False
    return not reported or version_key(reported) < version_key(shipped)


@dataclass(frozen=True)
class SyncLine:
    """What sync did for one host: ``synced``, ``current``, ``offline`` or ``failed``."""

    host: HostView
    outcome: str
    detail: str = ""

    def __str__(self) -> str:
        """One line for people."""
        text = f"host {self.host.id} ({self.host.name}): {self.outcome}"
        return f"{text}: {self.detail}" if self.detail else text


async def sync_hosts(
    driver: ImDriver, hosts: Iterable[HostView], shipped: str, force: bool = False
) -> list[SyncLine]:
    """Push to every host that needs it (all but OFFLINE ones with ``force``), concurrently."""
    lines: list[SyncLine] = []
    todo: list[HostView] = []
    for host in hosts:
        if host.state == "OFFLINE":
            lines.append(SyncLine(host, "offline", "skipped"))
        elif force or is_older(host.version, shipped):
            todo.append(host)
        else:
            lines.append(SyncLine(host, "current", f"VERSION {host.version}"))
    results = await asyncio.gather(*(driver.sync(h.host) for h in todo))
    for host, result in zip(todo, results, strict=True):
        was = host.version or "none"
        if result.ok:
            lines.append(SyncLine(host, "synced", f"VERSION {was} -> {shipped or 'none'}"))
        else:
            lines.append(SyncLine(host, "failed", result.message))
    return sorted(lines, key=lambda line: line.host.id)


async def sync(
    runtime: Runtime, force: bool = False, host_ids: Iterable[int] = ()
) -> list[SyncLine]:
    """``onemon host sync [--force] [ids]``: read the hosts from the collector and push."""
    wanted = set(host_ids)
    async with CollectorApi(runtime.endpoint, runtime.token) as api:
        hosts = [h for h in await api.hosts() if not wanted or h.id in wanted]
    shipped = read_version(runtime.config.probe_tree)
    return await sync_hosts(ImDriver(runtime), hosts, shipped, force)
