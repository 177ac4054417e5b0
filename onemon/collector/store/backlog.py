"""The writer's in-memory backlog: cheap, thread-safe appends on one side, batches on the other.

Every submission gets a sequence number. State upserts and progress are coalesced by key (a
pending batch holds only the latest entry); journal and history rows queue in order. Over the
row bound, the oldest queued history rows are dropped; nothing else ever is.

Entries are opaque here: whatever the writer turns into rows at commit time (a state object,
a capture of a history sample, a parameter tuple).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

HOST_SAMPLE, VM_SAMPLE = 0, 1

StateKey = int
ProgressKey = tuple[int, int]
Deleted = None
"""The value a coalesced state entry takes when the object is deleted."""
Entry = Any
"""What the writer converts to a row at commit time."""


@dataclass(slots=True)
class Batch:
    """Rows taken from the backlog for one transaction (handed back if it fails)."""

    hosts: dict[StateKey, Entry | None] = field(default_factory=dict)
    vms: dict[StateKey, Entry | None] = field(default_factory=dict)
    progress: dict[ProgressKey, Entry] = field(default_factory=dict)
    journal: list[tuple[int, Entry]] = field(default_factory=list)
    history: list[tuple[int, int, Entry]] = field(default_factory=list)
    """(seq, HOST_SAMPLE | VM_SAMPLE, entry), oldest first."""
    state_seq: int = 0
    """Lowest sequence number among the coalesced entries (0 when there are none)."""

    @property
    def rows(self) -> int:
        """Number of rows (statements' parameter sets) in the batch."""
        return (
            len(self.hosts)
            + len(self.vms)
            + len(self.progress)
            + len(self.journal)
            + len(self.history)
        )

    def split(self) -> list[Batch]:
        """One batch per row, in write order (to isolate a row the database rejects)."""
        parts: list[Batch] = []
        seq = self.state_seq
        parts += [Batch(hosts={k: v}, state_seq=seq) for k, v in self.hosts.items()]
        parts += [Batch(vms={k: v}, state_seq=seq) for k, v in self.vms.items()]
        parts += [Batch(progress={k: v}, state_seq=seq) for k, v in self.progress.items()]
        parts += [Batch(journal=[item]) for item in self.journal]
        parts += [Batch(history=[item]) for item in self.history]
        return parts

    @staticmethod
    def join(parts: list[Batch]) -> Batch:
        """The union of ``parts`` (later parts win on coalesced keys)."""
        out = Batch()
        for part in parts:
            out.hosts.update(part.hosts)
            out.vms.update(part.vms)
            out.progress.update(part.progress)
            out.journal += part.journal
            out.history += part.history
            if part.state_seq and (not out.state_seq or part.state_seq < out.state_seq):
                out.state_seq = part.state_seq
        return out


class Backlog:
    """Pending rows, bounded; the lock guards everything here and ``cond`` wakes the writer."""

    def __init__(self, *, max_rows: int, batch_rows: int) -> None:
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.seq = 0
        """Sequence number of the latest submission."""
        self.pending_since: float | None = None
        """Monotonic time the oldest pending row arrived (None: nothing pending)."""
        self.flush_wanted = False
        self.history_dropped = 0
        self._hosts: dict[StateKey, Entry | None] = {}
        self._vms: dict[StateKey, Entry | None] = {}
        self._progress: dict[ProgressKey, Entry] = {}
        self._state_seq = 0
        self._journal: deque[tuple[int, Entry]] = deque()
        self._history: deque[tuple[int, int, Entry]] = deque()
        self._inflight_rows = 0
        self._inflight_kept = 0
        self._inflight_seq = 0

    # --- producer side (event loop) ------------------------------------------------------------

    def put_state(self, table: str, key: StateKey, row: Entry | None) -> None:
        """Upsert (or delete, ``row=None``) a host or VM; coalesced by id."""
        with self.lock:
            self.seq += 1
            if not self._state_seq:
                self._state_seq = self.seq
            (self._hosts if table == "hosts" else self._vms)[key] = row
            self._added()

    def forget_progress(self, host_id: int) -> None:
        """Drop pending progress of a deleted host (its rows are deleted with it)."""
        with self.lock:
            for key in [k for k in self._progress if k[0] == host_id]:
                del self._progress[key]

    def put_progress(self, key: ProgressKey, row: Entry) -> None:
        """Upsert a stream's progress; coalesced by (host, type)."""
        with self.lock:
            self.seq += 1
            if not self._state_seq:
                self._state_seq = self.seq
            self._progress[key] = row
            self._added()

    def add_journal(self, row: Entry) -> None:
        """Queue a journal row (never dropped)."""
        with self.lock:
            self.seq += 1
            self._journal.append((self.seq, row))
            self._added()

    def add_history(self, kind: int, row: Entry) -> None:
        """Queue a history row (the oldest are dropped when over the bound)."""
        with self.lock:
            self.seq += 1
            self._history.append((self.seq, kind, row))
            self._added()

    def request_flush(self) -> int:
        """Ask the writer to commit now; returns the sequence number to wait for."""
        with self.lock:
            if self.pending_since is not None or self._inflight_rows:
                self.flush_wanted = True
                self.cond.notify()
            return self.seq

    def _added(self) -> None:
        """Bookkeeping after an append (lock held)."""
        if self.pending_since is None:
            self.pending_since = time.monotonic()
            self.cond.notify()
        pending = self._pending_rows()
        if pending + self._inflight_rows > self.max_rows:
            self._shed(pending + self._inflight_rows - self.max_rows)
        elif pending == self.batch_rows:
            self.cond.notify()

    def _shed(self, excess: int) -> None:
        """Drop up to ``excess`` of the oldest queued history rows (lock held)."""
        history = self._history
        drop = min(excess, len(history))
        for _ in range(drop):
            history.popleft()
        self.history_dropped += drop

    # --- figures (read without the lock: approximate is fine) --------------------------------

    def _pending_rows(self) -> int:
        """Rows waiting, not counting those in flight."""
        return (
            len(self._hosts)
            + len(self._vms)
            + len(self._progress)
            + len(self._journal)
            + len(self._history)
        )

    @property
    def rows(self) -> int:
        """Rows not yet committed (pending and in flight)."""
        return self._pending_rows() + self._inflight_rows

    @property
    def in_flight(self) -> bool:
        """True while a taken batch is neither committed nor handed back."""
        return self._inflight_rows > 0

    @property
    def full(self) -> bool:
        """True when rows that are never dropped (state, journal, progress) reach the bound."""
        kept = len(self._hosts) + len(self._vms) + len(self._progress) + len(self._journal)
        return kept + self._inflight_kept >= self.max_rows

    # --- consumer side (writer thread) ---------------------------------------------------------

    def due(self, now: float, delay: float) -> bool:
        """True when a batch should be written now (lock held)."""
        if self.pending_since is None:
            return False
        return (
            self.flush_wanted
            or now - self.pending_since >= delay
            or self._pending_rows() >= self.batch_rows
        )

    def take(self) -> Batch | None:
        """Move up to about ``batch_rows`` rows in flight (lock held); all coalesced state goes."""
        if self.pending_since is None:
            return None
        batch = Batch(hosts=self._hosts, vms=self._vms, progress=self._progress)
        batch.state_seq = self._state_seq
        self._hosts, self._vms, self._progress, self._state_seq = {}, {}, {}, 0
        batch.journal = _take(self._journal, self.batch_rows)
        room = self.batch_rows - batch.rows
        batch.history = _take(self._history, room) if room > 0 else []
        self.flush_wanted = False
        if not self._pending_rows():
            self.pending_since = None  # else the rest is as old as before: due at once
        self._inflight_rows = batch.rows
        self._inflight_kept = batch.rows - len(batch.history)
        self._inflight_seq = _lowest_seq(batch)
        return batch

    def give_back(self, batch: Batch) -> None:
        """Return a batch that failed: it goes before what arrived since (lock held)."""
        for key, row in batch.hosts.items():
            self._hosts.setdefault(key, row)
        for key, row in batch.vms.items():
            self._vms.setdefault(key, row)
        for pkey, prow in batch.progress.items():
            self._progress.setdefault(pkey, prow)
        if batch.state_seq and (not self._state_seq or batch.state_seq < self._state_seq):
            self._state_seq = batch.state_seq
        self._journal.extendleft(reversed(batch.journal))
        self._history.extendleft(reversed(batch.history))
        self._inflight_rows = self._inflight_kept = self._inflight_seq = 0
        if batch.rows and self.pending_since is None:
            self.pending_since = time.monotonic()
        excess = self._pending_rows() - self.max_rows
        if excess > 0:
            self._shed(excess)

    def done(self) -> int:
        """Mark the batch in flight committed (lock held); returns the committed watermark."""
        self._inflight_rows = self._inflight_kept = self._inflight_seq = 0
        return self.watermark()

    def watermark(self) -> int:
        """Highest sequence number below which everything is committed or dropped (lock held)."""
        oldest = [s for s in (self._state_seq, self._inflight_seq) if s]
        if self._journal:
            oldest.append(self._journal[0][0])
        if self._history:
            oldest.append(self._history[0][0])
        return min(oldest) - 1 if oldest else self.seq

    def drain(self) -> Batch:
        """Everything still pending, as one batch (lock held; for reporting losses at stop)."""
        batch = Batch(hosts=self._hosts, vms=self._vms, progress=self._progress)
        batch.journal, batch.history = list(self._journal), list(self._history)
        self._hosts, self._vms, self._progress, self._state_seq = {}, {}, {}, 0
        self._journal.clear()
        self._history.clear()
        self.pending_since = None
        return batch


def _take(queue: deque[Any], limit: int) -> list[Any]:
    """Pop up to ``limit`` items from the left of ``queue``."""
    if len(queue) <= limit:
        items = list(queue)
        queue.clear()
        return items
    items = list(islice(queue, limit))
    for _ in range(limit):
        queue.popleft()
    return items


def _lowest_seq(batch: Batch) -> int:
    """Lowest sequence number in ``batch`` (0 when empty)."""
    seqs = [s for s in (batch.state_seq,) if s]
    if batch.journal:
        seqs.append(batch.journal[0][0])
    if batch.history:
        seqs.append(batch.history[0][0])
    return min(seqs) if seqs else 0
