"""The real-parts infrastructure works: guests boot and move counters, LXC, netns, Prometheus."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.infra import guest, lxc, netns, prometheus, requirements
from tests.e2e.infra.guest_image import MARKER

ONE_NS = guest.ONE_NS


def _stats_by_name(conn: Any) -> dict[str, dict[str, Any]]:
    """One getAllDomainStats() call, keyed by domain name."""
    return {dom.name(): stats for dom, stats in conn.getAllDomainStats()}


def test_booted_guest_reaches_userspace(booted_guest: guest.Guest) -> None:
    text = guest.serial_text(booted_guest)
    assert MARKER in text
    assert f"name={booted_guest.name}" in text
    assert "disk=yes" in text


def test_booted_guests_counters_grow(
    libvirt_conn: Any, booted_guests: tuple[guest.Guest, ...]
) -> None:
    before = _stats_by_name(libvirt_conn)
    time.sleep(3.0)
    after = _stats_by_name(libvirt_conn)
    for g in booted_guests:
        a, b = before[g.name], after[g.name]
        assert b["state.state"] == 1  # VIR_DOMAIN_RUNNING
        for key in ("cpu.time", "net.0.tx.bytes", "net.0.rx.bytes", "block.0.wr.bytes"):
            assert b[key] > a[key], f"{g.name}: {key} did not grow ({a[key]} -> {b[key]})"
        assert b["net.0.name"] == g.tap
        assert b["balloon.current"] == 128 * 1024
        assert "balloon.unused" in b, "balloon stats period not in effect"


def test_booted_guest_metadata(libvirt_conn: Any, booted_guest: guest.Guest) -> None:
    import libvirt

    dom = libvirt_conn.lookupByName(booted_guest.name)
    assert dom.UUIDString() == booted_guest.uuid
    xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, ONE_NS)
    assert f"/datastores/0/{booted_guest.vm_id}" in xml


def test_filler_domains_run(
    libvirt_conn: Any, filler_factory: Callable[[int], list[guest.Guest]]
) -> None:
    fillers = filler_factory(2)
    time.sleep(0.5)
    stats = _stats_by_name(libvirt_conn)
    for f in fillers:
        s = stats[f.name]
        assert s["state.state"] == 1
        assert s["cpu.time"] > 0
        assert s["balloon.maximum"] == 32 * 1024
        assert s.get("block.count", 0) == 0
        assert s.get("net.count", 0) == 0


def test_lxc_container_runs(lxc_container: lxc.Container) -> None:
    assert lxc_container.state() == "RUNNING"
    cpu0, (rx0, tx0) = lxc_container.cpu_usage_ns(), lxc_container.veth_bytes()
    time.sleep(2.5)
    cpu1, (rx1, tx1) = lxc_container.cpu_usage_ns(), lxc_container.veth_bytes()
    assert cpu1 > cpu0
    assert rx1 > rx0  # the container's pings (host view: rx)
    assert tx1 > tx0  # the namespace's replies
    assert lxc_container.memory_usage_bytes() > 0
    assert "usage_usec" in (lxc_container.cgroup_v2 / "cpu.stat").read_text()
    if not lxc.PURE_V2:  # the huge throttle limit makes v1 blkio count (see lxc.py)
        blkio = lxc_container.cgroup_v1("blkio") / "blkio.throttle.io_service_bytes"
        assert blkio.read_text().strip().splitlines()[-1] != "Total 0"
    assert (
        str(lxc_container.init_pid())
        in (lxc_container.cgroup_v2 / "cgroup.procs").read_text().split()
    )


_RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(5.0)
n = 0
try:
    s.recv(2048); n = 1
    s.settimeout(1.0)
    while True:
        s.recv(2048); n += 1
except TimeoutError:
    pass
print(n, flush=True)
"""


def test_netns_reaches_root_over_veth(netns_factory: Callable[[int], list[netns.Netns]]) -> None:
    a, b = netns_factory(2)
    assert a.host_ip is not None and b.host_ip is not None
    a.run("/bin/busybox", "ping", "-c", "1", "-W", "2", a.host_ip)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((b.host_ip, 0))
        sock.settimeout(5.0)
        port = sock.getsockname()[1]
        send = f"import socket; socket.socket(2, 2).sendto(b'hi', ('{b.host_ip}', {port}))"
        b.run(sys.executable, "-c", send)
        data, peer = sock.recvfrom(64)
    assert data == b"hi"
    assert peer[0] == b.ns_ip


@pytest.mark.parametrize("tool", ["iptables", "nft"])
def test_netns_random_loss(tool: str, netns_factory: Callable[[int], list[netns.Netns]]) -> None:
    (ns,) = netns_factory(1)
    port, total = 4124, 400
    netns.add_loss(ns, 0.5, dport=port, tool=tool)  # type: ignore[arg-type]
    receiver = ns.popen(
        sys.executable,
        "-c",
        _RECEIVER,
        ns.ns_ip,
        str(port),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(total):
                sock.sendto(b"x" * 100, (ns.ns_ip, port))
                if i % 50 == 49:
                    time.sleep(0.01)
        got = int(receiver.stdout.readline())
    finally:
        receiver.kill()
        receiver.wait()
    assert 0.3 * total < got < 0.7 * total, f"{tool}: {got}/{total} arrived with p=0.5"
    netns.clear_loss(ns)


class _Exporter(BaseHTTPRequestHandler):
    body = (
        b"# HELP onemon_infra_test_value A value.\n# TYPE onemon_infra_test_value gauge\n"
        b"onemon_infra_test_value 42\n"
    )

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_scrapes_target(
    prometheus_factory: Callable[..., prometheus.Prometheus], exporter: str
) -> None:
    server = prometheus_factory([exporter])
    up = server.wait_for('up{job="onemon"} == 1', timeout=15)
    assert up[0]["metric"]["instance"] == exporter
    value = server.wait_for("onemon_infra_test_value")
    assert value[0]["value"][1] == "42"


def test_promtool_check_metrics() -> None:
    reason = requirements.skip_reason("prometheus")
    if reason:
        pytest.skip(reason)
    good = prometheus.promtool_check_metrics(_Exporter.body)
    assert good.ok, good.output
    bad = prometheus.promtool_check_metrics(b"onemon_bytes_total_kb 1\n")
    assert not bad.ok
    assert bad.output
