"""Writing OpenNebula-style XML: bare fixed fields, CDATA template values, no whitespace."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from onemon.front.rpc.envelope import xml_text
from onemon.wire.model import Template

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def escape(value: Any) -> str:
    """Text content: XML-safe characters, ``& < >`` escaped."""
    text = xml_text(str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cdata(value: Any) -> str:
    """A CDATA section (``]]>`` split across two sections, as it cannot appear in one)."""
    text = xml_text(scalar_text(value))
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def element(tag: str, inner: str = "") -> str:
    """``<tag>inner</tag>`` (inner is already XML)."""
    return f"<{tag}>{inner}</{tag}>"


def bare(tag: str, value: Any) -> str:
    """A fixed field: escaped text, no CDATA."""
    return element(tag, escape(value))


def cdata_element(tag: str, value: Any) -> str:
    """A template value: CDATA."""
    return element(tag, cdata(value))


def ids(tag: str, values: Iterable[int]) -> str:
    """An ID set: ``<VMS><ID>3</ID></VMS>``."""
    return element(tag, "".join(bare("ID", v) for v in values))


def valid_name(name: str) -> bool:
    """True when ``name`` can be an element name."""
    return _NAME.fullmatch(name) is not None


def scalar_text(value: Any) -> str:
    """A template scalar as OpenNebula writes it (integral floats without ``.0``)."""
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value) if math.isfinite(value) else ""
    if value is None:
        return ""
    return str(value)


def integral(value: Any) -> str | None:
    """An ``xs:integer`` text (rounded), or None when ``value`` is no finite number."""
    number = _finite(value)
    return None if number is None else str(round(number))


def decimal(value: Any) -> str | None:
    """An ``xs:decimal`` text (no exponent), or None when ``value`` is no finite number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = _finite(value)
    if number is None:
        return None
    if number.is_integer():
        return str(int(number))
    text = f"{number:.6f}".rstrip("0")
    return text if text not in ("-0.", "0.") else "0"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def template(tag: str, attributes: Template) -> str:
    """A template: children sorted by name, repeated names repeated, vectors nested, CDATA."""
    return element(tag, template_body(attributes))


def template_body(attributes: Template) -> str:
    """The children of a template element."""
    parts: list[str] = []
    for name in sorted(attributes):
        if not valid_name(name):
            continue
        value = attributes[name]
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                parts.append(template(name, item))
            elif not isinstance(item, list):
                parts.append(cdata_element(name, item))
    return "".join(parts)
