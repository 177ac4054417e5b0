"""The in-memory backlog: coalescing, the bound, give-back order and the commit watermark."""

from __future__ import annotations

from onemon.collector.store.backlog import HOST_SAMPLE, VM_SAMPLE, Backlog


def test_state_coalesces_and_history_is_dropped_oldest_first() -> None:
    backlog = Backlog(max_rows=10, batch_rows=100)
    for i in range(5):
        backlog.put_state("hosts", 1, {"id": 1, "n": i})
    for i in range(12):
        backlog.add_history(VM_SAMPLE, {"i": i})
    assert backlog.rows == 10
    assert backlog.history_dropped == 3
    with backlog.lock:
        batch = backlog.take()
    assert batch is not None
    assert batch.hosts == {1: {"id": 1, "n": 4}}
    assert [row["i"] for _, _, row in batch.history] == list(range(3, 12))


def test_journal_is_never_dropped_and_fills_the_backlog() -> None:
    backlog = Backlog(max_rows=5, batch_rows=100)
    backlog.add_history(HOST_SAMPLE, {})
    for i in range(7):
        backlog.add_journal({"i": i})
    assert backlog.full
    assert backlog.history_dropped == 1
    assert backlog.rows == 7


def test_a_failed_batch_goes_back_before_newer_rows() -> None:
    backlog = Backlog(max_rows=100, batch_rows=100)
    backlog.add_journal({"i": 0})
    backlog.put_state("vms", 9, {"v": "old"})
    with backlog.lock:
        batch = backlog.take()
        assert batch is not None
        mark = backlog.watermark()
    assert mark == 0  # nothing committed yet
    backlog.add_journal({"i": 1})
    backlog.put_state("vms", 9, {"v": "new"})
    with backlog.lock:
        backlog.give_back(batch)
        again = backlog.take()
    assert again is not None
    assert [row["i"] for _, row in again.journal] == [0, 1]
    assert again.vms == {9: {"v": "new"}}


def test_watermark_follows_commits_and_drops() -> None:
    backlog = Backlog(max_rows=3, batch_rows=2)
    backlog.add_journal({})  # seq 1
    backlog.add_history(VM_SAMPLE, {})  # seq 2
    backlog.add_history(VM_SAMPLE, {})  # seq 3
    with backlog.lock:
        first = backlog.take()  # seqs 1 and 2
        assert first is not None and first.rows == 2
        assert backlog.watermark() == 0
        assert backlog.done() == 2  # seq 3 still pending
        rest = backlog.take()
        assert rest is not None
        assert backlog.done() == 3
    for _ in range(5):
        backlog.add_history(VM_SAMPLE, {})  # seqs 4..8; 4 and 5 dropped over the bound
    with backlog.lock:
        assert backlog.watermark() == 5


def test_split_and_join_keep_every_row() -> None:
    backlog = Backlog(max_rows=100, batch_rows=100)
    backlog.put_state("hosts", 1, {})
    backlog.put_state("hosts", 2, None)
    backlog.put_progress((1, 7), {})
    backlog.add_journal({})
    backlog.add_history(HOST_SAMPLE, {})
    with backlog.lock:
        batch = backlog.take()
    assert batch is not None
    parts = batch.split()
    assert len(parts) == batch.rows == 5
    joined = type(batch).join(parts)
    assert joined.rows == 5 and joined.state_seq == batch.state_seq
