"""Where producers put sample lines, one list per declared family, joined in table order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from .columns import Templates
from .declared import METRICS
from .text import help_text

Add = Callable[[str], None]
"""Appends whole sample lines, ``name{labels} value\\n`` each, to its family."""

HEADERS: Final[dict[str, bytes]] = {
    m.name: f"# HELP {m.name} {help_text(m.help)}\n# TYPE {m.name} {m.kind}\n".encode()
    for m in METRICS
}
"""HELP and TYPE lines of every declared family."""


class Out(NamedTuple):
    """A declared family to write to: its appenders and its name (each line starts with it)."""

    add: Add
    name: str


class Sink:
    """Sample lines by family, as text lines or encoded chunks; only declared families exist."""

    __slots__ = ("_chunks", "_lines", "skipped", "templates")

    def __init__(self, templates: Templates | None = None) -> None:
        self.templates = templates if templates is not None else Templates()
        """Line templates kept between renders (see ``columns``)."""
        self._lines: dict[str, list[str]] = {m.name: [] for m in METRICS}
        self._chunks: dict[str, list[bytes]] = {m.name: [] for m in METRICS}
        self.skipped = 0
        """Values left out: not numeric, not finite, or their object unreadable."""

    def out(self, name: str) -> Out:
        """The family ``name``; KeyError if it is not declared."""
        return Out(self._lines[name].append, name)

    def chunk(self, name: str, data: bytes) -> None:
        """Add encoded sample lines to family ``name``; KeyError if it is not declared."""
        self._chunks[name].append(data)

    def body(self) -> tuple[bytes, int]:
        """The exposition body (families contiguous, in table order) and its sample count."""
        parts: list[bytes] = []
        samples = 0
        for name, lines in self._lines.items():
            chunks = self._chunks[name]
            if lines or chunks:
                samples += len(lines) + sum(chunk.count(b"\n") for chunk in chunks)
                parts.append(HEADERS[name])
                parts += chunks
                parts.append("".join(lines).encode())
        return b"".join(parts), samples
