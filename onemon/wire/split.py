"""Split a report about many VMs into self-contained messages that each fit a datagram."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from onemon.wire.limits import DEFAULT_DATAGRAM_BUDGET, MAX_UDP_PAYLOAD
from onemon.wire.model import Message, values

SPLIT_ATTRIBUTE = "VM"
"""The repeated attribute a report is cut along; every other attribute is copied to each part."""


@dataclass(frozen=True)
class Split:
    """Parts that fit the budget (for UDP) and parts that cannot (send over TCP)."""

    datagrams: list[Message] = field(default_factory=list)
    oversize: list[Message] = field(default_factory=list)


def split(
    message: Message,
    encode: Callable[[Message], bytes],
    budget: int = DEFAULT_DATAGRAM_BUDGET,
) -> Split:
    """Cut ``message`` along its VM records so each encoded part is at most ``budget`` bytes.

    ``encode`` must size a part as the sender will (for the native wire: the largest sequence
    number). A single record that alone exceeds the budget comes back in ``oversize``; so does a
    message with nothing to cut that is too large.
    """
    if not 0 < budget <= MAX_UDP_PAYLOAD:
        raise ValueError(f"budget must be 1..{MAX_UDP_PAYLOAD}")
    whole = encode(message)
    if len(whole) <= budget:
        return Split([message])
    records = values(message.payload, SPLIT_ATTRIBUTE)
    if not records or not message.ok:
        return Split(oversize=[message])
    result = Split()
    start, hint = 0, 1
    while start < len(records):
        end = _largest_fit(message, records, start, hint, encode, budget)
        if end == start:
            result.oversize.append(_with_records(message, records[start : start + 1]))
            start += 1
            continue
        result.datagrams.append(_with_records(message, records[start:end]))
        hint = end - start
        start = end
    return result


def _largest_fit(
    message: Message,
    records: list[object],
    start: int,
    hint: int,
    encode: Callable[[Message], bytes],
    budget: int,
) -> int:
    """The largest ``end`` such that records[start:end] fit.

    Starts from the previous part's size (records of one report are alike), gallops up while
    parts fit, then bisects between the last fit and the first misfit.
    """

    def fits(end: int) -> bool:
        return len(encode(_with_records(message, records[start:end]))) <= budget

    total = len(records)
    low, high = start, total  # low fits (or is start); everything above high is known not to
    step = max(1, hint)
    probe = min(start + step, total)
    while probe > low:
        if fits(probe):
            low = probe
            if probe == total:
                return total
            step = 1 if probe == start + hint else step * 2
            probe = min(probe + step, total)
        else:
            high = probe - 1
            break
    while low < high:  # bisect (low, high]
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _with_records(message: Message, records: list[object]) -> Message:
    payload = dict(message.payload)
    payload[SPLIT_ATTRIBUTE] = list(records)
    return dataclasses.replace(message, payload=payload)
