"""CPU percent from cumulative CPU-time counters sampled over wall-clock time.

The result is OpenNebula's VM ``CPU`` unit: percent of **one** core (100 = one busy core, 200 =
two). The first sighting of a key, a counter that went backwards (the domain was restarted under
the same key) or a zero wall delta give ``None``: no figure rather than a false 0, so the
collector keeps the last value it had (monitord merges new keys over the stored ones).
"""

from __future__ import annotations

from collections.abc import Iterable


class CpuMeter:
    """Keeps the previous (cpu ns, wall s) sample per key and turns the next one into a percent."""

    __slots__ = ("_prev",)

    def __init__(self) -> None:
        self._prev: dict[str, tuple[int, float]] = {}

    def percent(self, key: str, cpu_ns: int, now: float) -> float | None:
        """Record ``cpu_ns`` at ``now`` (monotonic seconds); the percent since the last record."""
        prev = self._prev.get(key)
        self._prev[key] = (cpu_ns, now)
        if prev is None:
            return None
        used = cpu_ns - prev[0]
        wall = now - prev[1]
        if used < 0 or wall <= 0:
            return None
        return round(used / (wall * 1e7), 2)

    def retain(self, keys: Iterable[str]) -> None:
        """Forget every key not in ``keys`` (domains that are gone)."""
        keep = set(keys)
        for key in [k for k in self._prev if k not in keep]:
            del self._prev[key]

    def __len__(self) -> int:
        """How many keys have a previous sample."""
        return len(self._prev)
