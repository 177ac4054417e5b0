"""Typed decode errors: every failure carries a reason code the collector counts."""

from __future__ import annotations

from typing import Final

REASONS: Final = frozenset(
    {
        "too_large",  # input, decompressed payload or field over its bound
        "truncated",  # input ends before the structure does
        "trailing_bytes",  # bytes left after a complete envelope
        "malformed",  # not well-formed CBOR / not a line of the expected shape
        "bad_version",  # envelope version this build does not speak
        "bad_field",  # an envelope field of the wrong type or out of range
        "bad_type",  # unknown message type
        "bad_status",  # unknown status
        "bad_key",  # key id unknown, or not the key this host must use
        "bad_mac",  # HMAC tag does not match
        "bad_compression",  # zlib stream invalid
        "bad_encoding",  # base64 invalid, text not decodable
        "bad_payload",  # payload structure not a template (types, nesting depth)
        "bad_template",  # template text does not parse
    }
)
"""Every reason a decoder may give; the collector exports one counter per reason."""


class WireError(ValueError):
    """Input rejected by a decoder; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TemplateError(WireError):
    """Template text or data that OpenNebula's template language cannot express."""

    def __init__(self, detail: str, line: int = 0, column: int = 0) -> None:
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line else ""
        super().__init__("bad_template", where + detail)
