"""Whole-family writing: the template fast path and the one-by-one path give the same samples."""

from __future__ import annotations

from typing import Any

import pytest

from onemon.collector.metrics.columns import Templates, column
from onemon.collector.metrics.sink import Sink
from onemon.collector.metrics.text import Conv, kib, ns, plain
from onemon.collector.model import VmState

NAME = "opennebula_vm_net_rx_bytes_total"


def lines(sink: Sink) -> list[str]:
    """The family's sample lines, sorted."""
    body, _ = sink.body()
    return sorted(line for line in body.decode().splitlines() if not line.startswith("#"))


def write(values: list[Any], conv: Conv = plain, templates: Templates | None = None) -> Sink:
    """One column of ``values`` labelled a, b, c…; the sink."""
    sink = Sink(templates)
    tags = [f'{{x="{chr(97 + i)}"}}' for i in range(len(values))]
    column(sink, NAME, tags, values, conv)
    return sink


def expected(values: list[str | None]) -> list[str]:
    """The lines for these texts (None: no line)."""
    return sorted(
        f'{NAME}{{x="{chr(97 + i)}"}} {text}' for i, text in enumerate(values) if text is not None
    )


@pytest.mark.parametrize(
    ("values", "conv", "texts"),
    [
        ([1, 2, 3], plain, ["1", "2", "3"]),
        ([1, None, 3], plain, ["1", None, "3"]),
        ([None, None], plain, [None, None]),
        ([1.5, 2.0], plain, ["1.5", "2.0"]),
        ([1, 2.5], plain, ["1.0", "2.5"]),
        ([2, 3], kib, ["2048", "3072"]),
        ([1.5], kib, ["1536.0"]),
        ([1_500_000_000, 7], ns, ["1.500000000", "0.000000007"]),
        ([-1_500_000_000], ns, ["-1.5"]),
        ([VmState.ACTIVE, VmState.POWEROFF], plain, ["3", "8"]),
        ([1, "2", None, "x", True], plain, ["1", "2", None, None, "1"]),
        ([1, 10**30], plain, ["1", "1e+30"]),
        ([1, 10**400], plain, ["1", None]),
        ([1.5, float("nan"), float("inf")], plain, ["1.5", None, None]),
        ([1e306], kib, [None]),
        (["250000000"], ns, ["0.25"]),
        ([[1], {"a": 1}, object()], plain, [None, None, None]),
    ],
)
def test_column(values: list[Any], conv: Conv, texts: list[str | None]) -> None:
    sink = write(values, conv)
    assert lines(sink) == expected(texts)
    assert sink.skipped == sum(v is not None for v in values) - sum(t is not None for t in texts)


def test_templates_are_reused_until_the_label_sets_change() -> None:
    templates = Templates()
    tags = ['{x="a"}', '{x="b"}']
    for values in ([1, 2], [3, 4]):
        templates.rotate()
        sink = Sink(templates)
        column(sink, NAME, tags, values, plain)
    first = templates.get(NAME, tags, "%d")
    assert templates.get(NAME, list(tags), "%d") is first  # equal lists: same template
    templates.rotate()
    sink = Sink(templates)
    column(sink, NAME, tags[::-1], [5, 6], plain)
    assert lines(sink) == [f'{NAME}{{x="a"}} 6', f'{NAME}{{x="b"}} 5']
    templates.rotate()
    templates.rotate()
    assert templates.get(NAME, tags, "%d") is not first  # dropped after a render without it


def test_percent_in_a_label_value_is_not_a_placeholder() -> None:
    sink = Sink()
    column(sink, NAME, ['{x="100% %s %d %%"}'], [7], plain)
    assert lines(sink) == [f'{NAME}{{x="100% %s %d %%"}} 7']
