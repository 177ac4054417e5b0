"""Ordering by (boot id, seq): replays refused, reordering tolerated, clocks irrelevant."""

from __future__ import annotations

from onemon.collector.ordering import LegacyOrdering, Ordering, Verdict
from onemon.wire.model import MessageType

MV, SV = MessageType.MONITOR_VM, MessageType.STATE_VM


def boot(counter: int) -> bytes:
    return counter.to_bytes(8, "big") + b"r" * 8


def test_reordered_datagrams_within_window_are_each_applied_once() -> None:
    order = Ordering()
    assert order.check(1, MV, boot(5), 10) is Verdict.APPLY
    assert order.check(1, MV, boot(5), 12) is Verdict.APPLY
    assert order.check(1, MV, boot(5), 11) is Verdict.APPLY  # late, inside the window
    assert order.check(1, MV, boot(5), 11) is Verdict.REPLAY  # twice: refused
    assert order.check(1, MV, boot(5), 12) is Verdict.REPLAY


def test_datagram_older_than_the_window_is_a_replay() -> None:
    order = Ordering()
    order.check(1, MV, boot(5), 100)
    assert order.check(1, MV, boot(5), 100 - 64) is Verdict.REPLAY
    assert order.check(1, MV, boot(5), 100 - 63) is Verdict.APPLY


def test_seen_seq_over_tcp_is_a_duplicate_and_outside_the_window_still_a_replay() -> None:
    order = Ordering()
    sh = MessageType.SYSTEM_HOST
    assert order.check(1, sh, boot(5), 100, acked=True) is Verdict.APPLY
    assert order.check(1, sh, boot(5), 100, acked=True) is Verdict.DUPLICATE  # answer was lost
    assert order.check(1, sh, boot(5), 100) is Verdict.REPLAY  # the same seq as a datagram
    assert order.check(1, sh, boot(5), 99, acked=True) is Verdict.APPLY  # unseen, in the window
    assert order.check(1, sh, boot(5), 100 - 64, acked=True) is Verdict.REPLAY


def test_state_stream_is_strict_and_duplicates_are_acknowledged_not_applied() -> None:
    order = Ordering()
    assert order.check(1, SV, boot(5), 0) is Verdict.APPLY
    assert order.check(1, SV, boot(5), 1) is Verdict.APPLY
    assert order.check(1, SV, boot(5), 1) is Verdict.DUPLICATE
    assert order.check(1, SV, boot(5), 0) is Verdict.DUPLICATE
    assert order.check(1, SV, boot(5), 5) is Verdict.APPLY  # gap: the agent dropped some


def test_new_boot_resets_and_old_boot_is_refused() -> None:
    order = Ordering()
    order.check(1, SV, boot(5), 40)
    assert order.check(1, SV, boot(6), 0) is Verdict.APPLY
    assert order.check(1, SV, boot(5), 41) is Verdict.OLD_BOOT


def test_streams_are_per_host_and_type() -> None:
    order = Ordering()
    order.check(1, SV, boot(5), 40)
    assert order.check(2, SV, boot(5), 0) is Verdict.APPLY
    assert order.check(1, MV, boot(5), 0) is Verdict.APPLY


def test_legacy_timestamps_drop_older_messages_per_type_and_reset_on_state_change() -> None:
    legacy = LegacyOrdering()
    assert legacy.accept(3, MV, 1000)
    assert not legacy.accept(3, MV, 999)
    assert legacy.accept(3, MessageType.BEACON_HOST, 1)  # beacons always pass
    assert legacy.accept(3, MV, 0)  # TS 0 always passes
    legacy.reset_host(3)
    assert legacy.accept(3, MV, 999)
