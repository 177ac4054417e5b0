"""to_template: group output parsed by the wire template parser, errors blamed on a probe."""

from __future__ import annotations

from pathlib import Path

from onemon.agent.exec import GroupResult, discover, run_group, to_template

FIXTURES = Path(__file__).parents[2] / "fixtures" / "probes"
ARGS = ["kvm", "0", "h"]


async def test_good_output_becomes_a_template() -> None:
    result = await run_group(discover(FIXTURES, "kvm", "order"), ARGS, b"")
    parsed = to_template(result, "order")
    assert parsed.ok
    assert parsed.template == {"RAN": ["10_b", "2_a", "B_upper", "a_lower", "z_link"]}


async def test_parse_error_names_the_probe() -> None:
    result = await run_group(discover(FIXTURES, "kvm", "badtemplate"), ARGS, b"")
    assert result.ok
    parsed = to_template(result, "host/system")
    assert not parsed.ok
    assert parsed.error.startswith("Error parsing output of 2_bad: ")
    assert "unterminated vector B" in parsed.error


async def test_missing_final_newline_names_the_probe() -> None:
    result = await run_group(discover(FIXTURES, "kvm", "nonewline"), ARGS, b"")
    parsed = to_template(result, "host/system")
    assert parsed.error == "Error parsing output of 1_cut: its last line has no newline"


def test_unattributable_error_names_the_group() -> None:
    result = GroupResult(ok=True, output="A = [ X = 1\n")
    parsed = to_template(result, "host/monitor")
    assert parsed.error.startswith("Error parsing output of host/monitor: ")


def test_failed_group_keeps_its_error() -> None:
    result = GroupResult(ok=False, error="Error executing x: y", failed="x")
    assert to_template(result, "vm/status").error == "Error executing x: y"
