"""Real one-collector and one-agent processes for end-to-end tests, on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from onemon.wire.keys import Key, generate_secret, write_key_file

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


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


def wait_until(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.2) -> T:
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError, IndexError) as exc:
            last = exc
        else:
            if last:
                return cast(T, last)
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def make_key(directory: Path) -> Path:
    """A fresh cluster key file."""
    path = directory / "cluster.key"
    write_key_file(path, Key("cluster", generate_secret()))
    return path


def toml_value(value: Any) -> str:
    """A Python value as TOML (enough for our configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def toml(sections: dict[str, Any]) -> str:
    """A nested dict as TOML text (tables one level deep, arrays of tables for lists of dicts)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in sections.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for name, value in tables:
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            lines.append(f"[[{name}]]" if isinstance(value, list) else f"[{name}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in entry.items())
    return "\n".join(lines) + "\n"


@dataclass
class Process:
    """A daemon started from this repository's code."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it, its output going to its log file."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip

    def signal(self, signum: int) -> None:
        """Send a signal."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop on SIGTERM in {timeout} s") from None

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        """What it has logged so far."""
        return self.log.read_text(errors="replace")


@dataclass
class CollectorProcess(Process):
    """one-collector with its HTTP API."""

    port: int = 0
    http_port: int = 0
    db: Path = field(default_factory=Path)

    def get(self, path: str) -> Any:
        """GET a JSON API path."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def metrics(self) -> str:
        """The /metrics body."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the API answers."""
        assert self.proc is not None
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.output()[-2000:]}")
            return bool(self.get("/api/v1/health") is not None)

        wait_until(ready, timeout, "the collector's API")

    def host(self, host_id: int) -> dict[str, Any]:
        """One host from the API."""
        found: dict[str, Any] = self.get(f"/api/v1/hosts/{host_id}")
        return found

    def vm(self, vm_id: int) -> dict[str, Any]:
        """One VM from the API."""
        found: dict[str, Any] = self.get(f"/api/v1/vms/{vm_id}")
        return found


def collector(
    directory: Path,
    key: Path,
    hosts: list[tuple[int, str]],
    *,
    port: int | None = None,
    extra: dict[str, Any] | None = None,
) -> CollectorProcess:
    """A configured (not yet started) collector."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    http_port = free_port()
    db = directory / "collector.db"
    config: dict[str, Any] = {
        "log_level": "INFO",
        "listen": {"address": "127.0.0.1", "port": port},
        "keys": {"cluster_key_file": str(key)},
        "store": {"url": f"sqlite:///{db}"},
        "http": {
            "address": "127.0.0.1",
            "port": http_port,
            "render_interval": 1.0,
            "admin_token_file": str(directory / "admin.token"),
        },
        "hosts": {"manager_timer": 1.0},
    }
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    text = toml(config) + "".join(
        f'[[hosts.register]]\nid = {host_id}\nname = "{name}"\n' for host_id, name in hosts
    )
    path = directory / "collector.toml"
    path.write_text(text)
    argv = [sys.executable, "-m", "onemon.collector.cli", "-c", str(path)]
    return CollectorProcess("one-collector", argv, directory / "collector.log",
                            port=port, http_port=http_port, db=db)  # fmt: skip


def start_ready(collectors: Sequence[CollectorProcess], started: list[Process]) -> None:
    """Start each collector in turn, recorded in ``started`` for clean-up, until its API answers."""
    for each in collectors:
        each.start()
        started.append(each)
        each.wait_ready()


FAST_PERIODS = {
    "beacon_host": 2,
    "system_host": 5,
    "monitor_host": 2,
    "state_vm": 1,
    "exec_vm": 5,
    "monitor_vm": 2,
    "sync_state_vm": 10,
}
"""Short periods so tests see several cycles in seconds."""


EMPTY_NODE_XML = (
    "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
    "<active>2</active><mhz>2000</mhz><model>i686</model></cpu><memory>8388608</memory></node>"
)
"""A libvirt ``test://`` node file: one small host, no domain."""


def empty_node(path: Path) -> str:
    """Write EMPTY_NODE_XML to ``path``; the ``libvirt_uri`` of a node with no VM."""
    path.write_text(EMPTY_NODE_XML)
    return f"test://{path}"


def agent(
    directory: Path,
    key: Path,
    host_id: int,
    collectors: list[str],
    *,
    hypervisor: str = "kvm",
    periods: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Process:
    """A configured (not yet started) agent."""
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "host_id": host_id,
        "host_name": f"node{host_id}",
        "hypervisor": hypervisor,
        "state_dir": str(directory / "state"),
        "log_level": "INFO",
        "periods": periods or FAST_PERIODS,
        "probes": {"times_missing": 2, "timeout": 10},
        "send": {"collectors": collectors, "key_file": str(key), "ack_timeout": 3},
    }
    for section, values in (extra or {}).items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    path = directory / "agent.toml"
    path.write_text(toml(config))
    argv = [sys.executable, "-m", "onemon.agent.cli", "-c", str(path)]
    return Process(f"one-agent {host_id}", argv, directory / "agent.log")
