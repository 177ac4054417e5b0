"""Host names and driver names as oned accepts them (``PoolObjectSQL::name_is_valid``, HostPool)."""

from __future__ import annotations

import re

INVALID_NAME_CHARS = "&|:\\\";/'#{}$<>"
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])")
_DRIVER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a host, or None when it can."""
    if not name:
        return "Invalid NAME, it cannot be empty"
    for char in name:
        if char in INVALID_NAME_CHARS or not char.isprintable() or char.isspace():
            shown = char if char.isprintable() else f"\\x{ord(char):02x}"
            return f"Invalid NAME, char '{shown}' is not allowed"
    if len(name) > 128:
        return "Invalid NAME, max length is 128 chars"
    if _HOSTNAME.fullmatch(name) is None:
        return "Invalid NAME, it must be a host name (2-63 letters, digits, '.', '_', '-')"
    return None


def driver_problem(label: str, value: str) -> str | None:
    """Why ``value`` cannot name a driver (``IM_MAD_NAME``/``VMM_MAD_NAME``), or None."""
    if not value:
        return f"{label} cannot be empty."
    if _DRIVER.fullmatch(value) is None:
        return f"{label} must be 1-64 letters, digits, '.', '_' or '-'."
    return None
