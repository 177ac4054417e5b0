"""Sharded one-collector processes, simulated agents, and the checks the sharding tests share."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onemon.collector.sharding import hashed_shard
from onemon.collector.store import StoreReader
from tests.e2e import stack


@dataclass
class ShardedCollector(stack.Process):
    """one-collector with sharding on; its API at ``api_host``."""

    port: int = 0
    http_port: int = 0
    api_host: str = "127.0.0.1"
    address: str = ""

    def get(self, path: str, timeout: float = 2.0) -> Any:
        """GET a JSON API path."""
        url = f"http://{self.api_host}:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())

    def metrics(self) -> str:
        """The /metrics body."""
        url = f"http://{self.api_host}:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def led(self) -> set[int]:
        """The shards it applies now."""
        return set(self.get("/api/v1/health")["sharding"]["led"])

    def leaders(self) -> dict[int, str]:
        """Where it would redirect each shard led elsewhere (from the database's directory)."""
        found = self.get("/api/v1/health")["sharding"]["leaders"]
        return {int(shard): address for shard, address in found.items()}

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until its API answers."""
        proc = self.proc
        assert proc is not None

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.output()[-3000:]}")
            return self.get("/api/v1/health") is not None

        stack.wait_until(ready, timeout, f"{self.name}'s API")


def sharded_collector(
    directory: Path,
    key: Path,
    url: str,
    name: str,
    *,
    hosts: Sequence[int],
    home: Sequence[int] | None,
    shards: int = 2,
    listen: str = "127.0.0.1",
    advertise: str = "",
    api_host: str = "127.0.0.1",
    prefix: Sequence[str] = (),
    sharding: dict[str, Any] | None = None,
) -> ShardedCollector:
    """A configured (not yet started) sharded collector; ``prefix`` runs it (``ip netns exec``)."""
    directory.mkdir(parents=True, exist_ok=True)
    port, http_port = stack.free_port(), stack.free_port()
    address = advertise or f"{listen}:{port}"
    lines = [
        'log_level = "INFO"',
        "[listen]", f'address = "{listen}"', f"port = {port}",
        "[keys]", f'cluster_key_file = "{key}"',
        "[store]", f'url = "{url}"', "connect_timeout = 2.0", "retry_max = 1.0",
        "[http]", f'address = "{listen}"', f"port = {http_port}", "render_interval = 0.5",
        f'admin_token_file = "{directory / "admin.token"}"',
        "[hosts]", "manager_timer = 1.0",
        "[sharding]", "enabled = true", f"shards = {shards}", f'name = "{name}"',
        f'advertise = "{address}"',
    ]  # fmt: skip
    if home is not None:
        lines.append(f"home = {list(home)}")
    lines += [f"{k} = {stack.toml_value(v)}" for k, v in (sharding or {}).items()]
    lines += [f'[[hosts.register]]\nid = {h}\nname = "sim{h}"' for h in hosts]
    path = directory / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    argv = [*prefix, sys.executable, "-m", "onemon.collector.cli", "-c", str(path)]
    return ShardedCollector(name, argv, directory / "collector.log", port=port,
                            http_port=http_port, api_host=api_host, address=address)  # fmt: skip


@dataclass
class Agents(stack.Process):
    """``tests.e2e.sharding_agents``: simulated agents in one process."""

    settings: Path = field(default_factory=Path)
    result_path: Path = field(default_factory=Path)
    ready_path: Path = field(default_factory=Path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every sender has started."""
        stack.wait_until(self.ready_path.exists, timeout, "the simulated agents")

    def finish(self, timeout: float = 90.0) -> dict[str, Any]:
        """SIGTERM: stop changing states, flush every spool; what was sent, acknowledged."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        result: dict[str, Any] = json.loads(self.result_path.read_text())
        return result


def agents(
    directory: Path,
    key: Path,
    hosts: Sequence[int],
    collectors: Sequence[str],
    *,
    vms_per_host: int = 4,
    rate: float = 4.0,
) -> Agents:
    """Simulated agents for ``hosts`` (``rate`` state changes per second each)."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "key_file": str(key), "state_dir": str(directory / "state"), "hosts": list(hosts),
        "vms_per_host": vms_per_host, "collectors": list(collectors), "rate": rate,
        "result": str(directory / "result.json"), "ready_file": str(directory / "ready"),
    }  # fmt: skip
    path = directory / "agents.json"
    path.write_text(json.dumps(settings))
    argv = [sys.executable, "-m", "tests.e2e.sharding_agents", str(path)]
    return Agents("agents", argv, directory / "agents.log", settings=path,
                  result_path=directory / "result.json", ready_path=directory / "ready")  # fmt: skip


def hosts_of(shard: int, count: int, shards: int = 2, first: int = 1) -> list[int]:
    """``count`` host ids that hash into ``shard``."""
    found: list[int] = []
    host = first
    while len(found) < count:
        if hashed_shard(host, shards) == shard:
            found.append(host)
        host += 1
    return found


def journal(url: str) -> dict[int, list[str]]:
    """Every VM's state changes from STATE_VM reports, in journal order."""
    reader = StoreReader(url)
    try:
        out: dict[int, list[str]] = defaultdict(list)
        for change in reader.state_changes():
            if change.vm_id is not None and change.source == "state_vm":
                out[change.vm_id].append(change.report)
        return out
    finally:
        reader.close()


def lost_and_doubled(sent: dict[str, list[str]], found: dict[int, list[str]]) -> list[str]:
    """Every VM whose journal is not exactly what its host sent (nothing lost, nothing twice)."""
    problems = [
        f"VM {vm}: sent {states}, journal {found.get(int(vm), [])}"
        for vm, states in sent.items()
        if found.get(int(vm), []) != states
    ]
    problems += [f"VM {vm}: journal without sends" for vm in set(found) - {int(v) for v in sent}]
    return problems


def longest_stall(result: dict[str, Any], hosts: Sequence[int], since: float) -> float:
    """The longest time, after ``since``, one of ``hosts`` had messages waiting and no ack."""
    columns = [result["hosts"].index(h) for h in hosts]
    worst = 0.0
    for column in columns:
        stalled_at, last = None, -1
        for at, acked, pending in result["timeline"]:
            count, waiting = acked[column], pending[column]
            if at >= since:
                if count > last or not waiting:
                    if stalled_at is not None:
                        worst = max(worst, at - stalled_at)
                    stalled_at = None
                elif stalled_at is None:
                    stalled_at = at
            last = count
    return worst


def wait_led(collector: ShardedCollector, shards: set[int], timeout: float) -> float:
    """Poll until ``collector`` leads exactly ``shards``; seconds it took."""
    started = time.monotonic()
    stack.wait_until(lambda: collector.led() == shards, timeout,
                     f"{collector.name} to lead {sorted(shards)}", step=0.05)  # fmt: skip
    return time.monotonic() - started


def start_pair(a: ShardedCollector, b: ShardedCollector, started: list[stack.Process]) -> None:
    """Start ``a`` and ``b`` (into ``started``), until ``a`` leads shard 0 and ``b`` shard 1 and
    each knows where the other's shard is led (until then it answers ``no_leader``, not a
    redirect, and an agent would go to the leader on its own)."""
    for collector in (a, b):
        collector.start()
        started.append(collector)
    a.wait_ready()
    b.wait_ready()
    wait_led(a, {0}, 15)
    wait_led(b, {1}, 15)
    stack.wait_until(lambda: 1 in a.leaders() and 0 in b.leaders(), 15, "each to know the other")
