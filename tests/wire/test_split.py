"""Splitting VM reports into datagrams that are never IP-fragmented."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onemon.wire import native
from onemon.wire.keys import Key, KeyRing
from onemon.wire.model import Message, MessageType, Status, values
from onemon.wire.split import split

KEY = Key("cluster", b"s" * 32)
BOOT = b"\x01" * 16
MAX_SEQ = 2**63 - 1
encode = native.DatagramSizer(KEY, BOOT)


def vm(vm_id: int, pad: int = 0) -> dict[str, object]:
    return {
        "ID": vm_id,
        "DEPLOY_ID": f"{vm_id:08d}-50f4-43b6-ba71-0fe46477d2ec",
        "MONITOR": {
            "CPU": 12.5 + vm_id,
            "MEMORY": 1_048_576 + vm_id,
            "NETRX": 10**9 + vm_id * 7919,
            "NETTX": 10**8 + vm_id * 104729,
            "DISKRDBYTES": 44165444 * vm_id,
            "DISKWRBYTES": 1266688 * vm_id,
            "DISKRDIOPS": 1289 + vm_id,
            "DISKWRIOPS": 881 + vm_id,
            "NOTE": "".join(random.Random(vm_id).choices("abcdefghijklmnopqrstuvwxyz", k=pad)),
        },
    }


def report(vms: list[dict[str, object]]) -> Message:
    return Message(MessageType.MONITOR_VM, Status.SUCCESS, 7, 1716200040.0, {"VM": vms, "Z": "1"})


def ids(messages: list[Message]) -> list[int]:
    return [int(rec["ID"]) for m in messages for rec in values(m.payload, "VM")]


def test_small_report_is_one_datagram() -> None:
    result = split(report([vm(1)]), encode)
    assert len(result.datagrams) == 1 and not result.oversize


def test_500_vms_fit_1400_byte_datagrams_in_order_with_nothing_lost() -> None:
    result = split(report([vm(i) for i in range(500)]), encode, budget=1400)
    assert ids(result.datagrams) == list(range(500))
    assert not result.oversize
    ring = KeyRing.single(KEY)
    for part in result.datagrams:
        data = native.encode(part, KEY, BOOT, 3)
        assert len(data) <= 1400
        assert native.decode(data, ring).message.payload["Z"] == "1"  # self-contained
    # datagrams are well filled: far fewer than one per VM
    assert len(result.datagrams) <= 500 // 8


def test_a_record_too_big_for_any_datagram_is_marked_for_tcp() -> None:
    result = split(report([vm(1), vm(2, pad=5000), vm(3)]), encode, budget=1400)
    assert ids(result.datagrams) == [1, 3]
    assert ids(result.oversize) == [2]


def test_oversize_message_without_vms_goes_to_tcp() -> None:
    big = Message(
        MessageType.SYSTEM_HOST,
        Status.SUCCESS,
        1,
        1.0,
        {"PCI": random.Random(1).randbytes(3000).hex()},
    )
    result = split(big, encode, budget=1400)
    assert result.oversize == [big] and not result.datagrams


def test_budget_is_bounded_by_udp_limit() -> None:
    with pytest.raises(ValueError):
        split(report([]), encode, budget=65508)


@given(st.lists(st.integers(0, 3000), max_size=60), st.integers(300, 9000))
@settings(max_examples=60, deadline=None)
def test_split_never_exceeds_budget_or_loses_a_record(pads: list[int], budget: int) -> None:
    msg = report([vm(i, pad) for i, pad in enumerate(pads)])
    result = split(msg, encode, budget=budget)
    assert sorted(ids(result.datagrams) + ids(result.oversize)) == list(range(len(pads)))
    assert all(len(encode(m)) <= budget for m in result.datagrams)
