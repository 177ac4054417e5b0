"""Boot id, back-off, addresses, sequences and the failover policy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from onemon.agent.sender.address import Address, parse_address
from onemon.agent.sender.backoff import BACKOFF_SECONDS, Backoff
from onemon.agent.sender.bootid import COUNTER_FILE, BootId
from onemon.agent.sender.failover import Failover
from onemon.agent.sender.sequence import Sequencer
from onemon.wire.model import MessageType


def test_boot_id_fresh_install_starts_at_time_in_microseconds(tmp_path: Path) -> None:
    before = time.time_ns() // 1000
    boot = BootId.new(tmp_path)
    assert before <= boot.counter <= time.time_ns() // 1000
    raw = boot.raw
    assert len(raw) == 16 and raw[:8] == boot.counter.to_bytes(8, "big")
    assert BootId.from_bytes(raw) == boot
    assert (tmp_path / COUNTER_FILE).read_text() == f"{boot.counter}\n"
    assert [p.name for p in tmp_path.iterdir()] == [COUNTER_FILE]  # no temporary file left


def test_boot_id_increments_at_each_start(tmp_path: Path) -> None:
    first = BootId.new(tmp_path)
    second = BootId.new(tmp_path)
    third = BootId.new(tmp_path)
    assert (second.counter, third.counter) == (first.counter + 1, first.counter + 2)
    assert len({first.nonce, second.nonce, third.nonce}) == 3


def test_boot_id_unusable_counter_restarts_from_clock(tmp_path: Path) -> None:
    (tmp_path / COUNTER_FILE).write_text("garbage")
    assert BootId.new(tmp_path).counter >= time.time_ns() // 1000 - 10**7


def test_backoff_is_opennebulas_sequence_then_holds() -> None:
    backoff = Backoff()
    assert [backoff.fail() for _ in range(12)] == [*BACKOFF_SECONDS, 64, 64]
    assert BACKOFF_SECONDS == (1, 1, 1, 2, 4, 8, 8, 16, 32, 64)
    backoff.reset()
    assert backoff.fail() == 1


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("collector:4125", Address("collector", 4125)),
        ("10.0.0.1:1", Address("10.0.0.1", 1)),
        ("[::1]:4124", Address("::1", 4124)),
        ("[fe80::1]", Address("fe80::1", 4124)),
        ("fe80::1", Address("fe80::1", 4124)),
        ("front", Address("front", 4124)),
    ],
)
def test_parse_address(text: str, address: Address) -> None:
    assert parse_address(text) == address
    assert parse_address(str(address)) == address


@pytest.mark.parametrize("text", ["", ":4124", "host:0", "host:99999", "host:x", "[::1", "[::1]x"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"collector address|port"):
        parse_address(text)


def test_sequence_is_per_type_from_zero() -> None:
    seqs = Sequencer()
    assert [seqs.next(MessageType.STATE_VM) for _ in range(3)] == [0, 1, 2]
    assert seqs.peek(MessageType.MONITOR_VM) == 0
    assert seqs.next(MessageType.MONITOR_VM) == 0
    assert seqs.peek(MessageType.STATE_VM) == 3


def test_failover_prefers_first_ready_collector_with_per_collector_backoff() -> None:
    now = [100.0]
    failover = Failover(["a:1", "b:1", "c:1"], backoff=(1, 2), clock=lambda: now[0])
    assert failover.choose() == (0, 0.0)
    assert failover.failed(0) == 1
    assert failover.choose() == (1, 0.0)
    failover.use(1)
    assert failover.failovers == 1 and str(failover.address) == "b:1"
    failover.failed(1)
    assert failover.choose() == (2, 0.0)
    failover.failed(2)
    index, delay = failover.choose()  # all backing off: the one ready soonest
    assert (index, delay) == (0, 1.0)
    now[0] += 1
    assert failover.choose() == (0, 0.0)  # the preferred one is tried again first
    assert failover.failed(0) == 2  # its second consecutive failure
    failover.succeeded(0)
    assert failover.choose() == (0, 0.0) and failover.failed(0) == 1
    assert failover.failures == 5
