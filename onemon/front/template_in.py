"""Templates given to the API, as ``KEY="VALUE"`` text or ``<TEMPLATE>`` XML (parse_str_or_xml)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from onemon.wire import template as template_text
from onemon.wire.errors import WireError
from onemon.wire.model import Template, add

MAX_TEMPLATE_CHARS = 256 * 1024
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z0-9_]+")


class TemplateSyntaxError(ValueError):
    """The template does not parse (the message says where)."""


def parse(text: str) -> Template:
    """The attributes of ``text``, XML when it starts with ``<``, template language otherwise."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateSyntaxError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    if text.lstrip().startswith("<"):
        return _parse_xml(text)
    try:
        return template_text.parse(text)
    except WireError as exc:
        raise TemplateSyntaxError(exc.detail or str(exc)) from None


def _parse_xml(text: str) -> Template:
    if _DTD.search(text):
        raise TemplateSyntaxError("document type declarations are not allowed")
    try:
        root = ET.fromstring(text)  # noqa: S314 - bounded size, no DTD (checked above)
    except ET.ParseError as exc:
        raise TemplateSyntaxError(f"XML: {exc}") from None
    out: Template = {}
    for child in root:
        add(out, _name(child.tag), _value(child))
    return out


def _value(node: ET.Element) -> Any:
    """A scalar, or a vector of scalars (vectors do not nest)."""
    children = list(node)
    if not children:
        return node.text or ""
    vector: dict[str, Any] = {}
    for child in children:
        if len(child):
            raise TemplateSyntaxError(f"{node.tag[:64]}: vectors cannot nest")
        vector.setdefault(_name(child.tag), child.text or "")
    return vector


def _name(tag: str) -> str:
    if _NAME.fullmatch(tag) is None:
        raise TemplateSyntaxError(f"{tag[:64]!r} is not an attribute name")
    return tag.upper()
