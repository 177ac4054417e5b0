"""``onemon host sync``: versions compared as onehost sync does; who gets the tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from onemon.front.im.api import HostView
from onemon.front.im.driver import Result
from onemon.front.im.node import Host
from onemon.front.im.sync import is_older, read_version, sync_hosts

SHIPPED_TREE = Path(__file__).resolve().parents[3] / "onemon" / "probes"


@pytest.mark.parametrize(
    ("reported", "shipped", "older"),
    [
        ("7.5.80", "7.6.0", True),
        ("7.10.0", "7.9.9", False),
        ("0.1.0", "0.1.0", False),
        ("0.1", "0.1.0", True),
        ("", "0.1.0", True),
        ("0.1.0", "", False),
        ("6.10.1", "6.10.1.1", True),
    ],
)
def test_versions(reported: str, shipped: str, older: bool) -> None:
    assert is_older(reported, shipped) is older


def test_the_shipped_tree_has_a_version() -> None:
    assert read_version(SHIPPED_TREE)
    assert read_version(SHIPPED_TREE / "missing") == ""


class FakeDriver:
    def __init__(self) -> None:
        self.synced: list[int] = []

    async def sync(self, host: Host) -> Result:
        self.synced.append(host.id)
        return Result(host, "sync", host.id != 4, "" if host.id != 4 else "Cannot sync n4: boom")


HOSTS = [
    HostView(1, "n1", "kvm", "MONITORED", 1.0, "0.1.0"),
    HostView(2, "n2", "kvm", "MONITORED", 1.0, "0.2.0"),
    HostView(3, "n3", "kvm", "OFFLINE", 1.0, "0.0.1"),
    HostView(4, "n4", "kvm", "ERROR", 1.0, ""),
]


async def test_only_older_hosts_are_synced_offline_ones_never() -> None:
    driver = FakeDriver()
    lines = await sync_hosts(driver, HOSTS, "0.2.0")  # type: ignore[arg-type]
    assert sorted(driver.synced) == [1, 4]
    assert [(line.host.id, line.outcome) for line in lines] == [
        (1, "synced"), (2, "current"), (3, "offline"), (4, "failed"),
    ]  # fmt: skip
    assert str(lines[0]) == "host 1 (n1): synced: VERSION 0.1.0 -> 0.2.0"
    assert "boom" in str(lines[3])


async def test_force_syncs_every_host_but_offline_ones() -> None:
    driver = FakeDriver()
    await sync_hosts(driver, HOSTS, "0.2.0", force=True)  # type: ignore[arg-type]
    assert sorted(driver.synced) == [1, 2, 4]
