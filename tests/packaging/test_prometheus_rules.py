"""packaging/prometheus: promtool checks the config and rules and runs the rules' unit tests.

Also, without promtool: every alert has a severity, a summary, a description and a ``for``; each
is tested both firing and not firing; every metric an alert reads is one the collector declares.
``metric_names`` is shared with the dashboard tests (tests/e2e/test_dashboards.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from onemon.collector.metrics.declared import BY_NAME

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "packaging" / "prometheus"
CONFIG = PROM / "prometheus.yml"
RULES = PROM / "onemon.rules.yml"
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))

SYNTHETIC = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
"""Series Prometheus itself attaches to every scrape target."""

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_CLAUSES = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_WORDS = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (bare identifiers that are not functions,
    keywords, label names in matchers/groupings, or inside strings and ranges)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _CLAUSES.sub(" ", text)
    names: set[str] = set()
    for match in _WORDS.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def undeclared(names: set[str]) -> set[str]:
    """Names neither declared in onemon/collector/metrics/declared.py nor Prometheus's own."""
    return {n for n in names if n not in BY_NAME and n not in SYNTHETIC}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> dict[str, str]:
    """Alert name → its rule's text (the lines from ``- alert:`` to the next rule or group)."""
    text = RULES.read_text()
    starts = list(re.finditer(r"^\s*- (?:alert|record|name): *(\S+)", text, re.MULTILINE))
    found: dict[str, str] = {}
    for i, match in enumerate(starts):
        if "- alert:" not in match.group(0):
            continue
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        found[match.group(1)] = text[match.start() : end]
    return found


def _expr(rule: str) -> str:
    """The ``expr:`` of a rule's text (one line, or a ``|`` block)."""
    match = re.search(r"^(\s*)expr: *(\|-?|>-?)?(.*)$", rule, re.MULTILINE)
    assert match is not None, rule
    if not match.group(2):
        return match.group(3)
    indent = len(match.group(1))
    block: list[str] = []
    for line in rule[match.end() + 1 :].splitlines():
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return "\n".join(block)


def test_metric_names_sees_metrics_not_functions_labels_or_durations() -> None:
    expr = (
        'sum by (instance, reason) (rate(onemon_messages_rejected_total{reason!~"a|b"}[5m]))'
        ' > 0.1 and on (instance) up{job=~"onemon.*"} == 0 unless onemon_store_up offset 5m'
        ' or label_replace(opennebula_host_state, "x", "$1", "one_host_id", "(.*)") > bool 1e3'
    )
    assert metric_names(expr) == {
        "onemon_messages_rejected_total",
        "up",
        "onemon_store_up",
        "opennebula_host_state",
    }
    assert metric_names('time() - x_seconds{a="$host"} / 100') == {"x_seconds"}
    assert metric_names("rate(m_total[$__rate_interval])") == {"m_total"}


def test_every_alert_has_severity_for_summary_and_description() -> None:
    alerts = _alerts()
    assert len(alerts) >= 10, alerts.keys()
    for name, rule in alerts.items():
        assert re.search(r"^\s*for: *\d+[smh]", rule, re.MULTILINE), f"{name}: no for:"
        severity = re.search(r"^\s*severity: *(\S+)", rule, re.MULTILINE)
        assert severity and severity.group(1) in {"critical", "warning", "info"}, name
        for annotation in ("summary", "description"):
            assert re.search(rf"^\s*{annotation}:", rule, re.MULTILINE), f"{name}: {annotation}"
        assert "{{ $labels." in rule or "{{ $value" in rule, f"{name}: no templated annotation"


def test_alerts_read_only_declared_metrics() -> None:
    for name, rule in _alerts().items():
        names = metric_names(_expr(rule))
        assert names, f"{name}: no metric found in {_expr(rule)!r}"
        assert not undeclared(names), f"{name} reads undeclared metrics {undeclared(names)}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        alertname = ""
        for line in path.read_text().splitlines():
            name = re.match(r"\s*alertname: *(\S+)", line)
            if name:
                alertname = name.group(1)
                continue
            expected = re.match(r"\s*exp_alerts: *(\S*)", line)
            if expected:
                (quiet if expected.group(1) == "[]" else firing).add(alertname)
    alerts = set(_alerts())
    assert not alerts - firing, f"alerts never tested firing: {sorted(alerts - firing)}"
    assert not alerts - quiet, f"alerts never tested quiet: {sorted(alerts - quiet)}"
    assert not (firing | quiet) - alerts, f"tests of unknown alerts: {(firing | quiet) - alerts}"


def test_scrape_config_scrapes_the_collector_every_15_s() -> None:
    text = CONFIG.read_text()
    assert re.search(r"^\s*- job_name: *onemon", text, re.MULTILINE)
    assert re.search(r"^\s*scrape_interval: *15s", text, re.MULTILINE)
    assert re.search(r"^\s*scrape_timeout: *10s", text, re.MULTILINE)
    assert RULES.name in text
    assert "expose nothing over HTTP" in text  # the agents: said, not scraped


def test_promtool_check_config() -> None:
    result = _run("check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no rule unit tests in packaging/prometheus/tests"
    result = _run("test", "rules", *(str(p) for p in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout
