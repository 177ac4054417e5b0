"""The START_MONITOR reply, read from what the agent side writes."""

from __future__ import annotations

import base64

import pytest

from onemon.agent.opennebula import monitor_messages
from onemon.front.im.reply import MAX_REPLY_BYTES, ReplyError, parse
from onemon.wire.model import Message, MessageType, Status


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_agents_reply_is_read_back() -> None:
    messages = [
        Message(MessageType.BEACON_HOST, Status.SUCCESS, 1, 1.0, {}),
        Message(MessageType.SYSTEM_HOST, Status.SUCCESS, 1, 1.0, {"VERSION": "7.0.1", "ARCH": "x"}),
        Message(MessageType.MONITOR_HOST, Status.SUCCESS, 1, 1.0, {"FREECPU": 100}),
        Message(MessageType.MONITOR_VM, Status.FAILURE, 1, 1.0, {}, "Error executing poll"),
    ]
    reply = parse(monitor_messages(messages, 1700000000).encode() + b"\n")
    assert reply.timestamp == 1700000000
    assert set(reply.messages) == {"SYSTEM_HOST", "MONITOR_HOST"}
    assert reply.version == "7.0.1"


def test_only_the_first_element_of_a_type_counts() -> None:
    xml = (f"<MONITOR_MESSAGES><MONITOR_VM>{b64('A=1')}</MONITOR_VM>"
           f"<MONITOR_VM>{b64('A=2')}</MONITOR_VM><TIMESTAMP>5</TIMESTAMP></MONITOR_MESSAGES>")  # fmt: skip
    assert parse(xml.encode()).messages["MONITOR_VM"] == {"A": "1"}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "malformed"),
        (b"Traceback (most recent call last):", "malformed"),
        (b"<OTHER/>", "not <MONITOR_MESSAGES>"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><MONITOR_MESSAGES/>', "DTD"),
        (b"<MONITOR_MESSAGES><SYSTEM_HOST>!!</SYSTEM_HOST></MONITOR_MESSAGES>", "base64"),
        (b"<MONITOR_MESSAGES><FOO/></MONITOR_MESSAGES>", "unknown element"),
        (b"<MONITOR_MESSAGES><TIMESTAMP>x</TIMESTAMP></MONITOR_MESSAGES>", "TIMESTAMP"),
        (
            f"<MONITOR_MESSAGES><SYSTEM_HOST>{b64('A = [')}</SYSTEM_HOST></MONITOR_MESSAGES>".encode(),
            "template",
        ),
        (b" " * (MAX_REPLY_BYTES + 1), "limit"),
    ],
)
def test_bad_replies_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(ReplyError, match=why):
        parse(data)
