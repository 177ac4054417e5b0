"""State changes as events, for in-process subscribers (hooks later) and the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from onemon.collector.model import HostState, VmReport

log = logging.getLogger("onemon.collector.events")


@dataclass(frozen=True, slots=True)
class HostStateChanged:
    """A host moved between INIT / MONITORED / ERROR / DISABLED / OFFLINE."""

    time: float
    host_id: int
    old: HostState
    new: HostState
    error: str = ""

    def describe(self) -> str:
        """One log line."""
        why = f": {self.error}" if self.error else ""
        return f"host {self.host_id} {self.old.name} -> {self.new.name}{why}"


@dataclass(frozen=True, slots=True)
class VmStateChanged:
    """A VM's reported state changed; ``source`` says which rule changed it."""

    time: float
    vm_id: int
    host_id: int
    old: VmReport
    new: VmReport
    source: str

    def describe(self) -> str:
        """One log line."""
        return f"vm {self.vm_id} on host {self.host_id} {self.old} -> {self.new} ({self.source})"


@dataclass(frozen=True, slots=True)
class ZombiesChanged:
    """The set of VMs a host runs but should not changed."""

    time: float
    host_id: int
    zombies: tuple[int, ...]

    def describe(self) -> str:
        """One log line."""
        return f"host {self.host_id} zombies: {list(self.zombies) or 'none'}"


Event = HostStateChanged | VmStateChanged | ZombiesChanged
Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers every event to each subscriber; a failing subscriber never stops the others."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Register ``subscriber``; returns a function that unsubscribes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, events: list[Event]) -> None:
        """Log and deliver ``events`` in order."""
        for event in events:
            log.info("%s", event.describe())
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception:
                    log.exception("event subscriber %r failed", subscriber)
