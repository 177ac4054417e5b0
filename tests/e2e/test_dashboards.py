"""The Grafana dashboards (packaging/grafana/dashboards/*.json), checked without Grafana.

Fast checks: each file is a dashboard of schemaVersion >= 36 with a ``datasource`` variable of
type datasource (prometheus); every panel but rows reads that variable and has targets; every
metric any expression reads is declared in onemon/collector/metrics/declared.py.

End to end: a real one-agent (real QEMU guests, a datastore directory) feeds a real
one-collector scraped every second by a real Prometheus; every expression of every panel and
every template variable query, with Grafana's variables replaced by concrete values (and by
``.*`` for "All"), must parse and return data. A failure names dashboard, panel and expression.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import stack
from tests.e2e.infra import guest, prometheus
from tests.packaging.test_prometheus_rules import metric_names, undeclared

DASHBOARDS = sorted((stack.REPO / "packaging" / "grafana" / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HOST = 11
VM = 101
JOB = "onemon-collector"

SHARDING_OFF = "the collector here runs without [sharding] (tests/e2e/test_sharding_* cover it)"
KNOWN_EMPTY: Mapping[str, str] = {
    name: SHARDING_OFF
    for name in (
        "onemon_shard_leader",
        "onemon_shard_hosts",
        "onemon_shard_takeovers_total",
        "onemon_shard_redirects_total",
        "onemon_shard_relayed_total",
    )
}
"""Metric → why no data can exist yet. An expression reading one must return nothing; once it
returns data the entry must go (the test says so)."""

GRAFANA_INTERVALS = {"__rate_interval": "30s", "__interval": "15s", "__range": "5m"}
"""Grafana's built-in interval variables, as they could be with 1 s scrapes."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard: a panel target or a template variable query."""

    dashboard: str
    where: str
    expr: str
    label: str | None = None
    """For ``label_values(expr, label)``: the label whose values the variable lists."""

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.where}: {self.expr}"


def load(path: Path) -> dict[str, Any]:
    """A dashboard file."""
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variable_query(variable: Mapping[str, Any]) -> str:
    """A query variable's query text (a string, or ``{"query": …}`` in newer schemas)."""
    query = variable.get("query", "")
    return str(query.get("query", "") if isinstance(query, dict) else query)


def queries(path: Path) -> list[Query]:
    """Every expression of a dashboard."""
    board = load(path)
    name = board["title"]
    found: list[Query] = []
    for variable in board["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        text = variable_query(variable).strip()
        where = f"variable ${variable['name']}"
        match = re.fullmatch(r"label_values\((?:(.*),)?\s*(\w+)\s*\)", text, re.DOTALL)
        if match:
            found.append(Query(name, where, match.group(1) or "", match.group(2)))
        elif text.startswith("query_result("):
            found.append(Query(name, where, text[len("query_result(") : -1]))
        else:
            raise AssertionError(f"{name} {where}: unsupported variable query {text!r}")
    for panel in panels(board):
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            where = f"panel {panel.get('title')!r} target {target.get('refId')}"
            found.append(Query(name, where, str(target.get("expr", ""))))
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's variable syntaxes ($v, ${v}, ${v:fmt}, [[v]]) replaced by values."""
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        expr = re.sub(rf"\$\{{{name}(?::\w+)?\}}|\[\[{name}\]\]|\${name}\b", value, expr)
    assert "$" not in expr.replace('"$1"', ""), f"variable left in {expr!r}"
    return expr


# --- fast checks ---------------------------------------------------------------------------


def test_there_are_hosts_vms_and_collector_health_dashboards() -> None:
    titles = {load(p)["title"] for p in DASHBOARDS}
    assert {"onemon / Hosts", "onemon / VMs", "onemon / Collector health"} <= titles, titles


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = load(path)
    title = board["title"]
    assert board["schemaVersion"] >= 36, title
    assert board["uid"] and board.get("id") is None, title
    variables = {v["name"]: v for v in board["templating"]["list"]}
    datasource = variables.get("datasource")
    assert datasource and datasource["type"] == "datasource", f"{title}: no datasource variable"
    assert datasource["query"] == "prometheus", title
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, f"{title} ${variable['name']}"
    if "Hosts" in title or "VMs" in title:
        assert "host" in variables, f"{title}: no $host variable"
    if "VMs" in title:
        assert "vm" in variables, f"{title}: no $vm variable"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), f"{title}: duplicate panel ids"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        where = f"{title} / {panel.get('title')!r}"
        assert panel.get("datasource") == DATASOURCE, f"{where}: datasource is not $datasource"
        assert panel.get("targets"), f"{where}: no targets"
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, where
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, f"{where} {target.get('refId')}"
            assert str(target.get("expr", "")).strip(), f"{where} {target.get('refId')}: no expr"


def test_every_metric_in_the_dashboards_is_declared() -> None:
    used: set[str] = set()
    for path in DASHBOARDS:
        for query in queries(path):
            names = metric_names(query.expr)
            assert names, f"no metric in {query}"
            assert not undeclared(names), f"undeclared {sorted(undeclared(names))} in {query}"
            used |= names
    assert {"opennebula_host_state", "opennebula_vm_cpu_used_ratio"} <= used


def test_substitute_replaces_every_syntax() -> None:
    values = {"host": "11", "hostname": "x", **GRAFANA_INTERVALS}
    got = substitute('m{a=~"$host",b="${host}",c="[[host]]",d="${host:regex}"}[$__rate_interval]',
                     values)  # fmt: skip
    assert got == 'm{a=~"11",b="11",c="11",d="11"}[30s]'


# --- against real data ---------------------------------------------------------------------


def run(server: prometheus.Prometheus, query: Query, values: Mapping[str, str]) -> str | None:
    """None when the query returns data; else why not. Raises ValueError on a parse error."""
    expr = substitute(query.expr, values)
    try:
        result = server.query(expr)
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{expr}: {exc.read().decode(errors='replace')}") from None
    if query.label is not None:
        result = [r for r in result if query.label in r["metric"]]
    return None if result else f"no data for {expr}"


def reads_known_empty(query: Query) -> str | None:
    """The KNOWN_EMPTY metric a query reads, if any."""
    return next((m for m in metric_names(query.expr) if m in KNOWN_EMPTY), None)


def test_every_dashboard_query_returns_data(
    tmp_path: Path,
    booted_guests: tuple[guest.Guest, ...],
    prometheus_factory: Callable[..., prometheus.Prometheus],
) -> None:
    key = stack.make_key(tmp_path)
    datastore = tmp_path / "datastores" / "0"
    datastore.mkdir(parents=True)
    (datastore / ".monitor").write_text("ssh\n")  # a locally monitored system datastore
    collector = stack.collector(tmp_path / "c", key, [(HOST, f"node{HOST}")])
    agent = stack.agent(
        tmp_path / "a", key, HOST, [f"127.0.0.1:{collector.port}"],
        extra={"probes": {"datastore_location": str(datastore.parent)}},
    )  # fmt: skip
    started: list[stack.Process] = []
    try:
        stack.start_ready((collector,), started)
        agent.start()
        started.append(agent)
        target = f"127.0.0.1:{collector.http_port}"
        server = prometheus_factory([target], job=JOB)
        server.wait_for(f'opennebula_host_state{{one_host_id="{HOST}"}} == 2', timeout=30)
        selections = {
            "one": {"host": str(HOST), "vm": str(VM), "instance": target, **GRAFANA_INTERVALS},
            "All": {"host": ".*", "vm": ".*", "instance": ".*", **GRAFANA_INTERVALS},
        }
        checks = [(q, s) for p in DASHBOARDS for q in queries(p) for s in selections]
        assert len(checks) > 100, len(checks)
        pending = {check: "not run" for check in checks if not reads_known_empty(check[0])}
        failures: list[str] = []
        deadline = time.monotonic() + 45  # VM figures, datastores, two samples for rates
        while pending and time.monotonic() < deadline:
            for query, selection in list(pending):
                try:
                    why = run(server, query, selections[selection])
                except ValueError as exc:
                    failures.append(f"{query} ({selection})\n    does not parse: {exc}")
                    del pending[query, selection]
                    continue
                if why is None:
                    del pending[query, selection]
                else:
                    pending[query, selection] = why
            if pending:
                time.sleep(1)
        failures += [f"{q} ({s})\n    {why}" for (q, s), why in pending.items()]
        for query, selection in checks:
            metric = reads_known_empty(query)
            if metric is not None and run(server, query, selections[selection]) is None:
                failures.append(f"{query}\n    returns data now: drop {metric} from KNOWN_EMPTY")
        assert not failures, "dashboard queries without data:\n" + "\n".join(failures)
    finally:
        for process in reversed(started):
            process.kill()
