"""Text-format pieces: sample values and label values, made safe (exposition format 0.0.4)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

MAX_LABEL_CHARS: Final = 128
"""Longest label value emitted; longer ones are cut and end with :data:`TRUNCATED`."""

TRUNCATED: Final = "…"
"""Marker ending a truncated label value."""

BIG: Final = 2**63
"""Ints below this (in magnitude) are written exactly; larger ones as floats."""
_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
"""Control characters (other than tab and newline) and lone surrogates: replaced by U+FFFD."""

Conv = Callable[[object], "str | None"]
"""A value converter: template value in, sample text out, None when it cannot be a sample."""


def number(value: object) -> int | float | None:
    """``value`` as a finite number (int, float, or numeric text), else None."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        parsed = float(value)
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def fmt(value: int | float) -> str | None:
    """Sample text: ints exact below 2**63, floats shortest round-trip; None if not finite."""
    if type(value) is int:
        if -BIG < value < BIG:
            return str(value)
        try:
            value = float(value)
        except OverflowError:
            return None
    return repr(value) if value - value == 0 else None


def plain(value: object) -> str | None:
    """A number's sample text, unscaled."""
    if type(value) is int and -BIG < value < BIG:
        return str(value)
    if type(value) is float and value - value == 0:
        return repr(value)
    found = number(value)
    return None if found is None else fmt(found)


def _scaled(factor: int) -> Conv:
    """A converter multiplying by ``factor``."""

    def convert(value: object) -> str | None:
        """``value`` times ``factor``."""
        found = value if type(value) is int else number(value)
        return None if found is None else fmt(found * factor)

    return convert


def ns(value: object) -> str | None:
    """Nanoseconds to seconds."""
    found = number(value)
    if found is None:
        return None
    try:
        return fmt(found / 1e9)
    except OverflowError:  # an int beyond float range
        return None


def timestamp(value: object) -> str | None:
    """Seconds since the epoch, to the millisecond (Prometheus's own precision)."""
    found = number(value)
    if found is None or type(found) is int:
        return None if found is None else fmt(found)
    return f"{found:.3f}"


kib: Final = _scaled(1024)
"""KB/KiB to bytes."""
mib: Final = _scaled(2**20)
"""MB to bytes."""
mhz: Final = _scaled(1_000_000)
"""MHz to hertz."""


def label_value(value: object) -> str:
    """Any value as a label value: valid UTF-8, bounded, escaped, ready to go between quotes."""
    if type(value) is int and -BIG < value < BIG:
        return str(value)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:  # a huge int, or a broken __str__
            text = "\ufffd"
    if len(text) > MAX_LABEL_CHARS:
        text = text[: MAX_LABEL_CHARS - len(TRUNCATED)] + TRUNCATED
    text = _UNSAFE.sub("\ufffd", text)
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return text


def help_text(text: str) -> str:
    """HELP text escaped (backslash and newline)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# Hot loops write an int below BIG inline, as ``raw * m`` (or ``raw / 1e9`` when m is 0), instead
# of calling its converter; converters not listed here are always called.
MULTIPLIER: Final[dict[Conv, int]] = {
    plain: 1, timestamp: 1, kib: 1024, mib: 2**20, mhz: 1_000_000, ns: 0,
}  # fmt: skip
"""Each scaling converter's integer factor (0: nanoseconds to seconds)."""

FLOAT_SPEC: Final[dict[Conv, str]] = {timestamp: "%.3f"}
"""How a converter's floats are written on the template path (else ``%r``, shortest exact)."""
