"""Validate documents against OpenNebula's XSDs (they need the namespace oned never sends)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

XSD_DIR = Path(__file__).resolve().parent / "xsd"
NS = "http://opennebula.org/XMLSchema"


@cache
def schema(name: str) -> etree.XMLSchema:
    """The compiled schema ``<name>.xsd``."""
    return etree.XMLSchema(etree.parse(str(XSD_DIR / f"{name}.xsd")))


def namespaced(document: str) -> etree._Element:
    """``document`` with every element moved into the OpenNebula namespace."""
    root = etree.fromstring(document.encode())
    for node in root.iter():
        if isinstance(node.tag, str):
            node.tag = f"{{{NS}}}{etree.QName(node).localname}"
    return root


def errors(document: str, name: str) -> list[str]:
    """Schema errors of ``document`` against ``<name>.xsd`` (empty when valid)."""
    xsd = schema(name)
    if xsd.validate(namespaced(document)):
        return []
    return [f"line {e.line}: {e.message}" for e in xsd.error_log]


def host_record_errors(host_document: str, record: etree._Element) -> list[str]:
    """Errors of a host MONITORING record, validated in place of a HOST's MONITORING."""
    host = etree.fromstring(host_document.encode())
    old = host.find("MONITORING")
    assert old is not None
    host.replace(old, record)
    return errors(etree.tostring(host, encoding="unicode"), "host")
