"""one-collector assembled: store, state, listeners, timers, pre-rendered metrics, HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from onemon.collector.admin import HostAdmin, load_or_create_token
from onemon.collector.config import CollectorConfig, HostEntry
from onemon.collector.events import EventBus
from onemon.collector.http import Api
from onemon.collector.ingest import Ingest, IngestPolicy
from onemon.collector.listeners import (
    ListenerLimits,
    TcpServer,
    UdpReceiver,
    bind_pair,
    bind_tcp,
)
from onemon.collector.metrics.health import Health
from onemon.collector.metrics.render import MetricsCache, Renderer
from onemon.collector.ordering import Progress
from onemon.collector.sharding import Coordinator, Parts, ShardedHostAdmin, ShardMap
from onemon.collector.state import CloudState, StatePolicy
from onemon.collector.store import Snapshot, StoreReader, StoreWriter
from onemon.wire.keys import Key, KeyRing, load_key_file
from onemon.wire.rsa import load_private_key_file

log = logging.getLogger("onemon.collector")

MIN_RENDER_GAP = 0.5
"""How often the render loop looks for a change."""
RENDER_SHARE = 10
"""A render may start only RENDER_SHARE × its last duration after the previous one (≤ 10 %)."""
HEALTH_REFRESH = 15.0
"""Re-render at least this often even without state changes (the onemon_* health figures)."""
LAG_PROBE = 0.25


def load_keys(config: CollectorConfig) -> KeyRing:
    """The cluster key and any per-host keys (``<host id>.key`` files)."""
    cluster = load_key_file(config.keys.cluster_key_file)
    per_host: dict[int, Key] = {}
    if config.keys.host_keys_dir is not None:
        for path in sorted(Path(config.keys.host_keys_dir).glob("*.key")):
            if path.stem.isdigit():
                per_host[int(path.stem)] = load_key_file(path)
    return KeyRing(cluster={cluster.key_id: cluster.secret}, per_host=per_host)


class Collector:
    """The running collector; :meth:`start` then :meth:`serve_forever` or :meth:`stop`."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.health = Health()
        self.bus = EventBus()
        self.state = CloudState(
            StatePolicy(
                auto_register_hosts=config.hosts.auto_register,
                auto_register_vms=config.hosts.auto_register_vms,
                host_interval=config.hosts.monitoring_interval,
            )
        )
        sharding = config.sharding
        self.writer = StoreWriter(
            config.store, session_timeout=sharding.lease if sharding.enabled else 0.0
        )
        self.reader: StoreReader | None = None
        self.shards: Coordinator | None = None
        """Sharding (docs/sharding.md): the shards this collector leads; None when off."""
        self._shard_map = ShardMap.from_config(sharding) if sharding.enabled else None
        """Host → shard, shared by the coordinator and /metrics (series carry ``shard``)."""
        shard_of = self._shard_map.shard_of if self._shard_map is not None else None
        self.metrics = MetricsCache(Renderer(self.health, shard_of=shard_of))
        self.ingest: Ingest | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_server: TcpServer | None = None
        self._http: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._render_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._rendered_version = -1
        self.udp_port = 0
        self.tcp_port = 0
        self.http_port = 0

    async def start(self) -> None:
        """Open the store, restore state, bind the listeners and the HTTP endpoint."""
        config = self.config
        await asyncio.to_thread(self.writer.start)
        self.reader = StoreReader.from_config(config.store)
        if config.sharding.enabled:  # shards are read back as they are taken
            snapshot = Snapshot()
        else:
            snapshot = await asyncio.to_thread(self.reader.load)
        self.state.load(snapshot.hosts, snapshot.vms)
        private_key = None
        if config.listen.legacy_private_key is not None:
            private_key = load_private_key_file(config.listen.legacy_private_key)
        self.ingest = Ingest(
            self.state,
            load_keys(config),
            self.health,
            self.writer,
            self.bus,
            IngestPolicy(config.listen.legacy, private_key),
        )
        for row in snapshot.progress:
            self.ingest.ordering.restore(
                row.host_id, row.msg_type, Progress(row.boot_id, row.seq, row.window)
            )
        if config.sharding.enabled:
            parts = Parts(
                self.state, self.ingest, self.writer, self.reader, self.health, self.register_hosts
            )
            self.shards = Coordinator(config, parts, self._shard_map)
            await self.shards.start()
        else:
            self.register_hosts(config.hosts.register)
        log.info("state restored: %d hosts, %d VMs", len(self.state.hosts), len(self.state.vms))
        await self._bind()
        await self._serve_http()
        self._tasks = [
            asyncio.create_task(self._render_loop(), name="render"),
            asyncio.create_task(self._manager_loop(), name="manager"),
            asyncio.create_task(self._lag_loop(), name="loop-lag"),
        ]
        await self.render()

    def register_hosts(self, entries: tuple[HostEntry, ...]) -> int:
        """Register the configured hosts not known yet; returns how many were added."""
        added = 0
        for entry in entries:
            if self.shards is not None and not self.shards.leads(entry.id):
                continue  # registered by its shard's leader
            if entry.id not in self.state.hosts:
                self.writer.put_host(self.state.add_host(entry.id, entry.name, entry.im_mad))
                added += 1
        return added

    async def _bind(self) -> None:
        listen = self.config.listen
        assert self.ingest is not None
        loop = asyncio.get_running_loop()
        limits = ListenerLimits(
            listen.max_connections, listen.read_timeout, listen.idle_timeout, listen.rcvbuf_bytes
        )
        udp_sock, tcp_sock = bind_pair(listen.address, listen.port, listen.rcvbuf_bytes)
        self.udp_port = udp_sock.getsockname()[1]
        self.tcp_port = tcp_sock.getsockname()[1]
        ingest = self.ingest
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: UdpReceiver(ingest), sock=udp_sock
        )
        self._tcp_server = TcpServer(
            ingest, self.writer.persisted, lambda: self.writer.backlog_full, limits
        )
        self._tcp = await asyncio.start_server(self._tcp_server.handle, sock=tcp_sock)
        log.info("listening on %s udp/%d tcp/%d", listen.address, self.udp_port, self.tcp_port)

    async def _serve_http(self) -> None:
        http = self.config.http
        assert self.reader is not None
        assert self.ingest is not None
        admin = HostAdmin(self.state, self.writer, self.ingest, self.bus)
        if self.shards is not None:
            admin = ShardedHostAdmin(
                self.state, self.writer, self.ingest, self.bus, self.shards, self.reader.host_names
            )
        token = load_or_create_token(http.admin_token_file)
        api = Api(self.state, self.metrics, self.reader, self.health_json, admin, token)
        self._http = web.AppRunner(api.app(), access_log=None)
        await self._http.setup()
        sock = bind_tcp(http.address, http.port)  # dual-stack for "::", as the listeners
        self.http_port = sock.getsockname()[1]
        await web.SockSite(self._http, sock).start()
        log.info("metrics and API on http://%s:%d/", http.address, self.http_port)

    async def stop(self) -> None:
        """Stop listening, then flush the store (and give up the shards led)."""
        if self.shards is not None:
            self.shards.stopping()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
        if self._http is not None:
            await self._http.cleanup()
        await self.writer.aclose()
        if self.shards is not None:
            await self.shards.close()
        if self.reader is not None:
            self.reader.close()
        self._render_pool.shutdown(wait=True)

    async def render(self) -> None:
        """Render /metrics now in the render thread."""
        self._refresh_health()
        loop = asyncio.get_running_loop()
        version = self.state.version
        await loop.run_in_executor(
            self._render_pool, self.metrics.refresh, self.state.hosts, self.state.vms
        )
        self._rendered_version = version

    def health_json(self) -> dict[str, Any]:
        """The collector's own figures for the JSON API."""
        self._refresh_health()
        health = self.health
        return {
            "hosts": len(self.state.hosts),
            "vms": len(self.state.vms),
            "messages": {"/".join(k): v for k, v in sorted(health.messages.items())},
            "rejected": {k: v for k, v in sorted(health.rejected.items()) if v},
            "store": {
                "up": self.writer.up,
                "backlog_rows": self.writer.backlog,
                "history_dropped": self.writer.history_dropped_total,
            },
            "loop_lag_seconds": health.loop_lag_seconds,
            "render_seconds": health.render_seconds,
            "tcp_connections": self._tcp_server.connections if self._tcp_server else 0,
            **({"sharding": self.shards.describe()} if self.shards is not None else {}),
        }

    def _refresh_health(self) -> None:
        writer, health = self.writer, self.health
        health.store_up = writer.up
        health.store_backlog_rows = writer.backlog
        health.history_dropped = writer.history_dropped_total

    async def _render_loop(self) -> None:
        """Re-render after a change, but spend at most ~1/RENDER_SHARE of a core on it."""
        interval = self.config.http.render_interval
        last = time.monotonic()
        while True:
            await asyncio.sleep(MIN_RENDER_GAP)
            since = time.monotonic() - last
            gap = max(interval, RENDER_SHARE * self.health.render_seconds)
            changed = self.state.version != self._rendered_version
            if (changed and since >= gap) or since >= max(gap, HEALTH_REFRESH):
                try:
                    await self.render()
                except Exception:
                    log.exception("metrics render failed")
                last = time.monotonic()

    async def _manager_loop(self) -> None:
        """MANAGER_TIMER: silent hosts → ERROR (if silence_error); liveness times saved in bulk."""
        assert self.ingest is not None
        saved: dict[int, float] = {}
        while True:
            await asyncio.sleep(self.config.hosts.manager_timer)
            if self.config.hosts.silence_error:
                self.ingest.persist(self.state.check_silence(time.time()))
            for host in self.state.hosts.values():
                if host.last_seen != saved.get(host.id):
                    saved[host.id] = host.last_seen
                    self.writer.put_host(host)

    async def _lag_loop(self) -> None:
        """Measure how late the event loop wakes up (the receive path's health)."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE)
            self.health.loop_lag_seconds = max(0.0, loop.time() - before - LAG_PROBE)
