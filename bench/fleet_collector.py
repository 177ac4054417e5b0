"""A real one-collector for the fleet benchmarks: the fleet's hosts registered, their keys on disk.

Started pinned to one CPU (every thread inherits it) so its CPU share is a share of one core.
Its SQLite store lives in the run's directory unless another store URL is given.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from bench.collector_ingest import REPO, HealthApi, free_port, pinned
from bench.fleet_hosts import CLUSTER_SECRET, FleetSpec
from onemon.wire.keys import CLUSTER_KEY_ID, Key, write_key_file


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


class FleetCollector:
    """one-collector configured for a fleet."""

    def __init__(
        self,
        directory: Path,
        spec: FleetSpec,
        *,
        cpu: int | None = None,
        store_url: str | None = None,
        extra: dict[str, dict[str, Any]] | None = None,
        keyed: set[int] | None = None,
        more_hosts: tuple[tuple[int, str], ...] = (),
    ) -> None:
        """``keyed``: host indexes given a key file (default: every native host if per-host);
        ``more_hosts``: (id, name) of hosts registered besides the fleet's (real agents)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.cpu = cpu
        key = directory / "cluster.key"
        write_key_file(key, Key(CLUSTER_KEY_ID, CLUSTER_SECRET))
        sections: dict[str, dict[str, Any]] = {
            "listen": {"address": "127.0.0.1", "port": free_port()},
            "keys": {"cluster_key_file": str(key)},
            "store": {"url": store_url or f"sqlite:///{directory / 'collector.db'}"},
            "http": {
                "address": "127.0.0.1",
                "port": free_port(),
                "admin_token_file": str(directory / "admin.token"),
            },
        }
        if keyed is None:
            keyed = {i for i in range(spec.hosts) if spec.host_keys and not spec.is_legacy(i)}
        if keyed:
            keys_dir = directory / "host-keys"
            keys_dir.mkdir(exist_ok=True)
            for index in sorted(keyed):
                write_key_file(keys_dir / f"{spec.host_id(index)}.key", spec.key(index))
            sections["keys"]["host_keys_dir"] = str(keys_dir)
        for name, values in (extra or {}).items():
            sections.setdefault(name, {}).update(values)
        self.store_url = str(sections["store"]["url"])
        self.port = int(sections["listen"]["port"])
        self.http_port = int(sections["http"]["port"])
        lines = ['log_level = "WARNING"']
        for name, values in sections.items():
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.extend(
            f'[[hosts.register]]\nid = {spec.host_id(i)}\nname = "node{spec.host_id(i):05d}"'
            for i in range(spec.hosts)
        )
        lines.extend(f'[[hosts.register]]\nid = {i}\nname = "{name}"' for i, name in more_hosts)
        self.cluster_key = key
        self.config = directory / "collector.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.log_path = directory / "collector.log"
        self.health = HealthApi(self.http_port)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the process (pinned if a CPU was given)."""
        self._log = self.log_path.open("ab")
        argv = [sys.executable, "-m", "onemon.collector.cli", "-c", str(self.config)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with pinned(self.cpu) if self.cpu is not None else contextlib.nullcontext():
            self.proc = subprocess.Popen(
                argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the API answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"one-collector exited: {self.log_tail()}")
            try:
                self.health.get()
            except OSError:
                time.sleep(0.2)
                continue
            return
        raise RuntimeError(f"one-collector did not answer in {timeout} s: {self.log_tail()}")

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 30) -> Any:
        """GET a JSON API path."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise OSError(f"GET {path}: HTTP {response.status}")
            return json.loads(body)
        finally:
            conn.close()

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the collector's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (the store is flushed), SIGKILL after ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
