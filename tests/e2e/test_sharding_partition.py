"""Cut a shard leader off the database (PostgreSQL, MariaDB): it stops applying, a healthy
collector takes over, and when the network heals the shard goes back home; nothing lost or
doubled through both moves.

Collector ``a`` runs in a network namespace and leads shard 0; ``b`` runs outside and leads
shard 1. An iptables rule in ``a``'s namespace drops its packets to the database (agents still
reach ``a``): ``a`` misses its lease checks and stops applying after lease/2; the server ends
its silent lock session after the lease, and ``b`` takes shard 0. The rule is removed: ``a``
asks for its home shard back and ``b`` hands it over once its rows are written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.sharding.dbservers import MariaDbServer, PgServer, Unavailable
from tests.e2e import stack
from tests.e2e.infra import netns
from tests.e2e.sharding_stack import (
    agents,
    hosts_of,
    journal,
    longest_stall,
    lost_and_doubled,
    sharded_collector,
    start_pair,
    wait_led,
)

LEASE = 3.0


@pytest.fixture(params=["postgresql", "mariadb"])
def cut_off(
    request: pytest.FixtureRequest, netns_factory: Callable[[int], list[netns.Netns]]
) -> Iterator[tuple[netns.Netns, PgServer | MariaDbServer]]:
    """A namespace for ``a``, and a database server listening on loopback and on its veth's far
    end (MariaDB on every address: one bind address, or all)."""
    (ns,) = netns_factory(1)
    assert ns.host_ip is not None
    try:
        server: PgServer | MariaDbServer = (
            PgServer(listen=("127.0.0.1", ns.host_ip))
            if request.param == "postgresql"
            else MariaDbServer(listen="0.0.0.0")
        )
    except Unavailable as exc:
        pytest.skip(f"{request.param} cannot run here: {exc}")
    try:
        yield ns, server
    finally:
        server.destroy()


def test_a_leader_cut_off_from_the_database_stops_and_a_healthy_one_takes_over(
    tmp_path: Path, cut_off: tuple[netns.Netns, PgServer | MariaDbServer]
) -> None:
    ns, server = cut_off
    assert ns.host_ip is not None
    database = server.create_database()
    key = stack.make_key(tmp_path)
    shard0, shard1 = hosts_of(0, 6), hosts_of(1, 6)
    hosts = shard0 + shard1
    a = sharded_collector(tmp_path / "a", key, server.url(database, host=ns.host_ip), "a",
                          hosts=hosts, home=[0], listen=ns.ns_ip, api_host=ns.ns_ip,
                          prefix=ns.argv())  # fmt: skip
    b = sharded_collector(tmp_path / "b", key, server.url(database), "b", hosts=hosts, home=[1],
                          listen="0.0.0.0")  # fmt: skip
    b.address = f"{ns.host_ip}:{b.port}"  # where a (inside its namespace) reaches b
    b.argv[-1:] = [str(_advertise(Path(b.argv[-1]), b.address))]
    load = agents(tmp_path / "agents", key, hosts, [f"{ns.ns_ip}:{a.port}", b.address])
    rule = ["OUTPUT", "-p", "tcp", "-d", ns.host_ip, "--dport", str(server.port), "-j", "DROP"]
    started: list[stack.Process] = []
    figures: dict[str, Any] = {}
    try:
        start_pair(a, b, started)
        load.start()
        started.append(load)
        load.wait_ready()
        time.sleep(3.0)
        ns.run("iptables", "-w", "-A", *rule)
        cut = time.time()
        figures["stopped_applying_seconds"] = wait_led(a, set(), 10)
        figures["takeover_seconds"] = wait_led(b, {0, 1}, 20) + figures["stopped_applying_seconds"]
        time.sleep(3.0)
        health = a.get("/api/v1/health")
        ns.run("iptables", "-w", "-D", *rule)
        healed = time.monotonic()
        wait_led(a, {0}, 30)
        wait_led(b, {1}, 10)
        figures["handback_seconds"] = time.monotonic() - healed
        time.sleep(3.0)
        result = load.finish()
    finally:
        with contextlib.suppress(Exception):
            ns.run("iptables", "-w", "-D", *rule, check=False)
        for process in reversed(started):
            with contextlib.suppress(Exception):
                process.kill()

    figures["agent_stall_seconds"] = longest_stall(result, shard0, cut)
    print(f"\npartition of a shard leader from {server.kind}: {figures}")
    assert figures["stopped_applying_seconds"] < LEASE  # lease/2 + one check, in practice
    assert figures["takeover_seconds"] < LEASE + 5
    assert figures["agent_stall_seconds"] < LEASE + 7
    assert health["sharding"]["led"] == [] and health["hosts"] == 0  # a held nothing meanwhile
    assert result["unflushed"] == 0 and set(result["acks"]) == {"ok"}, result["acks"]
    assert lost_and_doubled(result["sent"], journal(server.url(database))) == []
    assert sum(len(s) for s in result["sent"].values()) > 400


def _advertise(path: Path, address: str) -> Path:
    """Rewrite a collector's advertised address in its configuration file."""
    text = path.read_text()
    start = text.index('advertise = "')
    end = text.index('"', start + len('advertise = "'))
    path.write_text(f'{text[:start]}advertise = "{address}{text[end:]}')
    return path
