"""Leadership of shards: take them through the database's locks, keep them, give them up.

One task checks the lease every ``check_interval`` (see ``leases``), takes the shards this
collector should lead when their lock is free (a home shard at once, a stand-in's shard after
``takeover_delay``), reloads them from the store, hands a stand-in's shard back to its home
collector when that one asks, and steps down from everything the moment anything is wrong: a
failed or late check, a lock gone, an epoch moved, or the writer fenced off. Stepping down is
all-or-nothing: the shards' rows not yet written are dropped (never acknowledged, so agents send
them again), their hosts and ordering state are forgotten, and the lock session is closed; the
shards are then taken again, by whoever gets there first, from what the store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from onemon.collector.config import CollectorConfig, HostEntry
from onemon.collector.ingest import Ingest
from onemon.collector.metrics.health import Health
from onemon.collector.ordering import LegacyOrdering, Ordering, Progress
from onemon.collector.sharding.codes import MAX_ADDRESS
from onemon.collector.sharding.leases import LeaseSession, Poll, check_epochs
from onemon.collector.sharding.router import Router, Target, resolve
from onemon.collector.sharding.shardmap import ShardMap
from onemon.collector.state import CloudState
from onemon.collector.store import Snapshot, StoreReader, StoreWriter
from onemon.wire.model import MessageType

log = logging.getLogger("onemon.collector.sharding")

R = TypeVar("R")
HOSTS_FIGURE_ROUNDS = 20
"""Rounds between two counts of hosts per shard (``onemon_shard_hosts``)."""


class LeaseTrouble(Exception):
    """A lease operation failed or took too long."""


@dataclass
class Parts:
    """The collector's pieces the coordinator works on."""

    state: CloudState
    ingest: Ingest
    writer: StoreWriter
    reader: StoreReader
    health: Health
    register: Callable[[tuple[HostEntry, ...]], int]
    """Registers the configured hosts given (only those of led shards are passed)."""


def default_name(config: CollectorConfig) -> str:
    """``<host name>:<listen port>``: unique per collector unless two share host and port."""
    return f"{socket.gethostname()}:{config.listen.port}"


def advertised(config: CollectorConfig) -> str:
    """The address agents are redirected to for this collector's shards."""
    if config.sharding.advertise:
        return config.sharding.advertise
    address = config.listen.address
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{config.listen.port}"


class Coordinator:
    """This collector's side of shard leadership; ``router`` is the ingest hook it drives."""

    def __init__(
        self, config: CollectorConfig, parts: Parts, shard_map: ShardMap | None = None
    ) -> None:
        """``shard_map``: the collector's, when it has one already (else built from config)."""
        cfg = config.sharding
        self.config = config
        self.cfg = cfg
        self.parts = parts
        self.map = shard_map if shard_map is not None else ShardMap.from_config(cfg)
        self.router = Router(self.map, parts.health)
        self.name = cfg.name or default_name(config)
        self.address = advertised(config)
        if len(self.address) > MAX_ADDRESS:
            raise ValueError(f"sharding.advertise longer than {MAX_ADDRESS} characters")
        everything = set(range(cfg.shards))
        self.home = frozenset(everything if cfg.home is None else cfg.home)
        standby = everything - self.home if cfg.standby is None else set(cfg.standby)
        self.candidates = frozenset(self.home | standby)
        self.epochs: dict[int, int] = {}
        """Shards led, with their epoch: the writer's fence (replaced whole, read by its thread)."""
        self._session: LeaseSession | None = None
        self._pool = self._new_pool()
        self._tasks: list[asyncio.Task[None]] = []
        self._work: asyncio.Task[None] | None = None
        """Taking or handing back shards: apart from the checks, which must go on meanwhile."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_ok = 0.0
        self._free_since: dict[int, float] = {}
        self._wanted_seen: dict[int, int] = {}
        self._asked: dict[int, float] = {}
        self._handing: dict[int, str] = {}
        self._stopping = False
        self._rounds = 0
        self._last_trouble = ""
        parts.health.shard_leader = dict.fromkeys(sorted(self.candidates), 0)
        parts.health.shard_hosts = {}
        parts.health.shard_takeovers = dict.fromkeys(sorted(self.candidates), 0)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Hook into the ingest path and the writer, take what can be taken, keep checking."""
        self._loop = asyncio.get_running_loop()
        self.parts.ingest.router = self.router
        writer = self.parts.writer
        writer.fence = self.fence
        writer.on_fenced = self._fenced_from_writer
        await self._round_safely()
        if self._work is not None:  # the home shards, before listening
            await asyncio.gather(self._work, return_exceptions=True)
        self._tasks = [
            asyncio.create_task(self._run(), name="shard-leases"),
            asyncio.create_task(self._watch(), name="shard-watchdog"),
        ]

    def stopping(self) -> None:
        """The collector is stopping: take nothing more (what is led stays led until close)."""
        self._stopping = True

    async def close(self) -> None:
        """Stop checking and end the lock session (the server releases the locks)."""
        self._stopping = True
        tasks = [*self._tasks, *([self._work] if self._work is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._work = [], None
        self.epochs = {}
        self.router.led = frozenset()
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._pool.submit(session.close))
        self._pool.shutdown(wait=False)
        self.router.close()

    # --- what the collector asks ---------------------------------------------------------------

    def leads(self, host_id: int) -> bool:
        """True when ``host_id``'s shard is applied here now."""
        return self.router.leads(host_id)

    def shard_of(self, host_id: int) -> int:
        """The shard of ``host_id``."""
        return self.map.shard_of(host_id)

    def leader_of(self, host_id: int) -> str | None:
        """Where the shard of ``host_id`` is led, if known and not here."""
        return self.router.targets.get(self.map.shard_of(host_id))

    def fence(self, conn: Connection) -> None:
        """The writer's fence (its thread): this collector's epochs must still be current."""
        check_epochs(conn, self.epochs)

    def describe(self) -> dict[str, Any]:
        """For the JSON health API."""
        return {
            "name": self.name,
            "address": self.address,
            "shards": self.cfg.shards,
            "home": sorted(self.home),
            "candidates": sorted(self.candidates),
            "led": sorted(self.router.led),
            "epochs": {str(s): e for s, e in sorted(self.epochs.items())},
            "leaders": {str(s): a for s, a in sorted(self.router.targets.items())},
            "takeovers": {str(s): n for s, n in self.parts.health.shard_takeovers.items()},
        }

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        interval = self.cfg.check_interval
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await self._round_safely()
            await asyncio.sleep(max(0.0, interval - (loop.time() - began)))

    async def _watch(self) -> None:
        """Step down when the last good check is older than lease/2 (the server's lease: 1)."""
        limit = self.cfg.lease / 2
        while True:
            await asyncio.sleep(self.cfg.check_interval / 4)
            if self.epochs and time.monotonic() - self._last_ok > limit:
                self._step_down(f"no good lease check for {limit:g} s")

    async def _round_safely(self) -> None:
        try:
            await self._round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            if text != self._last_trouble or self.epochs:
                log.warning("shard leases: %s", text)
            self._last_trouble = text
            self._step_down(f"lease check failed ({text})")
        else:
            self._last_trouble = ""

    async def _round(self) -> None:
        """One check: locks still held, directory of leaders, shards to take or hand back."""
        if self._session is None:
            session = LeaseSession(
                self.config.store.url,
                lease=self.cfg.lease,
                connect_timeout=self.config.store.connect_timeout,
                name=self.name,
                shards=self.cfg.shards,
            )
            self._session = session
            await self._call(session.connect, timeout=self.config.store.connect_timeout + 1)
        session = self._session
        poll = await self._call(session.poll)
        led = set(self.epochs)
        if not led <= poll.held:
            self._step_down(f"lock(s) of shard(s) {sorted(led - poll.held)} lost")
            return
        moved = sorted(s for s in led if getattr(poll.rows.get(s), "epoch", None) != self.epochs[s])
        if moved:
            self._step_down(f"shard(s) {moved} taken over")
            return
        self._last_ok = poll.started
        await self._directory(poll)
        if not self._stopping and (self._work is None or self._work.done()):
            self._work = asyncio.create_task(self._changes(session, poll), name="shard-changes")
        self._rounds += 1
        if self._rounds % HOSTS_FIGURE_ROUNDS == 1:
            self._count_hosts()

    async def _call(self, fn: Callable[..., R], *args: Any, timeout: float | None = None) -> R:
        """Run a lease operation in the lease thread, bounded by lease/2 (or ``timeout``)."""
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, LeaseSession) and owner is not self._session:
            raise LeaseTrouble("the lease session was replaced (stepped down)")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn, *args)
        try:
            async with asyncio.timeout(timeout or self.cfg.lease / 2):
                return await future
        except TimeoutError:
            raise LeaseTrouble(f"{getattr(fn, '__name__', 'lease operation')} timed out") from None

    # --- directory ----------------------------------------------------------------------------

    async def _directory(self, poll: Poll) -> None:
        """Who leads what, for redirects and relays."""
        targets: dict[int, str] = {}
        for shard, row in poll.rows.items():
            if shard in poll.locked and row.owner != self.name and shard not in self.epochs:
                targets[shard] = row.address
        for shard, address in list(self._handing.items()):
            taker = poll.rows.get(shard)
            if taker is not None and taker.owner != self.name and shard in poll.locked:
                del self._handing[shard]  # the home collector has it
            else:
                targets[shard] = address
        resolved = dict(self.router.resolved)
        for address in set(targets.values()) - set(resolved):
            try:
                resolved[address] = await self._resolve(address)
            except (OSError, ValueError) as exc:
                log.warning("leader address %s does not resolve: %s", address, exc)
        self.router.resolved = {a: t for a, t in resolved.items() if a in targets.values()}
        self.router.targets = targets

    async def _resolve(self, address: str) -> Target:
        return await asyncio.to_thread(resolve, address)

    # --- taking -------------------------------------------------------------------------------

    async def _changes(self, session: LeaseSession, poll: Poll) -> None:
        """Take what should be taken, hand back what is asked back (beside the checks)."""
        try:
            await self._acquire(session, poll)
            await self._hand_back(session, poll)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("shard leases: %s: %s", type(exc).__name__, exc)
            if session is self._session:
                self._step_down(f"taking or handing back shards failed ({type(exc).__name__})")

    async def _acquire(self, session: LeaseSession, poll: Poll) -> None:
        now = time.monotonic()
        wanted: list[int] = []
        for shard in sorted(self.candidates - poll.held):
            row = poll.rows.get(shard)
            if shard in poll.locked:
                self._free_since.pop(shard, None)
                mine = shard in self.home and row is not None and row.owner != self.name
                if mine and now - self._asked.get(shard, -1e9) >= self.cfg.lease / 2:
                    self._asked[shard] = now  # asked again and again while it is not handed back
                    await self._call(session.want, shard, self.name, self.address)
                continue
            if shard in self.home:
                wanted.append(shard)
                continue
            first = self._free_since.setdefault(shard, now)
            if now - first >= self.cfg.takeover_delay:
                wanted.append(shard)
        taken: dict[int, int] = {}
        for shard in wanted:
            if not await self._call(session.try_lock, shard):
                continue
            try:
                taken[shard] = await self._call(session.take, shard, self.name, self.address)
            except LeaseTrouble:
                raise
            except Exception as exc:  # e.g. a former leader's transaction still holds the row
                log.info("shard %d: epoch not taken yet (%s); retrying", shard, exc)
                await self._call(session.unlock, shard)
        if taken:
            await self._take(taken)

    async def _take(self, taken: Mapping[int, int]) -> None:
        """Read the shards back from the store (after the epoch bump), then apply them here."""
        started = time.monotonic()
        self.epochs = {**self.epochs, **taken}  # the fence lets their rows through from now
        try:
            snapshot = await asyncio.to_thread(self.parts.reader.load)
        except Exception:
            self._step_down("reading the shards back failed")
            raise
        if any(self.epochs.get(s) != e for s, e in taken.items()):
            return  # stepped down meanwhile
        self._activate(set(taken), snapshot)
        self._free_since.clear()
        log.warning(
            "leading shard(s) %s (epoch %s), read back in %.3f s",
            sorted(taken), ", ".join(str(taken[s]) for s in sorted(taken)),
            time.monotonic() - started,
        )  # fmt: skip

    def _activate(self, shards: set[int], snapshot: Snapshot) -> None:
        """Load the shards' hosts, VMs and stream progress, then start applying them."""
        parts, shard_of = self.parts, self.map.shard_of
        hosts = [h for h in snapshot.hosts if shard_of(h.id) in shards]
        vms = [v for v in snapshot.vms if shard_of(v.host_id) in shards]
        parts.state.load(hosts, vms)
        ordering = parts.ingest.ordering
        for row in snapshot.progress:
            if shard_of(row.host_id) in shards:
                ordering.restore(
                    row.host_id, row.msg_type, Progress(row.boot_id, row.seq, row.window)
                )
        self.router.led = self.router.led | shards
        self.router.targets = {s: a for s, a in self.router.targets.items() if s not in shards}
        entries = tuple(e for e in self.config.hosts.register if shard_of(e.id) in shards)
        parts.register(entries)
        health = parts.health
        for shard in shards:
            health.shard_leader[shard] = 1
            health.shard_takeovers[shard] = health.shard_takeovers.get(shard, 0) + 1
        self._count_hosts()
        log.info("restored %d hosts, %d VMs of shard(s) %s", len(hosts), len(vms), sorted(shards))

    # --- giving up ----------------------------------------------------------------------------

    async def _hand_back(self, session: LeaseSession, poll: Poll) -> None:
        """Give a stand-in's shard back once its home collector keeps asking for it."""
        for shard in sorted(set(self.epochs) - self.home):
            row = poll.rows.get(shard)
            if row is None or not row.wanted_by or row.wanted_by == self.name:
                self._wanted_seen.pop(shard, None)
                continue
            seen = self._wanted_seen.get(shard)
            self._wanted_seen[shard] = row.wanted_seq
            if seen is None or seen == row.wanted_seq:
                continue
            await self._release(session, shard, row.wanted_by, row.wanted_address)

    async def _release(self, session: LeaseSession, shard: int, to: str, address: str) -> None:
        """Stop applying ``shard``, write what it left, forget it, unlock it."""
        log.warning("handing shard %d back to %s (%s)", shard, to, address)
        self._handing[shard] = address
        self.router.led = self.router.led - {shard}
        self.router.targets = {**self.router.targets, shard: address}
        try:
            async with asyncio.timeout(self.cfg.lease):
                await self.parts.writer.persisted()
        except Exception:
            self._step_down(f"shard {shard}: its rows could not be written before handing it back")
            return
        if shard not in self.epochs:
            return  # stepped down meanwhile
        self._unload({shard})
        self.epochs = {s: e for s, e in self.epochs.items() if s != shard}
        self.parts.health.shard_leader[shard] = 0
        self._wanted_seen.pop(shard, None)
        await self._call(session.unlock, shard)

    def _fenced_from_writer(self) -> None:
        """The writer's thread found an epoch moved: step down on the event loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: nothing left to stop
                loop.call_soon_threadsafe(self._fenced)

    def _fenced(self) -> None:
        if self.epochs:
            self._step_down("a write was fenced off")
        else:  # rows written while leading nothing: only they go
            self.parts.writer.discard_pending()

    def _step_down(self, reason: str) -> None:
        """Stop applying every shard now; drop their pending rows and state; end the session."""
        if self.epochs or self.router.led:
            log.warning("stepping down from shard(s) %s: %s", sorted(self.epochs), reason)
            self.router.led = frozenset()
            self.epochs = {}
            self._handing = {}
            self._unload(None)
            for shard in self.parts.health.shard_leader:
                self.parts.health.shard_leader[shard] = 0
        self.parts.writer.discard_pending()  # also releases a writer halted by the fence
        self._wanted_seen.clear()
        self._free_since.clear()
        session, self._session = self._session, None
        if session is not None:  # the server drops the locks with the session
            pool, self._pool = self._pool, self._new_pool()
            pool.submit(session.close)
            pool.shutdown(wait=False)

    def _unload(self, shards: set[int] | None) -> None:
        """Forget the hosts, VMs and streams of ``shards`` (None: of every shard)."""
        parts = self.parts
        state, ingest = parts.state, parts.ingest
        if shards is None:
            state.hosts.clear()
            state.vms.clear()
            state.vms_by_host.clear()
            ingest.ordering = Ordering()
        else:
            shard_of = self.map.shard_of
            gone = [h for h in set(state.hosts) | set(state.vms_by_host) if shard_of(h) in shards]
            for host_id in gone:
                state.hosts.pop(host_id, None)
                for vm_id in state.vms_by_host.pop(host_id, ()):
                    state.vms.pop(vm_id, None)
            kept, old = Ordering(), ingest.ordering
            for host_id in state.hosts:
                for mtype in MessageType:
                    progress = old.get(host_id, mtype)
                    if progress is not None:
                        kept.restore(host_id, int(mtype), progress)
            ingest.ordering = kept
        ingest.legacy_ordering = LegacyOrdering()
        state.version += 1
        self._count_hosts()

    def _count_hosts(self) -> None:
        counts = dict.fromkeys(sorted(self.router.led), 0)
        shard_of = self.map.shard_of
        for host_id in list(self.parts.state.hosts):
            shard = shard_of(host_id)
            counts[shard] = counts.get(shard, 0) + 1
        self.parts.health.shard_hosts = counts

    @staticmethod
    def _new_pool() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="onemon-lease")
