"""one-agent → one-collector → Prometheus with real QEMU guests, an LXC container, real sockets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from onemon.collector.store import StoreReader
from tests.e2e import stack
from tests.e2e.infra import guest, lxc, prometheus

HOST = 11
LXC_HOST = 12


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return stack.make_key(tmp_path)


@pytest.fixture
def running(tmp_path: Path, key: Path) -> Iterator[Callable[..., Any]]:
    """Start processes; every one is stopped at the end, its log shown if the test failed."""
    started: list[stack.Process] = []

    def start(process: stack.Process) -> stack.Process:
        process.start()
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.kill()


def monitor(collector: stack.CollectorProcess, vm_id: int) -> dict[str, Any]:
    found: dict[str, Any] = collector.vm(vm_id)["monitoring"]
    return found


def test_host_and_real_guests_reach_the_collector_and_prometheus(
    tmp_path: Path,
    key: Path,
    running: Callable[..., Any],
    booted_guests: tuple[guest.Guest, ...],
    prometheus_factory: Callable[..., prometheus.Prometheus],
) -> None:
    collector = running(stack.collector(tmp_path / "c", key, [(HOST, "node11")]))
    collector.wait_ready()
    running(stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"]))
    stack.wait_until(lambda: collector.host(HOST)["state"] == "MONITORED", 20, "host MONITORED")
    for g in booted_guests:
        stack.wait_until(
            lambda vm_id=g.vm_id: collector.vm(vm_id)["report"] == "RUNNING", 20,
            f"{g.name} RUNNING",
        )  # fmt: skip
    first = stack.wait_until(
        lambda: monitor(collector, 101) if "CPU" in monitor(collector, 101) else None,
        20, "a CPU figure for one-101",
    )  # fmt: skip
    time.sleep(5)
    second = monitor(collector, 101)
    assert float(second["CPU"]) > 0  # the guest burns CPU every second
    assert int(second["MEMORY"]) > 10_000  # KB: a 128 MiB guest's QEMU RSS
    assert int(second["NETTX"]) > int(first["NETTX"])  # it pings
    assert int(second["DISKWRBYTES"]) > int(first["DISKWRBYTES"])  # it writes its disk
    assert int(second["DISKWRIOPS"]) > int(first["DISKWRIOPS"])
    host = collector.host(HOST)
    assert host["capacity"]["USED_MEMORY"] + host["capacity"]["FREE_MEMORY"] > 0
    assert sorted(host["vms"]) == [101, 102]

    server = prometheus_factory([f"127.0.0.1:{collector.http_port}"])
    up = server.wait_for(f'opennebula_host_state{{one_host_id="{HOST}"}}', timeout=30)
    assert up[0]["value"][1] == "2"
    cpu = server.wait_for('opennebula_vm_cpu_used_ratio{one_vm_id="101"}', timeout=30)
    assert cpu[0]["metric"]["one_host_id"] == str(HOST)
    rate = server.wait_for(
        'rate(opennebula_libvirt_block_wr_bytes_total{one_vm_id="101"}[10s]) > 0', timeout=40
    )
    assert rate, "disk writes of one-101 are visible as a rate in Prometheus"


def test_vm_state_changes_are_reported_within_a_state_period(
    tmp_path: Path,
    key: Path,
    running: Callable[..., Any],
    libvirt_conn: Any,
    filler_factory: Callable[[int], list[guest.Guest]],
) -> None:
    (filler,) = filler_factory(1)
    collector = running(stack.collector(tmp_path / "c", key, [(HOST, "node11")]))
    collector.wait_ready()
    running(stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"]))

    def report() -> str:
        return str(collector.vm(filler.vm_id)["report"])

    stack.wait_until(lambda: report() == "RUNNING", 20, "filler RUNNING")
    domain = libvirt_conn.lookupByName(filler.name)
    domain.suspend()
    stack.wait_until(lambda: report() == "SUSPENDED", 4, "SUSPENDED within a state period")
    domain.resume()
    stack.wait_until(lambda: report() == "RUNNING", 4, "RUNNING again")
    domain.destroy()
    # times_missing=2 at state_vm=1 s: POWEROFF about 3 s after the domain is gone
    stack.wait_until(lambda: report() == "POWEROFF", 8, "POWEROFF after times_missing cycles")


def test_lxc_container_figures_move(
    tmp_path: Path, key: Path, running: Callable[..., Any], lxc_container: lxc.Container
) -> None:
    collector = running(stack.collector(tmp_path / "c", key, [(LXC_HOST, "node12")]))
    collector.wait_ready()
    running(
        stack.agent(
            tmp_path / "a", key, LXC_HOST, [f"127.0.0.1:{collector.port}"], hypervisor="lxc"
        )
    )
    vm_id = lxc_container.vm_id
    stack.wait_until(lambda: collector.vm(vm_id)["report"] == "RUNNING", 20, "container RUNNING")
    first = stack.wait_until(
        lambda: monitor(collector, vm_id) if "CPU" in monitor(collector, vm_id) else None,
        20, "a CPU figure for the container",
    )  # fmt: skip
    time.sleep(4)
    second = monitor(collector, vm_id)
    assert int(second["MEMORY"]) > 0
    assert float(second["CPU"]) >= 0
    assert int(second["NETRX"]) + int(second["NETTX"]) >= int(first["NETRX"]) + int(first["NETTX"])
    assert collector.vm(vm_id)["host_id"] == LXC_HOST


def test_state_changes_made_while_the_collector_is_down_arrive_in_order(
    tmp_path: Path,
    key: Path,
    running: Callable[..., Any],
    libvirt_conn: Any,
    filler_factory: Callable[[int], list[guest.Guest]],
) -> None:
    (filler,) = filler_factory(1)
    port = stack.free_port()
    agent = running(stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{port}"]))
    domain = libvirt_conn.lookupByName(filler.name)
    time.sleep(2)  # the agent sees the filler RUNNING, nobody listens
    for _ in range(3):
        domain.suspend()
        time.sleep(1.6)
        domain.resume()
        time.sleep(1.6)
    collector = running(stack.collector(tmp_path / "c", key, [(HOST, "node11")], port=port))
    collector.wait_ready()

    def state_messages() -> int:
        counts = collector.get("/api/v1/health")["messages"]
        return int(counts.get("STATE_VM/native/tcp", 0))

    # one full report at start, then six changes: all spooled, replayed once the collector is up
    stack.wait_until(lambda: state_messages() >= 7, 40, "the spool replayed")
    assert agent.proc is not None and agent.proc.poll() is None
    collector.stop()
    reader = StoreReader(f"sqlite:///{collector.db}")
    try:
        changes = [c.report for c in reader.state_changes(vm_id=filler.vm_id)]
    finally:
        reader.close()
    assert changes[:7] == ["RUNNING"] + ["SUSPENDED", "RUNNING"] * 3


def test_collector_kill_9_keeps_state_history_and_every_acknowledged_change(
    tmp_path: Path,
    key: Path,
    running: Callable[..., Any],
    libvirt_conn: Any,
    filler_factory: Callable[[int], list[guest.Guest]],
) -> None:
    (filler,) = filler_factory(1)
    collector = running(stack.collector(tmp_path / "c", key, [(HOST, "node11")]))
    collector.wait_ready()
    running(stack.agent(tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"]))
    stack.wait_until(
        lambda: collector.vm(filler.vm_id)["report"] == "RUNNING", 20, "filler RUNNING"
    )
    domain = libvirt_conn.lookupByName(filler.name)
    domain.suspend()
    stack.wait_until(lambda: collector.vm(filler.vm_id)["report"] == "SUSPENDED", 5, "SUSPENDED")
    history_before = collector.get(f"/api/v1/hosts/{HOST}/monitoring?since=0")
    collector.kill()
    domain.resume()  # happens while the collector is dead: must arrive after the restart
    time.sleep(2)
    collector.start()
    collector.wait_ready()
    assert collector.host(HOST)["state"] in ("MONITORED", "INIT")
    stack.wait_until(
        lambda: collector.vm(filler.vm_id)["report"] == "RUNNING", 20, "change made while dead"
    )
    history_after = collector.get(f"/api/v1/hosts/{HOST}/monitoring?since=0")
    assert len(history_after) >= len(history_before) > 0
    assert {h["timestamp"] for h in history_before} <= {h["timestamp"] for h in history_after}
