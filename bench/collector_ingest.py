"""Processes and measurements for the ingest benchmark (``bench.collector``).

Receivers (one-collector, or the counting-only ``bench.collector_bare``) are started pinned to one
CPU by starting them while this process is pinned there: every thread they create inherits it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from bench.collector_load import Fleet
from onemon.collector.metrics.kernel import udp_errors
from onemon.wire.keys import write_key_file

REPO = Path(__file__).resolve().parents[1]
FLAT_SECONDS = 3.0
"""How long the sender goes flat out."""
WINDOW_START, WINDOW_END = 0.5, 0.3
"""The rate is counted from this long after the sender starts to this long before it stops."""


@dataclass(frozen=True)
class Window:
    """A flat-out run: what the sender did and what the receiver counted in the steady part."""

    started: float
    """``perf_counter`` when the sender was told to go."""
    sent: int
    send_seconds: float
    counted: int
    seconds: float
    main_cpu: float
    """CPU use of the receiver's main (event loop) thread in the window, in CPUs."""
    other_cpu: float
    """CPU use of its other threads."""
    by_thread: dict[int, float]
    """CPU use of each other thread, by thread id."""

    @property
    def rate(self) -> float:
        """Receiver's messages/s in the steady part."""
        return self.counted / self.seconds

    @property
    def send_rate(self) -> float:
        """Sender's datagrams/s."""
        return self.sent / self.send_seconds

    @property
    def cpu_per_message(self) -> float:
        """Receiver's CPU seconds (all threads) per message counted."""
        return (self.main_cpu + self.other_cpu) * self.seconds / max(1, self.counted)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def timed(count: Callable[[], int]) -> tuple[float, int]:
    """(mid-point time of the call, its value)."""
    before = time.perf_counter()
    value = count()
    return (before + time.perf_counter()) / 2, value


def flat_out(conn: Connection, port: int, count: Callable[[], int], pid: int) -> Window:
    """Have the sender go flat out at ``port``; ``count()`` reads the receiver's counter."""
    conn.send(("flat", port, FLAT_SECONDS))
    go = time.perf_counter()
    time.sleep(WINDOW_START)
    cpu_before = thread_cpu(pid)
    start, first = timed(count)
    time.sleep(max(0.0, go + FLAT_SECONDS - WINDOW_END - time.perf_counter()))
    end, last = timed(count)
    cpu_after = thread_cpu(pid)
    sent, send_seconds = conn.recv()
    seconds = end - start
    main = (cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0)) / seconds
    total = (sum(cpu_after.values()) - sum(cpu_before.values())) / seconds
    by_thread = {
        tid: (cpu - cpu_before.get(tid, 0.0)) / seconds
        for tid, cpu in cpu_after.items()
        if tid != pid
    }
    return Window(go, sent, send_seconds, last - first, seconds, main, total - main, by_thread)


@contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """Run the body (e.g. starting a process, which inherits it) on ``cpu`` only."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def drops() -> int:
    """Kernel UDP receive-buffer drops so far (whole namespace, IPv4 + IPv6)."""
    errors = udp_errors()
    return errors.rcvbuf_errors if errors is not None else -1


def rx_queue(port: int) -> int:
    """Bytes waiting in the receive queue of the IPv4 UDP socket bound to ``port``."""
    suffix = f":{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(suffix):
            return int(fields[4].split(":")[1], 16)
    return 0


def bare_rate(conn: Connection, cpu: int) -> Window:
    """The flat-out run against the counting-only uvloop receiver."""
    with pinned(cpu):
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.collector_bare"], stdout=subprocess.PIPE, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        _, port, control = proc.stdout.readline().split()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ask:
            ask.settimeout(5)
            ask.connect(("127.0.0.1", int(control)))

            def count() -> int:
                ask.send(b"?")
                return int(ask.recv(64))

            return flat_out(conn, int(port), count, proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


class HealthApi:
    """The collector's ``/api/v1/health``."""

    def __init__(self, http_port: int) -> None:
        self.url = f"http://127.0.0.1:{http_port}/api/v1/health"

    def get(self) -> dict[str, Any]:
        """The health document."""
        with urllib.request.urlopen(self.url, timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
        return found

    def accepted(self) -> int:
        """Messages accepted and applied, all types."""
        return sum(self.get()["messages"].values())

    def rejected(self) -> dict[str, int]:
        """Rejections by reason (non-zero only)."""
        found: dict[str, int] = self.get()["rejected"]
        return found

    def backlog(self) -> int:
        """Store rows not yet committed."""
        return int(self.get()["store"]["backlog_rows"])


class CollectorProcess:
    """one-collector with the defaults but its addresses, a SQLite store in ``directory`` and
    the fleet's hosts registered; started pinned to ``cpu``."""

    def __init__(self, directory: Path, fleet: Fleet, cpu: int) -> None:
        key = directory / "cluster.key"
        write_key_file(key, fleet.key)
        self.port, http_port = free_port(), free_port()
        lines = [
            'log_level = "INFO"',
            f'[listen]\naddress = "127.0.0.1"\nport = {self.port}',
            f'[keys]\ncluster_key_file = "{key}"',
            f'[store]\nurl = "sqlite:///{directory / "collector.db"}"',
            f'[http]\naddress = "127.0.0.1"\nport = {http_port}',
            *(
                f'[[hosts.register]]\nid = {h}\nname = "node{h:05d}.example.org"'
                for h in range(fleet.hosts)
            ),
        ]
        config = directory / "collector.toml"
        config.write_text("\n".join(lines) + "\n")
        self.log_path = directory / "collector.log"
        self.health = HealthApi(http_port)
        self._log: IO[bytes] = self.log_path.open("wb")
        with pinned(cpu):
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onemon.collector.cli", "-c", str(config)],
                stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the API answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"one-collector exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.health.get()
            except OSError:
                time.sleep(0.2)
                continue
            return
        raise RuntimeError(f"one-collector did not answer in {timeout} s")

    def drained(self, timeout: float) -> tuple[int, float]:
        """Accepted count once the socket's queue is empty and the count stops moving, and
        when that count was first seen (``perf_counter``)."""
        deadline = time.monotonic() + timeout
        last, seen = -1, 0.0
        while time.monotonic() < deadline:
            now, value = timed(self.health.accepted)
            if value == last and rx_queue(self.port) == 0:
                break
            last, seen = value, now
            time.sleep(0.1)
        return last, seen

    def stop(self) -> None:
        """SIGTERM (the collector flushes its store), SIGKILL after 60 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def wait_for(read: Callable[[], int], target: int, timeout: float) -> int:
    """Poll ``read`` until it reaches ``target`` or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while value < target and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def increase(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per-key increase, non-zero only."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
