"""Who starts and stops agents, and when (OpenNebula's HostMonitorManager, reference §5.3).

Every manager timer the hosts are read from the collector's API and compared with the last
reading: a new host in INIT, an enabled host (→ INIT) and a host back from OFFLINE get their
agent started; a host gone OFFLINE or deleted gets it stopped; a host silent for longer than
the monitoring interval (counted from its last message or the last start attempt, whichever
is later) gets it restarted. Only a failed (re)start puts a host in ERROR, with the driver's
failure text; a successful one reports ``monitored``. Better than onemonitord: an agent that
started fine but whose messages never reach the collector (wrong address, firewall) is not
reported MONITORED again and again — the host goes to ERROR saying so, and restarts go on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from onemon.front.im.api import ApiError, CollectorApi, HostView
from onemon.front.im.driver import ImDriver, Result

log = logging.getLogger("onemon.front.im.liveness")

OFFLINE = "OFFLINE"
INIT = "INIT"


class Action(enum.Enum):
    """What to do with a host's agent."""

    START = "start"
    STOP = "stop"


@dataclass
class Track:
    """What the manager remembers about a host between checks."""

    last_attempt: float = 0.0
    """When the last start attempt ended (success or not)."""
    started_at: float = 0.0
    """When the last successful start began (its agent's messages come after this)."""


def decide(
    host: HostView, previous: HostView | None, track: Track, now: float, interval: float
) -> tuple[Action, str] | None:
    """The action this reading of ``host`` calls for, with why; None for nothing."""
    if host.state == OFFLINE:
        if previous is not None and previous.state != OFFLINE:
            return Action.STOP, "host is offline"
        return None
    if previous is None and host.state == INIT:
        return Action.START, "new host"
    if previous is not None and previous.state != host.state and host.state == INIT:
        return Action.START, "host enabled"
    if previous is not None and previous.state == OFFLINE:
        return Action.START, "host back from offline"
    if now - max(host.last_seen, track.last_attempt) >= interval:
        silent = f"{now - host.last_seen:.0f} s" if host.last_seen else "ever"
        return Action.START, f"no message for {silent}"
    return None


def silent_since_start(host: HostView, track: Track) -> bool:
    """Whether the agent last started fine but nothing from it has reached the collector."""
    return track.started_at > 0 and host.last_seen < track.started_at


class Manager:
    """The liveness loop; :meth:`check` once, or :meth:`run` every ``timer`` seconds."""

    def __init__(
        self,
        driver: ImDriver,
        api: CollectorApi,
        interval: float,
        timer: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.driver = driver
        self.api = api
        self.interval = interval
        self.timer = timer
        self.clock = clock
        self.previous: dict[int, HostView] = {}
        self.tracks: dict[int, Track] = {}
        self.busy: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Check every ``timer`` seconds until cancelled, then abandon running actions."""
        try:
            while True:
                await self.check()
                await asyncio.sleep(self.timer)
        finally:
            for task in list(self.busy.values()):
                task.cancel()
            await asyncio.gather(*self.busy.values(), return_exceptions=True)

    async def check(self) -> None:
        """Read the hosts once and launch what they call for."""
        try:
            hosts = await self.api.hosts()
        except ApiError as exc:
            log.warning("cannot read hosts: %s", exc)
            return
        now = self.clock()
        current = {host.id for host in hosts}
        for host_id, gone in self.previous.items():
            if host_id not in current:
                self.tracks.pop(host_id, None)
                if gone.state != OFFLINE:
                    self._launch(gone, Action.STOP, "host deleted")
        seen: dict[int, HostView] = {}
        for host in hosts:
            previous = self.previous.get(host.id)
            if host.id in self.busy:  # judged again once its action ends, against the old reading
                seen[host.id] = previous or host
                continue
            seen[host.id] = host
            track = self.tracks.setdefault(host.id, Track())
            decision = decide(host, previous, track, now, self.interval)
            if decision is not None:
                self._launch(host, *decision)
        self.previous = seen

    async def wait_idle(self) -> None:
        """Until every launched action has ended."""
        while self.busy:
            await asyncio.gather(*self.busy.values(), return_exceptions=True)

    def _launch(self, host: HostView, action: Action, why: str) -> None:
        doing = "starting" if action is Action.START else "stopping"
        log.info("host %d (%s): %s; %s its agent", host.id, host.name, why, doing)
        work = self._start(host) if action is Action.START else self._stop(host)
        task = asyncio.create_task(work, name=f"im-{action.value}-{host.id}")
        self.busy[host.id] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        for host_id, running in list(self.busy.items()):
            if running is task:
                del self.busy[host_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("IM action failed", exc_info=task.exception())

    async def _stop(self, host: HostView) -> None:
        result = await self.driver.stop(host.host)
        if not result.ok:
            log.warning("host %d (%s): %s", host.id, host.name, result.message)

    async def _start(self, host: HostView) -> None:
        track = self.tracks.setdefault(host.id, Track())
        silent = silent_since_start(host, track)
        if silent:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(track.started_at))
            await self._report(
                host,
                "error",
                f"The agent on {host.name} was started at {since} but none of its "
                "messages reached the collector (check the collector address, port and key)",
            )
        begun = self.clock()
        result = await self.driver.start(host.host)
        track.last_attempt = self.clock()
        if result.ok:
            track.started_at = begun
            self._log_started(host, result)
            if not silent:
                await self._report(host, "monitored")
        else:
            log.warning("host %d (%s): %s", host.id, host.name, result.message)
            await self._report(host, "error", result.message)

    def _log_started(self, host: HostView, result: Result) -> None:
        version = result.reply.version if result.reply else ""
        log.info("host %d (%s): agent started (probes %s)", host.id, host.name, version or "-")

    async def _report(self, host: HostView, action: str, message: str = "") -> None:
        try:
            if not await self.api.report(host.id, action, message):
                log.info("host %d is gone; %s not reported", host.id, action)
        except ApiError as exc:
            log.warning("host %d (%s): cannot report %s: %s", host.id, host.name, action, exc)
