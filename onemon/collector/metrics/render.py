"""Render state into one cached exposition body (plus its gzip), off the event loop.

Call :meth:`MetricsCache.refresh` from a worker thread (``loop.run_in_executor``) when state
changes or on a short timer; the HTTP handler only returns :meth:`MetricsCache.response`.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from onemon.collector.model import Host, Vm

from . import agent, hosts, vms
from .columns import Templates
from .health import Health
from .health import emit as emit_health
from .kernel import UdpErrors, udp_errors
from .labels import Labels
from .sink import Sink

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of the body (Prometheus text format 0.0.4)."""

_T = TypeVar("_T")

HostSource = Mapping[int, Host] | Iterable[Host]
"""Hosts by id, or any iterable of hosts."""
VmSource = Mapping[int, Vm] | Iterable[Vm]
"""VMs by id, or any iterable of VMs."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One render: the body, its gzip copy, when and how long."""

    body: bytes
    gzip_body: bytes
    rendered_at: float
    """Wall-clock time the render started."""
    render_seconds: float
    """Render plus compression."""
    gzip_seconds: float
    samples: int
    skipped: int
    """Values left out (not numeric, not finite, unreadable)."""


def _snapshot(items: Mapping[int, _T] | Iterable[_T]) -> tuple[_T, ...]:
    """A tuple taken in one C-level step, so a concurrent insert cannot break the iteration."""
    return tuple(items.values()) if isinstance(items, Mapping) else tuple(items)


class Renderer:
    """Turns state into the body; one render at a time (MetricsCache serializes), any thread."""

    def __init__(
        self,
        health: Health | None = None,
        *,
        gzip_level: int = 1,
        procfs: Path = Path("/proc"),
        clock: Callable[[], float] = time.time,
        shard_of: Callable[[int], int] | None = None,
    ) -> None:
        """``shard_of`` (host id → shard): sharding is on, host and VM series get ``shard``."""
        self.health = health if health is not None else Health()
        self.gzip_level = gzip_level
        self._procfs = procfs
        self._clock = clock
        self._labels = Labels(shard_of)
        self._templates = Templates()

    def udp_errors(self) -> UdpErrors | None:
        """The kernel's UDP error counters (None when /proc does not have them)."""
        return udp_errors(self._procfs)

    def body(self, host_state: HostSource, vm_state: VmSource, at: float) -> tuple[bytes, int, int]:
        """The exposition body as of wall time ``at``, its sample count and the values skipped."""
        host_list, vm_list = _snapshot(host_state), _snapshot(vm_state)
        self._labels.rotate()
        self._templates.rotate()
        sink = Sink(self._templates)
        counts = Counter(vm.host_id for vm in vm_list)
        hosts.emit(sink, host_list, counts, self._labels)
        agent.emit(sink, host_list, self._labels)
        vms.emit(sink, vm_list, self._labels)
        emit_health(sink, self.health, host_list, vm_list, self.udp_errors(), at)
        body, samples = sink.body()
        return body, samples, sink.skipped

    def render(self, host_state: HostSource, vm_state: VmSource) -> Rendered:
        """Render and compress; records its own duration in :attr:`health` for the next one."""
        started, at = time.perf_counter(), self._clock()
        body, samples, skipped = self.body(host_state, vm_state, at)
        zipped = time.perf_counter()
        gzip_body = zlib.compress(body, self.gzip_level, wbits=31)
        done = time.perf_counter()
        figures = self.health
        figures.render_seconds = done - started
        figures.render_samples, figures.render_skipped = samples, skipped
        return Rendered(body, gzip_body, at, done - started, done - zipped, samples, skipped)


class MetricsCache:
    """The latest render, swapped in whole; safe to read from any thread."""

    def __init__(self, renderer: Renderer | None = None) -> None:
        self.renderer = renderer if renderer is not None else Renderer()
        self._lock = threading.Lock()
        self._current = self.renderer.render((), ())

    @property
    def current(self) -> Rendered:
        """The latest render."""
        return self._current

    def refresh(self, host_state: HostSource, vm_state: VmSource) -> Rendered:
        """Render now (blocking; run it in a worker thread) and make it current."""
        with self._lock:
            rendered = self.renderer.render(host_state, vm_state)
            self._current = rendered
        return rendered

    def response(self, accept_encoding: str | None = None) -> tuple[bytes, str | None]:
        """The body to send and its Content-Encoding (``"gzip"`` when the client accepts it)."""
        current = self._current
        if wants_gzip(accept_encoding):
            return current.gzip_body, "gzip"
        return current.body, None


def wants_gzip(accept_encoding: str | None) -> bool:
    """True when an Accept-Encoding header allows gzip (``q=0`` refuses it)."""
    for item in (accept_encoding or "").lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding in ("gzip", "x-gzip", "*"):
            quality = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False
