"""A group's output as a Template, with parse errors blamed on the probe that wrote them."""

from __future__ import annotations

from dataclasses import dataclass, field

from onemon.agent.exec.runner import GroupResult
from onemon.wire import template
from onemon.wire.errors import WireError
from onemon.wire.model import Template


@dataclass(frozen=True, slots=True)
class Parsed:
    """A group's outcome as a Template, or the FAILURE text that replaces it."""

    ok: bool
    template: Template = field(default_factory=dict)
    error: str = ""


def _blame(result: GroupResult) -> str | None:
    """Error text naming the probe at fault when the whole output does not parse, if any is."""
    for span in result.spans:
        try:
            template.parse(result.output[span.start : span.end])
        except WireError as exc:
            return f"Error parsing output of {span.name}: {exc.detail or exc}"
    for span in result.spans[:-1]:
        if span.end > span.start and not result.output.endswith("\n", span.start, span.end):
            return f"Error parsing output of {span.name}: its last line has no newline"
    return None


def to_template(result: GroupResult, group: str) -> Parsed:
    """Parse a group's output (not for beacons, whose output is no template).

    A parse error is a FAILURE ``Error parsing output of <probe>: …`` naming the first probe
    whose own output does not parse (or that joined the next probe's first line to its last);
    when no probe alone is at fault, ``… of <group>: …``.
    """
    if not result.ok:
        return Parsed(False, error=result.error)
    try:
        return Parsed(True, template.parse(result.output))
    except WireError as exc:
        whole = f"Error parsing output of {group}: {exc.detail or exc}"
        return Parsed(False, error=_blame(result) or whole)
