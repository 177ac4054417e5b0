"""What the fleet benchmarks measure about a running collector, from the outside.

- ``ProcSampler``: a process's CPU (all threads, and the main thread alone), RSS, threads, fds.
- ``Scraper``: ``GET /metrics`` as Prometheus does (gzip), timed to the last byte.
- ``LatencyPoller``: for each sample the sender reports (what it sent, when), polls the JSON API
  until the value is visible and records send→visible.
- kernel drops of the collector's own UDP socket (``/proc/net/udp``) and of the namespace.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.collector_ingest import drops

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank), NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(value: float) -> str:
    """Seconds as milliseconds text."""
    if math.isnan(value):
        return "—"
    return f"{value * 1e3:,.1f} ms" if value < 10 else f"{value:,.1f} s"


def socket_drops(port: int) -> int:
    """Datagrams the kernel dropped for the IPv4 UDP socket bound to ``port``."""
    suffix = f":{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(suffix):
                return int(fields[-1])
    return 0


def namespace_drops() -> int:
    """RcvbufErrors of the whole network namespace (any process's sockets)."""
    return drops()


@dataclass(frozen=True)
class ProcSample:
    """One reading of a process."""

    at: float
    cpu: float
    """CPU seconds, all threads."""
    main_cpu: float
    rss: int
    threads: int
    fds: int


def _cpu(stat_path: str) -> float:
    with open(stat_path) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_proc(pid: int) -> ProcSample:
    """Read ``pid``'s figures now."""
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    cpu = _cpu(f"/proc/{pid}/stat")
    main = _cpu(f"/proc/{pid}/task/{pid}/stat")
    return ProcSample(time.monotonic(), cpu, main, rss, threads, fds)


@dataclass
class ProcSampler:
    """Samples a process every ``interval`` seconds in a thread."""

    pid: int
    interval: float = 1.0
    samples: list[ProcSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcSampler:
        """Start sampling."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="proc-sampler")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.samples.append(read_proc(self.pid))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def between(self, start: float, end: float) -> list[ProcSample]:
        """Samples taken in ``[start, end]`` (monotonic)."""
        return [s for s in self.samples if start <= s.at <= end]

    def cpu_share(self, start: float, end: float) -> tuple[float, float]:
        """(all threads, main thread) CPU in cores over the window."""
        window = self.between(start, end)
        if len(window) < 2:
            return math.nan, math.nan
        first, last = window[0], window[-1]
        seconds = last.at - first.at
        return (last.cpu - first.cpu) / seconds, (last.main_cpu - first.main_cpu) / seconds

    def peak_rss(self, start: float, end: float) -> int:
        """Largest RSS in the window."""
        return max((s.rss for s in self.between(start, end)), default=0)

    def latest(self) -> ProcSample | None:
        """The last sample."""
        return self.samples[-1] if self.samples else None


class Api:
    """A keep-alive HTTP/1.1 client for one thread."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of a GET, reconnecting once if the connection went stale."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
            try:
                self._conn.request("GET", path, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, path: str) -> Any:
        """A JSON document (None on 404)."""
        status, body = self.get(path)
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"GET {path}: HTTP {status}")
        return json.loads(body)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Scraper:
    """Scrapes ``/metrics`` every ``interval`` seconds as Prometheus does (gzip)."""

    port: int
    interval: float = 2.0
    durations: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def scrape(self, api: Api) -> None:
        """One timed scrape."""
        started = time.perf_counter()
        try:
            status, body = api.get("/metrics", {"Accept-Encoding": "gzip"})
        except OSError:
            self.errors += 1
            return
        if status != 200:
            self.errors += 1
            return
        self.durations.append(time.perf_counter() - started)
        self.sizes.append(len(body))

    def start(self) -> Scraper:
        """Start scraping."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="scraper")
        self._thread.start()
        return self

    def _run(self) -> None:
        api = Api(self.port, timeout=120)
        while not self._stop.is_set():
            self.scrape(api)
            self._stop.wait(self.interval)
        api.close()

    def stop(self) -> None:
        """Stop scraping."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(130)


@dataclass
class _Pending:
    """A sample being polled."""

    kind: str
    path: str
    expected: Any
    sent_at: float
    next_poll: float
    pause: float = 0.002


class _Worker(threading.Thread):
    """Polls its samples, each on its own back-off, over one keep-alive connection."""

    def __init__(self, poller: LatencyPoller, index: int) -> None:
        super().__init__(daemon=True, name=f"latency-{index}")
        self.poller = poller
        self.inbox: deque[_Pending] = deque()
        self.pending: list[_Pending] = []

    def load(self) -> int:
        """Samples this worker holds."""
        return len(self.inbox) + len(self.pending)

    def run(self) -> None:
        """Poll until told to stop."""
        poller = self.poller
        api = Api(poller.port, timeout=30)
        try:
            while not poller.stopping.is_set():
                while self.inbox:
                    self.pending.append(self.inbox.popleft())
                if not self.pending:
                    time.sleep(0.002)
                    continue
                now = time.monotonic()
                due = [p for p in self.pending if p.next_poll <= now]
                if not due:
                    time.sleep(max(0.0, min(p.next_poll for p in self.pending) - now))
                    continue
                for item in due:
                    self._poll(api, item)
        finally:
            api.close()

    def _poll(self, api: Api, item: _Pending) -> None:
        poller = self.poller
        try:
            found = api.json(item.path)
        except (OSError, ValueError):
            found = None
        now = time.monotonic()
        with poller.lock:
            poller.polls += 1
        if found is not None and _visible(item.kind, found, item.expected):
            with poller.lock:
                poller.results[item.kind].append(now - item.sent_at)
            self.pending.remove(item)
        elif now - item.sent_at > poller.timeout:
            with poller.lock:
                poller.missed[item.kind] += 1
            self.pending.remove(item)
        else:
            item.pause = min(item.pause * 1.5, 0.05)
            item.next_poll = now + item.pause


@dataclass
class LatencyPoller:
    """Times send→visible for the sender's samples by polling the JSON API.

    A dispatcher takes every sample off the queue as it comes (so none waits there, which
    would add to its latency) and hands it to a worker with room; when every worker is full
    the sample is skipped and counted, never delayed.
    """

    port: int
    events: Any
    workers: int = 4
    capacity: int = 16
    """Samples one worker polls at a time."""
    timeout: float = 10.0
    results: dict[str, list[float]] = field(default_factory=lambda: {"host": [], "vm": []})
    missed: dict[str, int] = field(default_factory=lambda: {"host": 0, "vm": 0})
    skipped: dict[str, int] = field(default_factory=lambda: {"host": 0, "vm": 0})
    polls: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _workers: list[_Worker] = field(default_factory=list)

    def start(self) -> LatencyPoller:
        """Start the dispatcher and the workers."""
        self._workers = [_Worker(self, n) for n in range(self.workers)]
        for worker in self._workers:
            worker.start()
        dispatcher = threading.Thread(target=self._dispatch, daemon=True, name="latency-dispatch")
        dispatcher.start()
        self._threads = [dispatcher, *self._workers]
        return self

    def _dispatch(self) -> None:
        while not self.stopping.is_set():
            try:
                kind, ident, expected, sent_at = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            path = f"/api/v1/hosts/{ident}" if kind == "host" else f"/api/v1/vms/{ident}"
            worker = min(self._workers, key=_Worker.load)
            if worker.load() >= self.capacity:
                self.skipped[kind] += 1
                continue
            worker.inbox.append(_Pending(kind, path, expected, sent_at, time.monotonic()))

    def stop(self) -> None:
        """Stop polling (samples still pending are dropped)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(35)


def _visible(kind: str, found: dict[str, Any], expected: Any) -> bool:
    if kind == "host":
        return int(found["capacity"]["NETRX"]) >= int(expected)
    return str(found["report"]) == str(expected)


class Progress:
    """One ``\\r`` line on a terminal (nothing when stdout is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self._width = 0

    def show(self, text: str) -> None:
        """Replace the line."""
        if not self.tty:
            return
        sys.stdout.write("\r" + text.ljust(self._width))
        sys.stdout.flush()
        self._width = len(text)

    def done(self) -> None:
        """Clear the line."""
        if self.tty and self._width:
            sys.stdout.write("\r" + " " * self._width + "\r")
            sys.stdout.flush()
            self._width = 0


def rendered_at(port: int) -> float:
    """``onemon_render_timestamp_seconds`` of the cached /metrics body (0 when absent)."""
    import zlib

    api = Api(port, timeout=120)
    try:
        status, body = api.get("/metrics", {"Accept-Encoding": "gzip"})
    finally:
        api.close()
    if status != 200:
        return 0.0
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or plain zlib
    tail = b""
    for start in range(0, len(body), 1 << 20):
        text = tail + inflater.decompress(body[start : start + (1 << 20)])
        at = text.find(b"\nonemon_render_timestamp_seconds ")
        if at >= 0:
            line = text[at + 1 :].split(b"\n", 1)[0]
            if b"\n" in text[at + 1 :]:
                return float(line.split()[1])
        tail = text[-200:]
    return 0.0


def api_round_trip(port: int, path: str, count: int = 50) -> list[float]:
    """Times of ``count`` GETs of ``path`` on one keep-alive connection."""
    api = Api(port)
    out = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            api.get(path)
            out.append(time.perf_counter() - started)
    finally:
        api.close()
    return out
