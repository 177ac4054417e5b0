"""XML from outside parsed without DTDs or entities (no billion laughs, no external fetch).

Stdlib only, shared by the agent (OpenNebula's MONITOR_CONFIGURATION) and the front (the IM
driver's replies). expat builds an ElementTree; any DOCTYPE, entity declaration or external
entity reference is refused before it can take effect, and the input size is bounded.
"""

from __future__ import annotations

from typing import NoReturn
from xml.etree import ElementTree as ET
from xml.parsers import expat


class UnsafeXmlError(ValueError):
    """Input refused: too large, malformed, or declaring a DTD or entities."""


def _refuse(*_: object) -> NoReturn:
    """Expat handler for DTDs and entity declarations: never accepted."""
    raise UnsafeXmlError("DTDs and entity declarations are not accepted")


def parse(data: bytes, limit: int, root: str | None = None) -> ET.Element:
    """The element tree of ``data`` (at most ``limit`` bytes; root element ``root`` if given)."""
    if len(data) > limit:
        raise UnsafeXmlError(f"{len(data)} bytes, limit {limit}")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise UnsafeXmlError(f"malformed XML: {exc}") from None
    element = builder.close()
    if root is not None and element.tag != root:
        raise UnsafeXmlError(f"root element is <{element.tag}>, not <{root}>")
    return element
