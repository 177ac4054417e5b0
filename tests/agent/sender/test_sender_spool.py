"""The SQLite spool: FIFO, bounds (oldest dropped, counted), persistence, re-numbering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from onemon.agent.sender.sequence import Sequencer
from onemon.agent.sender.spool import Spool, pack, unpack
from onemon.wire.model import Message, MessageType, Status

BOOT_A = b"\x00" * 8 + b"a" * 8
BOOT_B = b"\x00" * 7 + b"\x01" + b"b" * 8


def state(n: int, pad: str = "") -> Message:
    vm = {"ID": n, "DEPLOY_ID": f"one-{n}", "STATE": "RUNNING", "NOTE": pad}
    return Message(MessageType.STATE_VM, Status.SUCCESS, 3, 1716200040.5, {"VM": [vm]})


def test_pack_round_trips_messages_and_failures() -> None:
    ok = state(1)
    bad = Message(MessageType.MONITOR_VM, Status.FAILURE, 0, 17.0, {}, "Error executing x")
    assert unpack(pack(ok)) == ok
    assert unpack(pack(bad)) == bad
    with pytest.raises(ValueError, match="bad spool row"):
        unpack(b"\x01")


def test_fifo_after_and_delete(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    ids = [spool.append(state(n), BOOT_A, n) for n in range(5)]
    assert ids == [0] * 5 and spool.count == 5
    entries = spool.after(0, 3)
    assert [e.seq for e in entries] == [0, 1, 2]
    assert [e.message for e in entries] == [state(0), state(1), state(2)]
    assert [e.seq for e in spool.after(entries[-1].id, 10)] == [3, 4]
    assert spool.delete(entries[1].id) and not spool.delete(entries[1].id)
    assert [e.seq for e in spool.after(0, 10)] == [0, 2, 3, 4]
    assert spool.count == 4 and spool.bytes == 4 * len(pack(state(0)))
    spool.close()


def test_count_bound_drops_oldest_and_counts_exactly(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_count=4)
    drops = [spool.append(state(n), BOOT_A, n) for n in range(10)]
    assert drops == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert spool.dropped == 6 and spool.count == 4
    assert [e.seq for e in spool.after(0, 10)] == [6, 7, 8, 9]


def test_byte_bound_drops_as_many_oldest_as_needed(tmp_path: Path) -> None:
    small = len(pack(state(0)))
    spool = Spool(tmp_path / "s.sqlite", max_bytes=3 * small + 10)
    for n in range(3):
        spool.append(state(n), BOOT_A, n)
    big = state(3, pad="x" * (2 * small))
    assert spool.append(big, BOOT_A, 3) == 3  # needs all the room
    assert spool.count == 1 and spool.bytes == len(pack(big))
    with pytest.raises(ValueError, match="exceeds"):
        spool.append(state(4, pad="x" * 10 * small), BOOT_A, 4)
    assert spool.count == 1 and spool.dropped == 3


def test_persists_and_rebases_other_boots_in_order(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    spool.append(state(0), BOOT_A, 7)
    other = Message(MessageType.MONITOR_VM, Status.SUCCESS, 3, 1.0, {"VM": [{"ID": 1}]})
    spool.append(other, BOOT_A, 40)
    spool.append(state(1), BOOT_A, 8)
    spool.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    reopened = Spool(path)
    assert reopened.count == 3 and reopened.bytes > 0
    seqs = Sequencer()
    assert reopened.rebase(BOOT_B, seqs.next) == 3
    assert [(e.message.type, e.seq) for e in reopened.after(0, 10)] == [
        (MessageType.STATE_VM, 0),
        (MessageType.MONITOR_VM, 0),
        (MessageType.STATE_VM, 1),
    ]
    assert seqs.peek(MessageType.STATE_VM) == 2
    assert reopened.rebase(BOOT_B, seqs.next) == 0  # already this boot's


def test_corrupt_row_is_dropped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = Spool(path)
    spool.append(state(0), BOOT_A, 0)
    spool.append(state(1), BOOT_A, 1)
    db = sqlite3.connect(path)
    db.execute("UPDATE spool SET data = x'ff' WHERE seq = 0")
    db.commit()
    assert [e.seq for e in spool.after(0, 10)] == [1]
    assert spool.dropped == 1 and spool.count == 1
