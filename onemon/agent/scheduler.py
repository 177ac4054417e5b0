"""One loop per probe group: run, send, sleep until the next period; overruns are skipped."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from onemon.wire.model import Message

log = logging.getLogger("onemon.agent.scheduler")

Collect = Callable[[], Awaitable[Message | None]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Group:
    """A probe group: its name, period and the coroutine that produces its message."""

    name: str
    period: float
    collect: Collect


@dataclass
class GroupStats:
    """What one group's loop has done."""

    cycles: int = 0
    skips: int = 0
    errors: int = 0
    last_seconds: float = 0.0
    max_seconds: float = 0.0


@dataclass
class Scheduler:
    """Runs every group on its own period, independently of the others."""

    groups: list[Group]
    send: Send
    clock: Callable[[], float] = time.monotonic
    stats: dict[str, GroupStats] = field(default_factory=dict)
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start one task per group; the first run of each is immediate."""
        for group in self.groups:
            self.stats.setdefault(group.name, GroupStats())
            self._wake[group.name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(group), name=f"group:{group.name}"))

    def trigger(self, name: str) -> None:
        """Run group ``name`` now (SIGUSR1 does this for the system group)."""
        event = self._wake.get(name)
        if event is not None:
            event.set()

    async def stop(self) -> None:
        """Cancel every group loop and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, group: Group) -> None:
        stats = self.stats[group.name]
        wake = self._wake[group.name]
        due = self.clock()
        while True:
            delay = due - self.clock()
            if delay > 0:
                try:
                    await asyncio.wait_for(wake.wait(), delay)
                    due = self.clock()  # triggered: run now, and count the period from here
                except TimeoutError:
                    pass
            wake.clear()
            started = self.clock()
            await self._run_once(group, stats)
            elapsed = self.clock() - started
            stats.cycles += 1
            stats.last_seconds = elapsed
            stats.max_seconds = max(stats.max_seconds, elapsed)
            due += group.period
            now = self.clock()
            if due <= now:
                missed = math.floor((now - due) / group.period) + 1
                stats.skips += missed
                due += missed * group.period
                log.warning(
                    "group %s took %.1f s (period %.0f s): %d run(s) skipped",
                    group.name, elapsed, group.period, missed,
                )  # fmt: skip

    async def _run_once(self, group: Group, stats: GroupStats) -> None:
        try:
            message = await group.collect()
            if message is not None:
                await self.send(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            stats.errors += 1
            log.exception("group %s failed", group.name)
