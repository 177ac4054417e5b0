"""Writing a whole family at once: label sets make a cached line template, values fill it in C."""

from __future__ import annotations

import math
import operator
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, Final

from onemon.collector.model import HostState, LcmState, VmState

from .text import BIG, MULTIPLIER, Conv

if TYPE_CHECKING:
    from .sink import Sink

_INTS: Final = frozenset({int, HostState, VmState, LcmState})
"""Types written as ints on the fast path (the model's IntEnums; never bool)."""
_NUMBERS: Final = _INTS | {float}
_NONE: Final = type(None)


class Templates:
    """Per family and value kind, the label sets last used and the encoded template they make."""

    __slots__ = ("_cur", "_old")

    def __init__(self) -> None:
        self._cur: dict[tuple[str, str], tuple[list[str], bytes]] = {}
        self._old: dict[tuple[str, str], tuple[list[str], bytes]] = {}

    def rotate(self) -> None:
        """Start a render: templates not used since the previous rotation are dropped."""
        self._old, self._cur = self._cur, {}

    def get(self, name: str, tags: list[str], spec: str) -> bytes:
        """Family ``name``'s lines for these label sets, in order, each ending in ``spec``."""
        key = (name, spec)
        entry = self._cur.get(key) or self._old.get(key)
        if entry is None or entry[0] != tags:  # same label strings: a pointer compare each
            text = "".join([f"{name}{tag.replace('%', '%%')} {spec}\n" for tag in tags])
            entry = (tags, text.encode())
        self._cur[key] = entry
        return entry[1]


def _numbers(values: list[Any], kinds: set[type], mul: int) -> tuple[list[Any], str] | None:
    """The values scaled and their ``%`` spec, when all are ints below BIG or finite; else None."""
    if mul < 0:
        return None
    if kinds <= _INTS:
        if not -BIG < min(values) <= max(values) < BIG:
            return None
        if mul == 0:
            return list(map(operator.truediv, values, repeat(1e9))), "%r"
        if mul == 1:
            return values, "%d"
        return list(map(operator.mul, values, repeat(mul))), "%d"
    if kinds <= _NUMBERS:
        if kinds != {float}:
            values = list(map(float, values))
        if mul == 0:
            values = list(map(operator.truediv, values, repeat(1e9)))
        elif mul != 1:
            values = list(map(operator.mul, values, repeat(float(mul))))
        try:
            return (values, "%r") if math.isfinite(math.fsum(values)) else None
        except OverflowError:
            return None
    return None


def column(sink: Sink, name: str, tags: list[str], values: list[Any], conv: Conv) -> None:
    """Emit family ``name``: ``values[i]`` labelled ``tags[i]`` (None: absent)."""
    kinds = set(map(type, values))
    if _NONE in kinds:
        kinds.discard(_NONE)
        if not kinds:
            return
        present = list(map(operator.is_not, values, repeat(None)))
        tags, values = list(compress(tags, present)), list(compress(values, present))
    if not values:
        return
    found = _numbers(values, kinds, MULTIPLIER.get(conv, -1))
    if found is not None:
        numbers, spec = found
        sink.chunk(name, sink.templates.get(name, tags, spec) % tuple(numbers))
        return
    add = sink.out(name).add
    for tag, raw in zip(tags, values, strict=True):  # text, big ints, odd types: one by one
        try:
            text = conv(raw)
        except Exception:  # a value whose own methods fail
            text = None
        if text is None:
            sink.skipped += 1
        else:
            add(f"{name}{tag} {text}\n")
