"""Shared by the producers: tolerant template reads, writing samples one by one or by column."""

from __future__ import annotations

from itertools import repeat
from typing import Any

from .columns import column
from .sink import Out, Sink
from .text import Conv

Fields = tuple[tuple[str, str, Conv], ...]
"""Family name, template key, converter."""


class Rows:
    """Sub-objects (devices, datastores, NUMA nodes) of many objects: label set and vector."""

    __slots__ = ("tags", "vecs")

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.vecs: list[dict[str, Any]] = []

    def extend(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Add ``(label set, vector)`` pairs."""
        for tag, vec in items:
            self.tags.append(tag)
            self.vecs.append(vec)

    def write(self, sink: Sink, fields: Fields) -> None:
        """One column per field."""
        for name, key, conv in fields:
            column(sink, name, self.tags, list(map(dict.get, self.vecs, repeat(key))), conv)


def scalar(template: Any, key: str) -> Any:
    """The value of ``key`` (the first one if repeated), or None."""
    if not isinstance(template, dict):
        return None
    found = template.get(key)
    if isinstance(found, list):
        return found[0] if found else None
    return found


def vectors(template: Any, key: str) -> list[dict[str, Any]]:
    """Every vector (dict) under ``key``, in order; anything else is ignored."""
    return as_vectors(template.get(key)) if isinstance(template, dict) else []


def as_vectors(value: Any) -> list[dict[str, Any]]:
    """A vector attribute's value as a list of vectors (anything not a vector is dropped)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def distinct(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """``(labels, vector)`` pairs with a repeated label set dropped (first one wins)."""
    if len(items) < 2:
        return items
    seen: set[str] = set()
    kept = []
    for labels, vec in items:
        if labels not in seen:
            seen.add(labels)
            kept.append((labels, vec))
    return kept


def put(out: Out, tag: str, raw: Any, conv: Conv) -> int:
    """Emit ``raw`` converted unless absent; 1 if it was present but skipped, else 0."""
    if raw is None:
        return 0
    text = conv(raw)
    if text is None:
        return 1
    out.add(f"{out.name}{tag} {text}\n")
    return 0


def line(out: Out, tag: str, value: int | str) -> None:
    """Emit a value known to be valid (a count, an int field)."""
    out.add(f"{out.name}{tag} {value}\n")
