"""The START_MONITOR reply: ``<MONITOR_MESSAGES>`` with each group's template in base64 (§1.7).

Read strictly (bounded size, no DTD or entities, every element base64 of a template); as
onemonitord, only the first element of each type counts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from onemon import safexml
from onemon.wire import template
from onemon.wire.errors import WireError
from onemon.wire.model import Template

MAX_REPLY_BYTES = 16 * 1024 * 1024
TYPES = ("SYSTEM_HOST", "MONITOR_HOST", "STATE_VM", "EXEC_VM", "MONITOR_VM", "BEACON_HOST")


class ReplyError(ValueError):
    """A start reply that is not a well-formed ``<MONITOR_MESSAGES>``."""


@dataclass(frozen=True)
class StartReply:
    """The agent's first report."""

    timestamp: int
    messages: dict[str, Template] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The probe tree VERSION the node reports (empty when none)."""
        return str(self.messages.get("SYSTEM_HOST", {}).get("VERSION", ""))


def _root(data: bytes) -> ET.Element:
    if len(data) > MAX_REPLY_BYTES:
        raise ReplyError(f"reply of {len(data)} bytes, limit {MAX_REPLY_BYTES}")
    try:
        return safexml.parse(data.strip(), MAX_REPLY_BYTES, "MONITOR_MESSAGES")
    except safexml.UnsafeXmlError as exc:
        raise ReplyError(f"reply: {exc}") from None


def parse(data: bytes) -> StartReply:
    """Decode a start reply; ReplyError when it is not one."""
    root = _root(data)
    messages: dict[str, Template] = {}
    timestamp = 0
    for element in root:
        text = (element.text or "").strip()
        if element.tag == "TIMESTAMP":
            try:
                timestamp = int(text)
            except ValueError:
                raise ReplyError(f"TIMESTAMP {text!r} is not an integer") from None
            continue
        if element.tag not in TYPES:
            raise ReplyError(f"unknown element <{element.tag}>")
        if element.tag in messages:
            continue  # onemonitord reads the first of each type (vm/snapshot's is ignored)
        try:
            body = base64.b64decode(text, validate=True).decode()
            messages[element.tag] = template.parse(body)
        except (binascii.Error, UnicodeDecodeError, WireError) as exc:
            raise ReplyError(f"<{element.tag}> is not a base64 template: {exc}") from None
    return StartReply(timestamp, messages)
