"""Declared once: the table is sound, and a rich render emits exactly what it declares."""

from __future__ import annotations

import re

import pytest
from metrics_states import parse_body

from onemon.collector.metrics import BY_NAME, METRICS, Kind, Renderer
from onemon.collector.metrics.sink import Sink
from onemon.collector.model import Host, Vm

OPENNEBULA_GAUGES_ENDING_IN_TOTAL = {"opennebula_host_total", "opennebula_vm_total"}
"""OpenNebula's exporter names (reference §6.2) kept as they are, though they break the rule."""

NAME = re.compile(r"(opennebula|onemon)_[a-z][a-z0-9_]*[a-z0-9]")
LABEL = re.compile(r"[a-z][a-z0-9_]*")


def test_table_is_sound() -> None:
    assert len(BY_NAME) == len(METRICS)
    for metric in METRICS:
        assert NAME.fullmatch(metric.name), metric.name
        if metric.name not in OPENNEBULA_GAUGES_ENDING_IN_TOTAL:
            assert (metric.kind is Kind.COUNTER) == metric.name.endswith("_total"), metric.name
        if metric.unit:
            assert f"_{metric.unit}" in metric.name, metric.name
        assert not any(bad in metric.name for bad in ("_kb", "_mb", "_ns", "_ms", "percent"))
        assert len(set(metric.labels)) == len(metric.labels), metric.name
        assert all(LABEL.fullmatch(label) for label in metric.labels), metric.name
        assert metric.help and "\n" not in metric.help, metric.name


def test_opennebula_exporter_names_and_labels_are_kept() -> None:
    for name, labels in {
        "opennebula_host_total": (),
        "opennebula_host_state": ("one_host_id",),
        "opennebula_host_cpu_total_ratio": ("one_host_id",),
        "opennebula_host_mem_total_bytes": ("one_host_id",),
        "opennebula_host_vms": ("one_host_id",),
        "opennebula_vm_total": (),
        "opennebula_vm_state": ("one_vm_id",),
        "opennebula_vm_lcm_state": ("one_vm_id",),
        "opennebula_vm_host_id": ("one_vm_id",),
    }.items():
        assert BY_NAME[name].labels == labels
        assert BY_NAME[name].kind is Kind.GAUGE


def test_sink_refuses_an_undeclared_family() -> None:
    with pytest.raises(KeyError):
        Sink().out("opennebula_made_up_total")


def test_rich_render_emits_only_declared_families_with_declared_types_and_labels(
    renderer: Renderer, rich: tuple[dict[int, Host], dict[int, Vm]]
) -> None:
    renderer.health.message("STATE_VM", "legacy", "tcp")
    families = parse_body(renderer.render(*rich).body)
    problems = []
    for family in families:
        declared = BY_NAME.get(family.name)
        if declared is None:
            problems.append(f"{family.name}: emitted, not declared")
            continue
        if family.type != declared.kind:
            problems.append(f"{family.name}: emitted as {family.type}, declared {declared.kind}")
        for sample, labels, _ in family.samples:
            if sample != family.name:
                problems.append(f"{family.name}: sample {sample}")
            if tuple(labels) != declared.labels:
                problems.append(f"{family.name}: labels {tuple(labels)} != {declared.labels}")
    assert not problems
    assert [f.name for f in families] == [m.name for m in METRICS]  # table order


def test_rich_render_uses_every_declared_family(
    renderer: Renderer, rich: tuple[dict[int, Host], dict[int, Vm]]
) -> None:
    renderer.health.message("STATE_VM", "legacy", "tcp")
    emitted = {family.name for family in parse_body(renderer.render(*rich).body)}
    assert set(BY_NAME) - emitted == set()


def test_series_are_unique(renderer: Renderer, rich: tuple[dict[int, Host], dict[int, Vm]]) -> None:
    for family in parse_body(renderer.render(*rich).body):
        keys = [tuple(labels.items()) for _, labels, _ in family.samples]
        assert len(keys) == len(set(keys)), family.name
