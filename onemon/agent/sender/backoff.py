"""OpenNebula's back-off after consecutive send failures (reference §4.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

BACKOFF_SECONDS: Final[tuple[float, ...]] = (1, 1, 1, 2, 4, 8, 8, 16, 32, 64)
"""Delay after the 1st, 2nd… consecutive failure; the last value repeats."""


class Backoff:
    """Consecutive-failure counter mapping to the next delay."""

    def __init__(self, steps: Sequence[float] = BACKOFF_SECONDS) -> None:
        if not steps or any(step < 0 for step in steps):
            raise ValueError("back-off steps must be a non-empty list of delays >= 0")
        self._steps = tuple(float(step) for step in steps)
        self.failures = 0

    def fail(self) -> float:
        """Record one more failure; return how long to wait before the next attempt."""
        delay = self._steps[min(self.failures, len(self._steps) - 1)]
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Forget past failures."""
        self.failures = 0

    @property
    def longest(self) -> float:
        """The delay the sequence settles on."""
        return self._steps[-1]
