"""The store writer: the event loop appends to a backlog, one thread commits it in batches.

Nothing here blocks the caller on the database. ``persisted()`` is the one way to wait: it
resolves once everything submitted before it is committed (the TCP acknowledgement awaits it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from onemon.collector.store.config import StoreConfig
from onemon.collector.store.dml import delete_older, upsert
from onemon.collector.store.engine import make_engine
from onemon.collector.store.errors import StoreClosed
from onemon.collector.store.migrations import migrate
from onemon.wire.model import Template

log = logging.getLogger("onemon.collector.store")

_IN_CHUNK = 500
_POISON = (sa_exc.IntegrityError, sa_exc.DataError, TypeError, ValueError, OverflowError)


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
    """Batched, bounded, off-loop writes of state, history, journal and progress."""

    def __init__(self, config: StoreConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
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
        self._statements: dict[str, Any] = {}
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
        )
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        dialect = engine.dialect.name
        self._statements = {
            name: upsert(dialect, table)
            for name, table in (
                ("hosts", schema.hosts),
                ("vms", schema.vms),
                ("progress", schema.progress),
                ("host_monitoring", schema.host_monitoring),
                ("vm_monitoring", schema.vm_monitoring),
            )
        }
        self._statements["journal"] = sa.insert(schema.state_changes)
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
        """Upsert ``host`` (a copy is taken now; coalesced with earlier pending copies)."""
        self._backlog.put_state("hosts", host.id, rows.host_row(host))

    def put_vm(self, vm: Vm) -> None:
        """Upsert ``vm`` (a copy is taken now; coalesced with earlier pending copies)."""
        self._backlog.put_state("vms", vm.id, rows.vm_row(vm))

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
            self._backlog.add_history(HOST_SAMPLE, rows.host_sample_row(host_id, ts, capacity))

    def add_vm_monitoring(self, vm_id: int, ts: float, monitoring: Template) -> None:
        """Record a VM's merged MONITOR template (nothing when VM retention is 0)."""
        if self.config.vm_retention > 0:
            self._backlog.add_history(VM_SAMPLE, rows.vm_sample_row(vm_id, ts, monitoring))

    def add_state_change(
        self, ts: float, host_id: int | None, vm_id: int | None, report: str, source: str
    ) -> None:
        """Journal a state change (never dropped; nothing when journal retention is 0)."""
        if self.config.journal_retention > 0:
            self._backlog.add_journal(rows.journal_row(ts, host_id, vm_id, report, source))

    def put_progress(
        self, host_id: int, msg_type: int, boot_id: bytes, seq: int, window: int
    ) -> None:
        """Upsert a stream's replay-protection state (never dropped; coalesced by stream)."""
        row = rows.progress_row(host_id, msg_type, boot_id, seq, window)
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
                    if now < self._retry_at:
                        until = min(self._retry_at, self._stop_deadline or self._retry_at)
                        backlog.cond.wait(max(until - now, 0.001))
                        continue
                    if backlog.due(now, self.config.batch_delay) or (
                        self._stopping and backlog.pending_since is not None
                    ):
                        batch = backlog.take()
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
                            backlog.give_back(batch)
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
        """Run ``batch``'s statements in one transaction."""
        assert self._engine is not None
        with self._engine.begin() as conn:
            self._write(conn, batch)

    def _write(self, conn: Connection, batch: Batch) -> None:
        """Upserts and deletes of state, progress, journal inserts, history upserts."""
        st = self._statements
        for name, table, pending in (
            ("hosts", schema.hosts, batch.hosts),
            ("vms", schema.vms, batch.vms),
        ):
            upserts = [row for row in pending.values() if row is not None]
            if upserts:
                conn.execute(st[name], upserts)
            deleted = [key for key, row in pending.items() if row is None]
            for start in range(0, len(deleted), _IN_CHUNK):
                ids = deleted[start : start + _IN_CHUNK]
                conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
                if name == "hosts":
                    progress = schema.progress
                    conn.execute(sa.delete(progress).where(progress.c.host_id.in_(ids)))
        if batch.progress:
            conn.execute(st["progress"], list(batch.progress.values()))
        if batch.journal:
            conn.execute(st["journal"], [row for _, row in batch.journal])
        if batch.history:
            host_samples: dict[tuple[int, float], rows.Row] = {}
            vm_samples: dict[tuple[int, float], rows.Row] = {}
            for _, kind, row in batch.history:  # the same key twice: the later one wins
                if kind == HOST_SAMPLE:
                    host_samples[(row["hid"], row["last_mon_time"])] = row
                else:
                    vm_samples[(row["vmid"], row["last_poll"])] = row
            if host_samples:
                conn.execute(st["host_monitoring"], list(host_samples.values()))
            if vm_samples:
                conn.execute(st["vm_monitoring"], list(vm_samples.values()))

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
                self._backlog.give_back(batch)
        self._backoff()

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
