"""The database side of leadership, on real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from onemon.collector.sharding.leases import LeaseSession, check_epochs
from onemon.collector.store import schema
from onemon.collector.store.engine import make_engine
from onemon.collector.store.errors import Fenced

LEASE = 2.0


def session(url: str, name: str, shards: int = 4) -> LeaseSession:
    s = LeaseSession(url, lease=LEASE, connect_timeout=5, name=name, shards=shards)
    s.connect()
    return s


def test_one_holder_per_shard_and_everybody_sees_who(store_url: str) -> None:
    a, b = session(store_url, "a"), session(store_url, "b")
    try:
        assert a.try_lock(0) and a.try_lock(2)
        assert not b.try_lock(0)
        assert b.try_lock(1)
        poll_a, poll_b = a.poll(), b.poll()
        assert poll_a.held == {0, 2} and poll_b.held == {1}
        assert poll_a.locked == poll_b.locked == {0, 1, 2}
        a.unlock(2)
        assert b.try_lock(2)
        assert a.poll().held == {0}
    finally:
        a.close()
        b.close()


def test_closing_the_session_frees_its_shards(store_url: str) -> None:
    a, b = session(store_url, "a"), session(store_url, "b")
    try:
        assert a.try_lock(3)
        a.close()  # the server ends the backend (and its locks) a moment after
        deadline = time.monotonic() + 5
        while not b.try_lock(3):
            assert time.monotonic() < deadline, "the lock outlived its session"
            time.sleep(0.02)
    finally:
        b.close()


def test_a_silent_session_loses_its_locks_after_the_lease(store_url: str) -> None:
    """The server-side lease: a leader that stops talking is cut off by the database itself."""
    a, b = session(store_url, "a"), session(store_url, "b")
    try:
        assert a.try_lock(1)
        assert not b.try_lock(1)
        deadline = time.monotonic() + LEASE + 1.5  # MariaDB's idle limit is in whole seconds
        while time.monotonic() < deadline:
            b.poll()  # b keeps talking, a does not
            time.sleep(0.3)
        assert b.try_lock(1)
        with pytest.raises(sa.exc.DBAPIError):
            a.poll()
    finally:
        a.close()
        b.close()


def test_take_bumps_the_epoch_and_clears_a_request(store_url: str) -> None:
    a, b = session(store_url, "a"), session(store_url, "b")
    try:
        assert a.try_lock(0)
        assert a.take(0, "a", "10.0.0.1:4124") == 1
        b.want(0, "b", "10.0.0.2:4124")
        b.want(0, "b", "10.0.0.2:4124")
        row = b.poll().rows[0]
        assert (row.owner, row.address, row.wanted_by, row.wanted_seq) == (
            "a",
            "10.0.0.1:4124",
            "b",
            2,
        )
        a.want(0, "a", "x")  # the owner asking itself changes nothing
        assert b.poll().rows[0].wanted_by == "b"
        a.close()
        deadline = time.monotonic() + 5
        while not b.try_lock(0):
            assert time.monotonic() < deadline, "the lock outlived its session"
            time.sleep(0.02)
        assert b.take(0, "b", "10.0.0.2:4124") == 2
        row = b.poll().rows[0]
        assert (row.epoch, row.owner, row.wanted_by, row.wanted_seq) == (2, "b", "", 0)
    finally:
        a.close()
        b.close()


def test_the_fence_lets_the_current_epoch_through_and_nothing_else(store_url: str) -> None:
    a = session(store_url, "a")
    engine = make_engine(store_url, writer=True)
    try:
        assert a.try_lock(0) and a.try_lock(1)
        epochs = {0: a.take(0, "a", "x"), 1: a.take(1, "a", "x")}
        with engine.begin() as conn:
            check_epochs(conn, epochs)
        with engine.begin() as conn, pytest.raises(Fenced):
            check_epochs(conn, {})
        a.take(1, "a", "x")  # as a new leader would
        with engine.begin() as conn, pytest.raises(Fenced, match=r"\[1\]"):
            check_epochs(conn, epochs)
    finally:
        a.close()
        engine.dispose()


def test_a_takeover_waits_for_a_write_that_passed_the_fence(store_url: str) -> None:
    """The write of the old leader commits before the bump, so the new leader reads it back."""
    a, b = session(store_url, "a"), session(store_url, "b")
    engine = make_engine(store_url, writer=True)
    bumped: list[float] = []
    try:
        assert a.try_lock(0)
        epochs = {0: a.take(0, "a", "x")}
        with engine.begin() as conn:
            check_epochs(conn, epochs)
            a.close()  # the old leader's lock goes while its write is under way
            deadline = time.monotonic() + 5
            while not b.try_lock(0):
                assert time.monotonic() < deadline, "the lock outlived its session"
                time.sleep(0.02)

            def take() -> None:
                for _ in range(20):  # the lock timeout is short: retried, as the coordinator
                    try:
                        b.take(0, "b", "y")
                    except sa.exc.DBAPIError:
                        continue
                    bumped.append(time.monotonic())
                    return

            thread = threading.Thread(target=take)
            thread.start()
            time.sleep(0.5)
            assert not bumped, "the epoch moved under a write that passed the fence"
            conn.execute(
                sa.insert(schema.state_changes).values(
                    ts=1.0, host_id=1, vm_id=1, report="RUNNING", source="state_vm"
                )
            )
            committed = time.monotonic()
        thread.join(30)
        assert bumped and bumped[0] >= committed
        with engine.begin() as conn, pytest.raises(Fenced):
            check_epochs(conn, epochs)
    finally:
        a.close()
        b.close()
        engine.dispose()
