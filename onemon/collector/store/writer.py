"""The store writer: the event loop appends to a backlog, one thread commits it in batches.

Nothing here blocks the caller on the database. ``persisted()`` is the one way to wait: it
resolves once everything submitted before it is committed (the TCP acknowledgement awaits it).
The event loop only appends references; rows are built and written in the writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from onemon.collector.model import Host, HostCapacity, Vm
from onemon.collector.store import rows, schema
from onemon.collector.store.backlog import HOST_SAMPLE, VM_SAMPLE, Backlog, Batch
from onemon.collector.store.batchrows import RowBuilder, bulk_statements, write_rows
from onemon.collector.store.config import StoreConfig
from onemon.collector.store.dml import BulkWrite, delete_older
from onemon.collector.store.engine import make_engine
from onemon.collector.store.errors import Fenced, StoreClosed
from onemon.collector.store.migrations import migrate
from onemon.wire.model import Template

log = logging.getLogger("onemon.collector.store")

WRITER_NICE = 10
"""How much nicer than the process the writer thread runs (Linux): while it is in the
database's C code the GIL does not hold it back, the kernel's scheduler does. Under a load the
CPU cannot carry, the event loop keeps receiving and applying, and the store sheds history (its
backlog bound) instead of the kernel dropping datagrams; idle CPU still goes to the writer."""
_POISON = (sa_exc.IntegrityError, sa_exc.DataError, TypeError, ValueError, OverflowError)


class _Stale(Exception):
    """The batch was taken before discard_pending(): it must not be written."""


def is_poison(exc: BaseException) -> bool:
    """True for errors a retry cannot fix (a row the database rejects), not for outages."""
    if isinstance(exc, _POISON):
        return True
    return isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError)


class _ErrorLog:
    """Logs each kind of error once per interval, with how many were not logged."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def report(self, what: str, exc: BaseException) -> None:
        """Log ``exc`` unless its kind was logged less than ``interval`` ago."""
        cause = getattr(exc, "orig", None) or exc
        kind = f"{what}:{type(cause).__name__}"
        now = time.monotonic()
        last, muted = self._last.get(kind, (-self.interval, 0))
        if now - last < self.interval:
            self._last[kind] = (last, muted + 1)
            return
        self._last[kind] = (now, 0)
        text = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else repr(cause)
        more = f" ({muted} more since last logged)" if muted else ""
        log.error("store: %s failed: %s: %s%s", what, type(cause).__name__, text, more)

    def clear(self) -> None:
        """Forget history, so the next error after a recovery is logged at once."""
        self._last.clear()


class StoreWriter:
    """Batched, bounded, off-loop writes of state, history, journal and progress.

    The event-loop side is O(1) and encodes nothing: ``put_host``/``put_vm`` keep a reference
    to the object (coalesced by id, so only the latest is kept), ``add_vm_monitoring`` keeps the
    MONITOR template object, ``add_host_monitoring`` copies the six CAPACITY figures (a
    HostCapacity is updated in place) and keeps the NUMA list. The writer thread reads these
    objects and serializes them when it writes their batch, once per batch (a host's
    SYSTEM_HOST template only when it is another object than last time).

    The contract that makes this safe, which callers must keep: **mutable attributes of a Host
    or Vm handed in (templates, lists, the MONITOR dict, ``capacity.numa``) are replaced
    wholesale, never changed in place** (``host.system = merged``, ``vm.monitoring = {**old,
    **new}``, ``host.agent = …``); scalar attributes are plain assignments, atomic under the
    GIL. A state row then holds the object as it is when its batch is written, which is never
    older than at ``put_*`` time; the one ``put_*`` that follows every change rewrites the row in
    a later batch (``persisted()`` waits for it), so a batch written while the event loop is
    half-way through a change is repaired by the next one. A history row holds the template
    object as it was handed in (it is never changed afterwards). The writer reads each
    attribute once; should a container change while it is being read anyway, the row is read
    again once, and a row that still cannot be built is dropped and counted as rejected: it
    never breaks a commit.
    """

    def __init__(
        self,
        config: StoreConfig,
        *,
        clock: Callable[[], float] = time.time,
        session_timeout: float = 0.0,
    ) -> None:
        self.config = config
        self._clock = clock
        self._session_timeout = session_timeout
        self.fence: Callable[[Connection], None] | None = None
        """Sharding: run first in every write transaction; raises Fenced when a shard was lost."""
        self.on_fenced: Callable[[], None] | None = None
        """Sharding: called (from the writer thread) after a transaction was fenced off."""
        self._generation = 0
        self._batch_generation = 0
        self._halted = False
        self._backlog = Backlog(max_rows=config.max_backlog_rows, batch_rows=config.batch_rows)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._lost = False
        self._stop_deadline = 0.0
        self._retry_at = 0.0
        self._failures = 0
        self._next_retention = 0.0
        self._retention_todo: list[tuple[sa.Column[Any], float]] = []
        self._errors = _ErrorLog(config.error_log_interval)
        self._bulk: dict[str, BulkWrite] = {}
        self._rows = RowBuilder(self._row_failed)
        self.up = False
        """True while the last database operation succeeded."""
        self.last_commit_seconds = 0.0
        """Duration of the last committed batch."""
        self.last_commit_time = 0.0
        """Wall-clock time of the last committed batch."""
        self.batches_total = 0
        self.rows_total = 0
        self.errors_total = 0
        self.rows_rejected_total = 0
        """Rows the database refused for good (bad data), dropped after being isolated."""
        self.retention_deleted_total = 0
        self.commit_seconds_total = 0.0
        """Time spent in committed transactions."""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the database, apply migrations (blocking, at start-up) and start the thread."""
        if self._thread is not None:
            raise RuntimeError("store writer already started")
        cfg = self.config
        engine = make_engine(
            cfg.url,
            writer=True,
            busy_timeout=cfg.busy_timeout,
            connect_timeout=cfg.connect_timeout,
            session_timeout=self._session_timeout,
        )
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        try:
            self._bulk = bulk_statements(engine.dialect)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self.up = True
        self._next_retention = time.monotonic() + cfg.retention_interval
        self._thread = threading.Thread(target=self._run, name="onemon-store-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Write what is pending (trying for up to ``timeout`` s), then close. Blocking."""
        limit = self.config.stop_timeout if timeout is None else timeout
        backlog = self._backlog
        with backlog.cond:
            self._stopping = True
            self._stop_deadline = time.monotonic() + limit
            self._retry_at = 0.0
            backlog.cond.notify()
        if self._thread is not None:
            self._thread.join(limit + self.config.busy_timeout + 1.0)
            if self._thread.is_alive():
                log.error("store: writer thread still busy in the database at stop; abandoned")
        with backlog.cond:
            self._closed = True
            self._fail_waiters()
            lost = backlog.drain()
            self._lost = lost.rows > 0
        if lost.rows:
            log.error(
                "store: stopped with %d rows not written (%d journal, %d history)",
                lost.rows,
                len(lost.journal),
                len(lost.history),
            )
        if self._engine is not None and not (self._thread and self._thread.is_alive()):
            self._engine.dispose()

    async def aclose(self, timeout: float | None = None) -> None:
        """``stop()`` from the event loop, without blocking it."""
        await asyncio.to_thread(self.stop, timeout)

    # --- submissions (event loop; never touch the database) ----------------------------------

    def put_host(self, host: Host) -> None:
        """Upsert ``host`` as it is when its batch is written (coalesced by id; see the class)."""
        self._backlog.put_state("hosts", host.id, host)

    def put_vm(self, vm: Vm) -> None:
        """Upsert ``vm`` as it is when its batch is written (coalesced by id; see the class)."""
        self._backlog.put_state("vms", vm.id, vm)

    def delete_host(self, host_id: int) -> None:
        """Delete a host and its ordering progress (its history ages out)."""
        self._backlog.forget_progress(host_id)
        self._backlog.put_state("hosts", host_id, None)

    def delete_vm(self, vm_id: int) -> None:
        """Delete a VM (its history ages out)."""
        self._backlog.put_state("vms", vm_id, None)

    def add_host_monitoring(self, host_id: int, ts: float, capacity: HostCapacity) -> None:
        """Record a MONITOR_HOST sample (nothing when host retention is 0)."""
        if self.config.host_retention > 0:
            self._backlog.add_history(HOST_SAMPLE, rows.capture_host_sample(host_id, ts, capacity))

    def add_vm_monitoring(self, vm_id: int, ts: float, monitoring: Template) -> None:
        """Record a VM's merged MONITOR template (nothing when VM retention is 0).

        ``monitoring`` is kept by reference and must not be changed afterwards (see the class).
        """
        if self.config.vm_retention > 0:
            self._backlog.add_history(VM_SAMPLE, (vm_id, ts, monitoring))

    def add_state_change(
        self, ts: float, host_id: int | None, vm_id: int | None, report: str, source: str
    ) -> None:
        """Journal a state change (never dropped; nothing when journal retention is 0)."""
        if self.config.journal_retention > 0:
            self._backlog.add_journal(rows.journal_params(ts, host_id, vm_id, report, source))

    def put_progress(
        self, host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int
    ) -> None:
        """Upsert a stream's replay-protection state (never dropped; coalesced by stream)."""
        row = rows.progress_params(host_id, msg_type, boot_id, seq, window)
        self._backlog.put_progress((host_id, int(msg_type)), row)

    async def persisted(self) -> None:
        """Return once everything submitted before this call is committed."""
        loop = asyncio.get_running_loop()
        backlog = self._backlog
        with backlog.cond:
            target = backlog.seq
            if self._closed and (self._lost or backlog.watermark() < target):
                raise StoreClosed("store writer stopped with rows not written")
            if backlog.watermark() >= target:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((target, future))
            backlog.flush_wanted = True
            backlog.cond.notify()
        await future

    # --- figures for the metrics module ------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Rows submitted and not yet committed."""
        return self._backlog.rows

    @property
    def backlog_full(self) -> bool:
        """True when rows that are never dropped fill the backlog: stop reading the TCP side."""
        return self._backlog.full

    @property
    def history_dropped_total(self) -> int:
        """History rows dropped because the backlog was over its bound."""
        return self._backlog.history_dropped

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        """Wait for work, write batches, run retention; until stopped and drained."""
        _lower_priority()
        backlog = self._backlog
        while True:
            batch: Batch | None = None
            with backlog.cond:
                self._resolve_waiters()
                while True:
                    now = time.monotonic()
                    if self._stopping and (
                        backlog.pending_since is None or now >= self._stop_deadline
                    ):
                        return
                    if self._halted:  # fenced: nothing is written until discard_pending()
                        backlog.cond.wait(0.1)
                        continue
                    if now < self._retry_at:
                        until = min(self._retry_at, self._stop_deadline or self._retry_at)
                        backlog.cond.wait(max(until - now, 0.001))
                        continue
                    if backlog.due(now, self.config.batch_delay) or (
                        self._stopping and backlog.pending_since is not None
                    ):
                        batch = backlog.take()
                        self._batch_generation = self._generation
                        break
                    if self._retention_todo or now >= self._next_retention:
                        break
                    timeout = self._next_retention - now
                    since = backlog.pending_since
                    if since is not None:
                        timeout = min(timeout, since + self.config.batch_delay - now)
                    backlog.cond.wait(max(timeout, 0.001))
            try:
                if batch is not None:
                    self._commit(batch)
                else:
                    self._retention_step()
            except Exception:  # a bug here must not kill the thread
                log.exception("store: unexpected error in the writer thread")
                if batch is not None:
                    with backlog.cond:
                        if backlog.in_flight:  # neither committed nor handed back yet
                            self._give_back(batch)
                self._backoff()

    def _commit(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction; isolate rejected rows; hand back on outage."""
        if not batch.rows:  # its history was all dropped: nothing to write
            with self._backlog.cond:
                self._backlog.done()
                self._resolve_waiters()
            return
        started = time.monotonic()
        try:
            self._transaction(batch)
        except Fenced as exc:
            self._fenced(exc)
            return
        except _Stale:
            self._drop_stale()
            return
        except Exception as exc:
            if not is_poison(exc):
                self._failed("write", exc, batch)
                return
            self._errors.report("write", exc)
            self._commit_row_by_row(batch, started)
            return
        self._succeeded(batch.rows, started)

    def _commit_row_by_row(self, batch: Batch, started: float) -> None:
        """Write each row alone, dropping (and counting) those the database refuses."""
        parts = batch.split()
        written = 0
        for index, part in enumerate(parts):
            try:
                self._transaction(part)
            except Fenced as exc:
                self._fenced(exc)
                return
            except _Stale:
                self._drop_stale()
                return
            except Exception as exc:
                if not is_poison(exc):
                    self._failed("write", exc, Batch.join(parts[index:]))
                    return
                self.errors_total += 1
                self.rows_rejected_total += part.rows
                self._errors.report("row", exc)
                continue
            written += part.rows
        self._succeeded(written, started)

    def _transaction(self, batch: Batch) -> None:
        """Build ``batch``'s rows, then write them in one transaction."""
        assert self._engine is not None
        work = self._rows.prepare(batch)
        with self._engine.begin() as conn:
            if self.fence is not None:  # a batch taken before a discard is never written
                if self._batch_generation != self._generation:
                    raise _Stale
                self.fence(conn)  # holds the epochs until commit: a takeover waits for us
                if self._batch_generation != self._generation:
                    raise _Stale
            write_rows(conn, self._bulk, work)

    def _row_failed(self, exc: BaseException) -> None:
        """A row that could not be built: dropped, counted and logged."""
        self.errors_total += 1
        self.rows_rejected_total += 1
        self._errors.report("row", exc)

    def _succeeded(self, written: int, started: float) -> None:
        """Account a commit and wake whoever waited for it."""
        now = time.monotonic()
        if not self.up or self._failures:
            log.warning("store: writing again after %d failed attempts", self._failures)
            self._errors.clear()
        self.up = True
        self._failures = 0
        self._retry_at = 0.0
        self.batches_total += 1
        self.rows_total += written
        self.last_commit_seconds = now - started
        self.commit_seconds_total += now - started
        self.last_commit_time = self._clock()
        with self._backlog.cond:
            self._backlog.done()
            self._resolve_waiters()

    def _failed(self, what: str, exc: BaseException, batch: Batch | None) -> None:
        """Account a failure, keep the rows, and back off."""
        self.errors_total += 1
        self.up = False
        self._errors.report(what, exc)
        if batch is not None:
            with self._backlog.cond:
                self._give_back(batch)
        self._backoff()

    def _give_back(self, batch: Batch) -> None:
        """Re-queue a failed batch, unless it was taken before a discard (lock held)."""
        if self._batch_generation == self._generation:
            self._backlog.give_back(batch)
        else:  # written for a leadership given up since: never written later
            self._backlog.done()
            self._resolve_waiters()

    def discard_pending(self) -> int:
        """Drop every row not committed yet and fail whoever awaits them; returns the rows.

        Sharding: called from the event loop (the thread that submits and awaits) when this
        collector stops leading its shards. A batch being written meanwhile may still commit
        (its transaction passed the fence) or fail; it is never retried. What was dropped was
        never acknowledged: agents send it again to the new leader.
        """
        backlog = self._backlog
        with backlog.cond:
            self._generation += 1
            self._resolve_waiters()
            for _, future in self._waiters:
                _call_in_loop(future, _set_closed)
            self._waiters = []
            dropped = backlog.drain()
            rows = dropped.rows
            if self._halted:  # the fenced batch, held in flight until now
                rows += backlog.rows
                backlog.done()
                self._halted = False
            backlog.cond.notify()
        if rows:
            log.warning("store: %d rows not written, dropped with the leadership", rows)
        return rows

    def _drop_stale(self) -> None:
        """Forget a batch taken before discard_pending() (its waiters have failed already)."""
        with self._backlog.cond:
            self._backlog.done()
            self._resolve_waiters()

    def _fenced(self, exc: Fenced) -> None:
        """A transaction found a shard's epoch moved on: stop writing until discard_pending()."""
        self.errors_total += 1
        log.warning("store: write fenced off: %s", exc)
        with self._backlog.cond:
            self._halted = True  # the batch stays in flight: its waiters must fail, not resolve
        if self.on_fenced is not None:
            self.on_fenced()

    def _backoff(self) -> None:
        """Schedule the next attempt: retry_min, doubling, up to retry_max."""
        cfg = self.config
        delay = min(cfg.retry_max, cfg.retry_min * (2 ** min(self._failures, 30)))
        self._failures += 1
        self._retry_at = time.monotonic() + delay

    def _resolve_waiters(self) -> None:
        """Resolve the ``persisted()`` futures whose rows are all committed (lock held)."""
        if not self._waiters:
            return
        mark = self._backlog.watermark()
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if target <= mark:
                _call_in_loop(future, _set_done)
            else:
                keep.append((target, future))
        self._waiters = keep

    def _fail_waiters(self) -> None:
        """Fail every pending ``persisted()`` at close (lock held)."""
        self._resolve_waiters()
        for _, future in self._waiters:
            _call_in_loop(future, _set_closed)
        self._waiters = []

    # --- retention ---------------------------------------------------------------------------

    def _retention_step(self) -> None:
        """Delete one chunk of expired rows; plan a new pass when the interval is up."""
        cfg = self.config
        if not self._retention_todo:
            now = self._clock()
            self._next_retention = time.monotonic() + cfg.retention_interval
            self._retention_todo = [
                (schema.host_monitoring.c.last_mon_time, now - cfg.host_retention),
                (schema.vm_monitoring.c.last_poll, now - cfg.vm_retention),
                (schema.state_changes.c.ts, now - cfg.journal_retention),
            ]
        column, cutoff = self._retention_todo[0]
        assert self._engine is not None
        try:
            with self._engine.begin() as conn:
                deleted, finished = delete_older(conn, column, cutoff, cfg.retention_chunk)
        except Exception as exc:
            self._retention_todo = []
            self._failed("retention", exc, None)
            return
        self.retention_deleted_total += deleted
        if finished:
            self._retention_todo.pop(0)


def _lower_priority() -> None:
    """Linux: this thread (only) WRITER_NICE steps nicer, so that the kernel gives the event
    loop the CPU first while the writer is in the database's C code, where the GIL no longer
    arbitrates between them (elsewhere: nothing, as setpriority would renice the process)."""
    if not WRITER_NICE or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WRITER_NICE)
    except OSError as exc:  # e.g. a seccomp filter: not worth failing for
        log.debug("store: writer priority unchanged: %s", exc)


def _set_done(future: asyncio.Future[None]) -> None:
    """Resolve ``future`` unless it was cancelled."""
    if not future.done():
        future.set_result(None)


def _set_closed(future: asyncio.Future[None]) -> None:
    """Fail ``future`` with StoreClosed unless it was cancelled."""
    if not future.done():
        future.set_exception(StoreClosed("store writer stopped with rows not written"))


def _call_in_loop(
    future: asyncio.Future[None], action: Callable[[asyncio.Future[None]], None]
) -> None:
    """Run ``action(future)`` in the future's event loop, from any thread."""
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        future.get_loop().call_soon_threadsafe(action, future)
