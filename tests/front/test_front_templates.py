"""Templates given to one.host.update: OpenNebula's template language or XML (as pyone sends)."""

from __future__ import annotations

import pytest
from pyone.util import cast2one

from onemon.front.template_in import TemplateSyntaxError, parse


def test_attribute_text() -> None:
    assert parse('LABELS="a,b"\nNOTE = hi\nPCI = [ A = "1", B = 2 ]') == {
        "LABELS": "a,b", "NOTE": "hi", "PCI": {"A": "1", "B": "2"},
    }  # fmt: skip


def test_what_pyone_sends() -> None:
    flat = cast2one({"LABELS": "gpu", "NOTE": "x"})
    assert parse(flat) == {"LABELS": "gpu", "NOTE": "x"}
    nested = cast2one({"TEMPLATE": {"LABELS": "a", "PCI": [{"X": "1"}, {"X": "2"}]}})
    assert parse(nested) == {"LABELS": "a", "PCI": [{"X": "1"}, {"X": "2"}]}


@pytest.mark.parametrize(
    "text",
    ['A="unterminated', "<T><A>", "<!DOCTYPE t><T/>", "<T><a-b>1</a-b></T>",
     "<T><V><W><X>1</X></W></V></T>", "A=1\n" * 70_000],
)  # fmt: skip
def test_refused(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse(text)
