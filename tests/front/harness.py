"""An in-process collector (real store, real admin API), a front over it, and a client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import xmlrpc.client
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onemon.collector.app import Collector
from onemon.collector.config import (
    CollectorConfig,
    HostEntry,
    HostsConfig,
    HttpConfig,
    KeysConfig,
    ListenConfig,
)
from onemon.collector.store import StoreConfig
from onemon.front.config import CollectorApiConfig, FrontConfig, UsersConfig
from onemon.front.config import ListenConfig as FrontListen
from onemon.front.config import StoreConfig as FrontStore
from onemon.front.daemon import Front
from onemon.wire import native
from onemon.wire.keys import Key, write_key_file
from onemon.wire.model import Message, MessageType, Status, Template
from tests.e2e.stack import free_port

KEY = Key("cluster", b"f" * 32)
BOOT = (9).to_bytes(8, "big") + b"f" * 8
NOW = 1_700_000_000.0

SYSTEM: Template = {
    "HOSTNAME": "node3", "ARCH": "x86_64", "HYPERVISOR": "kvm", "TOTALCPU": 800,
    "CPUSPEED": 2400, "TOTALMEMORY": 16303048, "MODELNAME": "Xeon <E5> & co ]]> end",
    "DS_LOCATION_USED_MB": 51200, "DS_LOCATION_TOTAL_MB": 102400, "DS_LOCATION_FREE_MB": 51200,
    "DS": [
        {"ID": 1, "USED_MB": 20, "TOTAL_MB": 200, "FREE_MB": 180, "REPLICA_CACHE": "YES",
         "REPLICA_CACHE_SIZE": "1.5G", "REPLICA_IMAGES": 3},
        {"ID": 0, "USED_MB": 10, "TOTAL_MB": 100, "FREE_MB": 90},
    ],
    "PCI": [{
        "TYPE": "10de:1eb8:0302", "VENDOR": "10de", "VENDOR_NAME": "NVIDIA Corporation",
        "DEVICE": "1eb8", "CLASS": "0302", "CLASS_NAME": "3D controller",
        "ADDRESS": "0000:3b:00:0", "SHORT_ADDRESS": "3b:00.0", "DOMAIN": "0000", "BUS": "3b",
        "SLOT": "00", "FUNCTION": "0", "NUMA_NODE": "0", "IFNAME": "-", "SRIOV": "no",
        "DEVICE_NAME": "TU104GL [Tesla T4]",
    }],
    "CORE": [
        {"NODE_ID": 0, "ID": 0, "CPUS": "0,4"}, {"NODE_ID": 0, "ID": 1, "CPUS": "1,5"},
        {"NODE_ID": 1, "ID": 2, "CPUS": "2,6"}, {"NODE_ID": 1, "ID": 3, "CPUS": "3,7"},
    ],
    "HUGEPAGE": [
        {"NODE_ID": 0, "SIZE": 2048, "PAGES": 16}, {"NODE_ID": 1, "SIZE": 2048, "PAGES": 0},
    ],
    "MEMORY_NODE": [
        {"NODE_ID": 0, "TOTAL": 8151524, "DISTANCE": "0 1"},
        {"NODE_ID": 1, "TOTAL": 8151524, "DISTANCE": "1 0"},
    ],
    "VM": [{"ID": -1, "DEPLOY_ID": "8c5f-wild", "VM_NAME": "wild1", "IMPORT_TEMPLATE": "TkFNRT0i"}],
    "1BAD": "not an element name",
}  # fmt: skip
MONITOR_HOST: Template = {
    "FREECPU": 700, "USEDCPU": 100, "FREEMEMORY": 8151524, "USEDMEMORY": 8151524,
    "NETRX": 123456, "NETTX": 654321,
    "MEMORY_NODE": [{"NODE_ID": 0, "FREE": 4000000, "USED": 4151524}],
    "HUGEPAGE": [{"NODE_ID": 0, "SIZE": 2048, "FREE": 16}],
}  # fmt: skip
VM12: Template = {
    "CPU": 12.5, "MEMORY": 524288, "NETRX": 1000, "NETTX": 2000, "DISKRDBYTES": 1048576,
    "DISKWRBYTES": 2097152, "DISKRDIOPS": 100, "DISKWRIOPS": 50, "STATE": 1, "REASON": 1,
    "DISK_SIZE": [{"ID": 0, "SIZE": 10240}],
    "NIC": [{"ID": 0, "TARGET": "vnet0", "RX_BYTES": 1000}],
    "VCPU": [{"ID": 0, "STATE": 1}, {"ID": 1, "STATE": 1}],
    "BALLOON": {"MAXIMUM": 1048576, "CURRENT": 1048576},
}  # fmt: skip


@dataclass
class Stack:
    """The collector, the front on top of it, and oneadmin's session."""

    collector: Collector
    front: Front
    tmp: Path
    session: str
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    collector_running: bool = True

    async def stop_collector(self) -> None:
        """Stop the collector (its API and writer) for the rest of the test."""
        await self.collector.stop()
        self.collector_running = False

    @property
    def url(self) -> str:
        """The front's XML-RPC endpoint."""
        return f"http://127.0.0.1:{self.front.port}/RPC2"

    async def send(self, host: int, mtype: MessageType, payload: Template) -> None:
        """Feed one agent message to the collector and wait until it is stored."""
        message = Message(mtype, Status.SUCCESS, host, NOW, payload)
        self.collector.ingest.datagram(native.encode(message, KEY, BOOT, next(self.seq)))  # type: ignore[union-attr]
        await self.collector.writer.persisted()
        self.front_cache_clear()

    def front_cache_clear(self) -> None:
        """Make the front read the store at its next request."""
        view = self.front.context.view if self.front.context else None
        if view is not None:
            view.invalidate()

    async def call(self, method: str, *params: Any, session: str | None = None) -> Any:
        """The raw answer of one call (a list, or a raised Fault)."""

        def run() -> Any:
            proxy = xmlrpc.client.ServerProxy(self.url)
            return getattr(proxy, method)(self.session if session is None else session, *params)

        return await asyncio.to_thread(run)

    async def ok(self, method: str, *params: Any) -> Any:
        """The value of a successful call."""
        answer = await self.call(method, *params)
        assert answer[0] is True and len(answer) == 3 and answer[2] == 0, answer
        return answer[1]


async def populate(stack: Stack) -> None:
    """Host 3 with a rich system template, a wild, a zombie, two VMs with monitoring."""
    await stack.send(4, MessageType.STATE_VM, {"VM": [{"ID": 20, "STATE": "RUNNING"}]})
    await stack.send(3, MessageType.SYSTEM_HOST, SYSTEM)
    await stack.send(3, MessageType.MONITOR_HOST, MONITOR_HOST)
    state = {
        "VM": [
            {"ID": 12, "DEPLOY_ID": "uuid-12", "STATE": "RUNNING"},
            {"ID": 13, "DEPLOY_ID": "uuid-13", "STATE": "POWEROFF"},
            {"ID": 20, "DEPLOY_ID": "uuid-20", "STATE": "RUNNING"},
        ],
        "SYNC_STATE": "yes",
        "MISSING_STATE": "POWEROFF",
    }
    await stack.send(3, MessageType.STATE_VM, state)
    monitor = {"VM": [{"ID": 12, "DEPLOY_ID": "uuid-12", "MONITOR": VM12},
                      {"ID": 13, "DEPLOY_ID": "uuid-13", "MONITOR": {"CPU": 0, "MEMORY": 0}}]}  # fmt: skip
    await stack.send(3, MessageType.MONITOR_VM, monitor)


def front_config(tmp: Path, collector: Collector, store_url: str) -> FrontConfig:
    """A front on a free port over ``collector``."""
    return FrontConfig(
        listen=FrontListen(address="127.0.0.1", port=0),
        store=FrontStore(url=store_url, cache_seconds=0.2),
        collector=CollectorApiConfig(
            endpoint=f"http://127.0.0.1:{collector.http_port}",
            admin_token_file=tmp / "admin.token",
            timeout=5.0,
            write_wait=3.0,
        ),
        users=UsersConfig(url=f"sqlite:///{tmp / 'front.db'}", one_auth=tmp / "one" / "one_auth"),
    )


@contextlib.asynccontextmanager
async def running_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Collector, front and data; everything stopped on exit."""
    key_file = tmp_path / "cluster.key"
    write_key_file(key_file, KEY)
    store_url = f"sqlite:///{tmp_path / 'c.db'}"
    config = CollectorConfig(
        listen=ListenConfig(address="127.0.0.1", port=free_port()),
        keys=KeysConfig(cluster_key_file=key_file),
        store=StoreConfig(url=store_url, batch_delay=0.01),
        http=HttpConfig(address="127.0.0.1", port=0, admin_token_file=tmp_path / "admin.token"),
        hosts=HostsConfig(register=(HostEntry(3, "node3"), HostEntry(4, "node4"))),
    )
    collector = Collector(config)
    await collector.start()
    front = Front(front_config(tmp_path, collector, store_url))
    await front.start()
    session = (tmp_path / "one" / "one_auth").read_text().strip()
    built = Stack(collector, front, tmp_path, session)
    try:
        await populate(built)
        yield built
    finally:
        await front.stop()
        if built.collector_running:
            await collector.stop()
