"""The store gone: PostgreSQL stopped for ~20 s under load. Receiving goes on, the backlog is
bounded and exported, writes resume and catch up, nothing acknowledged is lost.

A private PostgreSQL cluster (as ``tests/collector/conftest.py`` makes one; duplicated here in
short) backs a real one-collector; a fleet (``bench.fleet_sender``) keeps reporting and
changing VM states over acknowledged TCP while the server is stopped and started again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fleet_collector import FleetCollector
from bench.fleet_hosts import FleetSpec
from bench.fleet_measure import Api
from bench.fleet_sender import ACK_OK, FleetSender
from onemon.collector.store import StoreReader
from tests.e2e import stack

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)

OUTAGE = float(os.environ.get("ONEMON_FAULTS_STORE_OUTAGE", "60" if os.environ.get(
    "ONEMON_FAULTS_LONG") == "1" else "20"))  # fmt: skip
MAX_BACKLOG = 20_000
SPEC = FleetSpec(hosts=60, vms=240, scale=10, churn=10, tcp_connections=4, marker_rate=0,
                 first_host=2000)  # fmt: skip


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (as the ``postgres`` user when root)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = Path(found[-1]).parent
        self.runas: list[str] = []
        self.base = Path(tempfile.mkdtemp(prefix="onemon-pg-faults-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self.runas = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.data = self.base / "data"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.runas, str(self.bindir / tool), *args], capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.strip()[-1000:]}")

    def start(self) -> None:
        """Start the server (fsync off: a test cluster)."""
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-o",
                  options, "start")  # fmt: skip

    def stop(self) -> None:
        """Stop it, cutting every session."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> str:
        """A fresh database's SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "faults")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/faults"

    def destroy(self) -> None:
        """Stop and delete."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    try:
        server = Postgres()
    except (RuntimeError, KeyError, OSError) as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")
    try:
        yield server
    finally:
        server.destroy()


def metric(api: Api, name: str) -> float:
    """One label-less sample of /metrics."""
    status, body = api.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_store_outage_receiving_continues_backlog_bounded_writes_catch_up(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.create_database()
    collector = FleetCollector(
        tmp_path / "collector", SPEC, store_url=url,
        extra={"store": {"max_backlog_rows": MAX_BACKLOG, "retry_max": 1.0, "connect_timeout": 1.0,
                         "busy_timeout": 1.0}, "http": {"render_interval": 0.5}},
    )  # fmt: skip
    collector.start()
    sender: FleetSender | None = None
    api = Api(collector.http_port)
    try:
        collector.wait_ready()
        sender = FleetSender(SPEC, collector.port, record_acks=True)
        assert sender.call("warm", 3000.0, timeout=120)["unacked"] == 0
        sender.begin("run", OUTAGE + 8.0, False)
        time.sleep(4.0)
        assert metric(api, "onemon_store_up") == 1
        accepted_before = sum(collector.get("/api/v1/health")["messages"].values())
        postgres.stop()
        stopped = time.monotonic()
        acks_settled = -1
        backlog, up, accepted = [], [], []
        while time.monotonic() - stopped < OUTAGE:
            time.sleep(1.0)
            if acks_settled < 0 and time.monotonic() - stopped > 3:
                acks_settled = sender.counter(ACK_OK)  # what was persisted before the stop
            health = collector.get("/api/v1/health")
            accepted.append(sum(health["messages"].values()))
            backlog.append(metric(api, "onemon_store_backlog_rows"))
            up.append(metric(api, "onemon_store_up"))
        acks_during = sender.counter(ACK_OK) - acks_settled
        postgres.start()
        restarted = time.monotonic()
        stack.wait_until(lambda: metric(api, "onemon_store_up") == 1, 30, "store up again")
        stack.wait_until(lambda: metric(api, "onemon_store_backlog_rows") == 0, 60, "caught up")
        caught_up = time.monotonic() - restarted
        result = sender.result(120)
        acked = sender.call("acked")
        truth = sender.call("state")
        vms = {vm["id"]: vm["report"] for vm in collector.get("/api/v1/vms")}
        dropped = metric(api, "onemon_store_history_dropped_total")
        assert collector.alive()
    finally:
        api.close()
        if sender is not None:
            sender.close()
        collector.stop()

    assert accepted[-1] > accepted_before + 100, "receiving stopped with the store"
    assert 0 in up, "onemon_store_up never showed the outage"
    assert max(backlog) > 0, "onemon_store_backlog_rows never showed the outage"
    assert max(backlog) <= MAX_BACKLOG, f"backlog {max(backlog)} beyond its bound"
    assert acks_during == 0, "state changes acknowledged while nothing could be persisted"
    assert caught_up < 30, f"took {caught_up:.0f} s to catch up"
    assert result["unacked"] == 0 and set(result["acks"]) <= {"ok"}, result
    # nothing acknowledged lost, VMs in their last state, the history written meanwhile is there
    sent: dict[int, list[str]] = defaultdict(list)
    for _host, _seq, changes in acked:
        for vm, state in changes:
            sent[vm].append(state)
    reader = StoreReader(url)
    try:
        journal: dict[int, list[str]] = defaultdict(list)
        for change in reader.state_changes():
            if change.vm_id is not None and change.source == "state_vm":
                journal[change.vm_id].append(change.report)
        history = reader.hosts_history(0)
    finally:
        reader.close()
    for vm, states in sent.items():
        rest = iter(journal[vm])
        assert all(s in rest for s in states), (
            f"VM {vm}: acknowledged {states}, journal {journal[vm]}"
        )
    assert all(vms[vm] == state for vm, state in truth.items())
    outage_start = time.time() - (time.monotonic() - stopped)
    during = [ts for samples in history.values() for ts, _ in samples
              if outage_start < ts < outage_start + OUTAGE]  # fmt: skip
    assert during or dropped > 0, "no history from the outage and none reported dropped"
