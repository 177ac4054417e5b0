"""Writing a whole family at once: label sets make a cached line template, values fill it in C."""

from __future__ import annotations

import math
import operator
from itertools import chain, compress, repeat
from typing import TYPE_CHECKING, Any, Final

from onemon.collector.model import HostState, LcmState, VmState

from .text import BIG, FLOAT_SPEC, MULTIPLIER, Conv

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


def _numbers(
    values: list[Any], kinds: set[type], mul: int, spec: str
) -> tuple[list[Any], str] | None:
    """Values scaled, and their ``%`` spec (``spec`` for floats): all ints below BIG, or finite."""
    if mul < 0:
        return None
    if kinds <= _INTS:
        low = min(values)
        if not -BIG < low <= max(values) < BIG:
            return None
        if mul == 0 and low >= 0:  # exact decimal seconds, and 5x faster than float repr
            return list(chain.from_iterable(map(divmod, values, repeat(10**9)))), "%d.%09d"
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
            return (values, spec) if math.isfinite(math.fsum(values)) else None
        except OverflowError:
            return None
    return None


def column(sink: Sink, name: str, tags: list[str], values: list[Any], conv: Conv) -> None:
    """Emit family ``name``: ``values[i]`` labelled ``tags[i]`` (None: absent)."""
    kinds = set(map(type, values))
    rest: list[tuple[str, Any]] = []
    if not kinds <= _NUMBERS:  # absent values, text, odd types: set aside all but the numbers
        numeric = list(map(_NUMBERS.__contains__, map(type, values)))
        if kinds - _NUMBERS != {_NONE}:
            others = compress(zip(tags, values, strict=True), map(operator.not_, numeric))
            rest = [(tag, value) for tag, value in others if value is not None]
        tags, values = list(compress(tags, numeric)), list(compress(values, numeric))
        kinds &= _NUMBERS
    if values:
        found = _numbers(values, kinds, MULTIPLIER.get(conv, -1), FLOAT_SPEC.get(conv, "%r"))
        if found is not None:
            numbers, spec = found
            sink.chunk(name, sink.templates.get(name, tags, spec) % tuple(numbers))
        else:
            rest += zip(tags, values, strict=True)
    if rest:
        _one_by_one(sink, name, rest, conv)


def _one_by_one(sink: Sink, name: str, rest: list[tuple[str, Any]], conv: Conv) -> None:
    """The values the template path cannot take (text, big ints, not finite, odd types)."""
    add = sink.out(name).add
    for tag, raw in rest:
        try:
            text = conv(raw)
        except Exception:  # a value whose own methods fail
            text = None
        if text is None:
            sink.skipped += 1
        else:
            add(f"{name}{tag} {text}\n")
