"""The one message model both codecs map onto (reference §1.1, §1.2)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Scalar: TypeAlias = str | int | float
"""A single template value: OpenNebula sends text, the native wire sends numbers as numbers."""

Template: TypeAlias = dict[str, Any]
"""Attributes by upper-case name. A value is a Scalar, a vector (dict of Scalar, or of a nested
Template for ``MONITOR``), or a list of those when the name repeats (``VM``, ``DS``, ``PCI``…)."""


class MessageType(enum.IntEnum):
    """Agent → front-end message types, numbered as OpenNebula's MonitorDriverMessages enum."""

    MONITOR_VM = 3
    BEACON_HOST = 4
    MONITOR_HOST = 5
    SYSTEM_HOST = 6
    STATE_VM = 7
    EXEC_VM = 11


class Status(enum.IntEnum):
    """Outcome of the probe group that produced a message."""

    SUCCESS = 0
    FAILURE = 1


TCP_TYPES = frozenset({MessageType.STATE_VM})
"""Types OpenNebula's agent sends over TCP; the rest travel as UDP datagrams."""


@dataclass(frozen=True, slots=True)
class Message:
    """One report from a host: what it is, whether it worked, and its data."""

    type: MessageType
    status: Status
    host_id: int
    timestamp: float
    payload: Template = field(default_factory=dict)
    error: str = ""
    """For FAILURE: the text OpenNebula carries as payload (``Error executing <probe>: …``)."""

    @property
    def ok(self) -> bool:
        """True when the probe group succeeded."""
        return self.status is Status.SUCCESS


def values(template: Template, name: str) -> list[Any]:
    """All values of ``name`` in order: a repeated attribute is a list, a single one is wrapped."""
    value = template.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def add(template: Template, name: str, value: Any) -> None:
    """Append ``value`` under ``name``, turning a single value into a repeated one."""
    current = template.get(name)
    if current is None:
        template[name] = value
    elif isinstance(current, list):
        current.append(value)
    else:
        template[name] = [current, value]


def first(template: Template, name: str, default: Any = None) -> Any:
    """The first value of ``name``, or ``default``."""
    found = values(template, name)
    return found[0] if found else default
