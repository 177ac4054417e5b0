"""Outside XML: no DTD, no entity, bounded size, the expected root."""

from __future__ import annotations

import pytest

from onemon import safexml

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<R>&lol2;</R>"""
EXTERNAL = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><R>&x;</R>'


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (LAUGHS, "DTDs"),
        (EXTERNAL, "DTDs"),
        (b"<!DOCTYPE R><R/>", "DTDs"),
        (b"<R>&undefined;</R>", "malformed XML"),
        (b"<R>", "malformed XML"),
        (b"<OTHER/>", "not <R>"),
        (b"<R>" + b"x" * 100 + b"</R>", "limit 64"),
    ],
)
def test_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(safexml.UnsafeXmlError, match=why):
        safexml.parse(data, 64 if why == "limit 64" else 4096, "R")


def test_plain_document_parses() -> None:
    root = safexml.parse(b"<R><A>1</A><A>&amp;2</A></R>", 4096, "R")
    assert [a.text for a in root.findall("A")] == ["1", "&2"]
    assert safexml.parse(b"<ANY/>", 4096).tag == "ANY"
