"""Human output: aligned tables (colour on a terminal only), sizes, times, ``--watch``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

COLOURS = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}


class Cell(str):
    """A cell with a colour name (shown only on a terminal)."""

    colour: str = ""

    def __new__(cls, text: object, colour: str = "") -> Cell:
        """A coloured cell."""
        cell = super().__new__(cls, str(text))
        cell.colour = colour
        return cell


def paint(text: str, colour: str, out: TextIO) -> str:
    """``text`` in ``colour`` when ``out`` is a terminal."""
    if not colour or not out.isatty():
        return text
    return f"\033[{COLOURS[colour]}m{text}\033[0m"


def table(
    rows: Sequence[Sequence[object]], header: Sequence[str], out: TextIO | None = None
) -> str:
    """Rows aligned under their header (numbers right-aligned, header bold on a terminal)."""
    stream = out or sys.stdout
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_numeric(row[i]) for row in cells[1:]) and len(cells) > 1
               for i in range(len(header))]  # fmt: skip
    lines = []
    for n, row in enumerate([list(header), *rows]):
        parts = []
        for i, value in enumerate(row):
            text = str(value)
            padded = text.rjust(widths[i]) if numeric[i] and n else text.ljust(widths[i])
            colour = "bold" if n == 0 else getattr(value, "colour", "")
            parts.append(paint(padded, colour, stream))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).lstrip("-").isdigit()


def pairs(title: str, items: Sequence[tuple[str, object]], out: TextIO | None = None) -> str:
    """A ``onehost show``-style section: a bold title, then aligned ``KEY : value`` lines."""
    stream = out or sys.stdout
    width = max((len(k) for k, _ in items), default=0)
    lines = [paint(title, "bold", stream)]
    lines += [f"{key.ljust(width)} : {value}" for key, value in items]
    return "\n".join(lines)


def size_kb(kb: float) -> str:
    """KB as the CLI shows memory: ``512M``, ``15.5G``."""
    for unit, scale in (("T", 1 << 30), ("G", 1 << 20), ("M", 1 << 10)):
        if kb >= scale:
            return f"{kb / scale:.1f}{unit}".replace(".0" + unit, unit)
    return f"{kb:.0f}K"


def size_bytes(count: float) -> str:
    """Bytes as ``1.5M`` and so on."""
    return size_kb(count / 1024)


def when(ts: float) -> str:
    """An epoch time as local ``MM/DD HH:MM:SS`` (``-`` when unset)."""
    return time.strftime("%m/%d %H:%M:%S", time.localtime(ts)) if ts > 0 else "-"


def watch(render: Callable[[], str], interval: float, count: int | None, out: TextIO) -> None:
    """Print ``render()`` every ``interval`` s (clearing a terminal) until Ctrl-C or ``count``."""
    shown = 0
    try:
        while count is None or shown < count:
            text = render()
            if out.isatty():
                out.write("\033[H\033[2J")
            out.write(text + "\n")
            out.flush()
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
