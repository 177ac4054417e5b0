"""The ordered collector list: per-collector back-off, first ready one preferred."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from onemon.agent.sender.address import Address, parse_address
from onemon.agent.sender.backoff import BACKOFF_SECONDS, Backoff
from onemon.agent.sender.redirect import MAX_REDIRECTS


@dataclass(slots=True)
class Collector:
    """One collector and its failure history."""

    address: Address
    backoff: Backoff
    ready_at: float = 0.0
    endpoint: int = 0
    """Which of the name's addresses to try first: the next one after each failure."""


class Failover:
    """Which collector to use: the first one in list order not waiting out its back-off."""

    def __init__(
        self,
        addresses: Sequence[str | Address],
        backoff: Sequence[float] = BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not addresses:
            raise ValueError("at least one collector address is needed")
        self.collectors = [
            Collector(a if isinstance(a, Address) else parse_address(a), Backoff(backoff))
            for a in addresses
        ]
        self._steps = tuple(backoff)
        self._listed = len(self.collectors)
        self.redirect: int | None = None
        """The collector a redirect points to, tried first until it fails (sharding)."""
        self.hops = 0
        self._clock = clock
        self.current = 0
        self.failovers = 0
        self.failures = 0

    def choose(self) -> tuple[int, float]:
        """The collector to try next and how long to wait first (0 when one is ready)."""
        now = self._clock()
        if self.redirect is not None and self.collectors[self.redirect].ready_at <= now:
            return self.redirect, 0.0
        for index, collector in enumerate(self.collectors[: self._listed]):
            if collector.ready_at <= now:
                return index, 0.0
        index = min(range(self._listed), key=lambda i: self.collectors[i].ready_at)
        return index, self.collectors[index].ready_at - now

    def ready(self, index: int) -> bool:
        """True when ``index`` is not waiting out a back-off."""
        return self.collectors[index].ready_at <= self._clock()

    def failed(self, index: int) -> float:
        """Record a dead-collector event for ``index``; return its back-off delay."""
        if index == self.redirect:
            self.redirect = None  # back to the list, in order
        collector = self.collectors[index]
        collector.endpoint += 1  # a name with several addresses: start with the next one
        delay = collector.backoff.fail()
        collector.ready_at = self._clock() + delay
        self.failures += 1
        return delay

    def succeeded(self, index: int) -> None:
        """``index`` proved healthy: clear its back-off."""
        collector = self.collectors[index]
        collector.backoff.reset()
        collector.ready_at = 0.0
        self.hops = 0

    def pause(self, index: int) -> float:
        """``index`` is alive but cannot serve now: skip it for one first back-off step."""
        if index == self.redirect:
            self.redirect = None
        delay = self._steps[0] if self._steps else 0.0
        self.collectors[index].ready_at = self._clock() + delay
        return delay

    def redirect_to(self, address: Address) -> int | None:
        """Follow a redirect: ``address`` is tried next; None after too many in a row."""
        self.hops += 1
        if self.hops > MAX_REDIRECTS:
            self.redirect = None
            return None
        listed = [c.address for c in self.collectors[: self._listed]]
        if self.current >= self._listed:
            self.current = 0  # the extra entry below goes
        del self.collectors[self._listed :]
        if address in listed:
            index = listed.index(address)
        else:  # one extra entry, replaced by the next redirect
            self.collectors.append(Collector(address, Backoff(self._steps)))
            index = self._listed
        self.collectors[index].ready_at = 0.0
        self.redirect = index
        return index

    def listed(self, index: int) -> bool:
        """True for a collector of the configured list (not a redirect's)."""
        return index < self._listed

    def use(self, index: int) -> None:
        """Make ``index`` the current collector, counting a change of collector as a failover."""
        if index != self.current:
            self.failovers += 1
            self.current = index

    @property
    def address(self) -> Address:
        """The current collector's address."""
        return self.collectors[self.current].address
