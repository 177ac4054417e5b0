"""Fixtures for the e2e tier: real libvirtd, QEMU/TCG guests, LXC, namespaces, Prometheus.

Every fixture skips with :func:`infra.requirements.skip_reason` when the machine cannot run it
(never silently) and cleans up in its finalizer, also when the test failed. Fixtures that own
fixed names (domains, containers, namespaces) first take a machine-wide lock, so concurrent
sessions on one machine wait for each other instead of destroying each other's guests, and
then sweep leftovers of crashed runs (only objects tagged as ours).

Session-scoped: ``libvirtd`` (the daemons), ``libvirt_conn`` (``qemu:///system``),
``guest_assets``, ``booted_guests`` (``one-101`` and ``one-102`` booted in parallel),
``booted_guest`` (``one-101``), ``lxc_container`` (``one-100``). Function-scoped factories:
``filler_factory(n)``, ``netns_factory(n)``, ``prometheus_factory(targets, …)``.
Environment: ``ONEMON_E2E=0`` skips the tier; ``ONEMON_E2E_KEEP_DAEMONS=1`` leaves
libvirtd/virtlogd running at the end; ``ONEMON_E2E_LOCK_TIMEOUT`` (s, default 900).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.e2e.infra import (  # noqa: E402
    guest,
    guest_image,
    libvirtd,
    lxc,
    machine_lock,
    netns,
    prometheus,
    requirements,
)

BOOTED_IDS = (101, 102)
LXC_ID = 100
FILLER_FIRST_ID = 1000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e as e2e (select with -m e2e, skip with -m 'not e2e')."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def _need(*caps: requirements.Capability) -> None:
    """Skip the requesting test with the reason when a capability is missing."""
    reason = requirements.skip_reason(*caps)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_lock() -> Iterator[machine_lock.MachineLock]:
    """The machine-wide lock for fixed-name real parts, held for the session."""
    _need()
    timeout = float(os.environ.get("ONEMON_E2E_LOCK_TIMEOUT", "900"))
    try:
        held = machine_lock.acquire(timeout)
    except TimeoutError as exc:
        pytest.fail(f"another e2e session holds the machine: {exc}")
    yield held
    held.release()


@pytest.fixture(scope="session")
def libvirtd_daemons(e2e_lock: machine_lock.MachineLock) -> Iterator[libvirtd.Daemons]:
    """libvirtd + virtlogd running (reused or started); stops only what it started."""
    _need("libvirt")
    daemons = libvirtd.ensure_running()
    yield daemons
    if os.environ.get("ONEMON_E2E_KEEP_DAEMONS") != "1":
        daemons.stop()


@pytest.fixture(scope="session")
def libvirt_conn(libvirtd_daemons: libvirtd.Daemons) -> Iterator[Any]:
    """A libvirt-python connection to qemu:///system, with earlier runs' test domains swept."""
    import libvirt

    conn = libvirt.open(libvirtd_daemons.uri)
    guest.cleanup_all(conn)
    try:
        yield conn
    finally:
        guest.cleanup_all(conn)
        conn.close()


@pytest.fixture(scope="session")
def guest_assets(e2e_lock: machine_lock.MachineLock) -> guest_image.GuestAssets:
    """The cached guest kernel + initramfs (built on first use, ~5 s)."""
    _need("guest")
    return guest_image.build_assets()


@pytest.fixture(scope="session")
def booted_guests(
    libvirt_conn: Any, guest_assets: guest_image.GuestAssets
) -> Iterator[tuple[guest.Guest, ...]]:
    """one-101 and one-102, booted in parallel to busybox userspace and doing work."""
    _need("libvirt", "guest", "netns")
    started: list[guest.Guest] = []
    try:
        for vm_id in BOOTED_IDS:
            started.append(guest.start_booted(libvirt_conn, vm_id, assets=guest_assets))
        for g in started:
            guest.wait_for_serial(g)
        yield tuple(started)
    finally:
        guest.remove_many(libvirt_conn, started)


@pytest.fixture(scope="session")
def booted_guest(booted_guests: tuple[guest.Guest, ...]) -> guest.Guest:
    """one-101, booted (see booted_guests)."""
    return booted_guests[0]


@pytest.fixture
def filler_factory(libvirt_conn: Any) -> Iterator[Callable[[int], list[guest.Guest]]]:
    """Start n BIOS-only filler domains (one-1000, one-1001, …); removed after the test."""
    made: list[guest.Guest] = []

    def make(count: int) -> list[guest.Guest]:
        """Start count more fillers and return them."""
        first = FILLER_FIRST_ID + len(made)
        batch = []
        for vm_id in range(first, first + count):
            g = guest.start_filler(libvirt_conn, vm_id)
            made.append(g)
            batch.append(g)
        return batch

    try:
        yield make
    finally:
        guest.remove_many(libvirt_conn, made)


@pytest.fixture(scope="session")
def lxc_container(e2e_lock: machine_lock.MachineLock) -> Iterator[lxc.Container]:
    """Plain-LXC busybox container one-100, running its work loop."""
    _need("lxc", "netns")
    lxc.cleanup_all()
    box = lxc.create(LXC_ID)
    try:
        yield box
    finally:
        lxc.remove(box)


@pytest.fixture
def netns_factory(
    e2e_lock: machine_lock.MachineLock,
) -> Iterator[Callable[[int], list[netns.Netns]]]:
    """Create n namespaces onemon-ns<i> (10.250.<i>.0/24); deleted after the test."""
    _need("netns")
    prefix = f"{netns.PREFIX}ns"
    netns.delete_prefix(prefix)
    made: list[netns.Netns] = []

    def make(count: int = 1) -> list[netns.Netns]:
        """Create count more namespaces and return them."""
        batch = netns.create_many(count, prefix=prefix, first_index=len(made) + 1)
        made.extend(batch)
        return batch

    try:
        yield make
    finally:
        for ns in made:
            netns.delete(ns)


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., prometheus.Prometheus]]:
    """Start Prometheus servers on 127.0.0.1 (args as prometheus.start); stopped after."""
    _need("prometheus")
    made: list[prometheus.Prometheus] = []

    def make(targets: list[str], **kwargs: Any) -> prometheus.Prometheus:
        """Start one server scraping targets every second."""
        server = prometheus.start(targets, **kwargs)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()
