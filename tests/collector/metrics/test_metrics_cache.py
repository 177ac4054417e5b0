"""The cached body: gzip copy, content negotiation, refresh off-thread, label cache, health."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from metrics_states import CLOCK, rich_state, small_state

from onemon.collector.metrics import CONTENT_TYPE, Health, MetricsCache, Renderer, wants_gzip
from onemon.collector.model import Vm


def test_cache_starts_with_a_valid_body(procfs: Path) -> None:
    cache = MetricsCache(Renderer(procfs=procfs, clock=lambda: CLOCK))
    body, encoding = cache.response()
    assert encoding is None
    assert b"opennebula_host_total 0\n" in body
    assert b"opennebula_vm_total 0\n" in body
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_refresh_in_a_worker_thread_swaps_the_body(renderer: Renderer) -> None:
    cache = MetricsCache(renderer)
    hosts, vms = rich_state()
    with ThreadPoolExecutor(1) as pool:
        rendered = pool.submit(cache.refresh, hosts, vms).result()
    assert cache.current is rendered
    assert rendered.rendered_at == CLOCK
    assert rendered.render_seconds >= rendered.gzip_seconds > 0
    assert gzip.decompress(rendered.gzip_body) == rendered.body
    assert cache.response("gzip, deflate") == (rendered.gzip_body, "gzip")
    assert cache.response("identity") == (rendered.body, None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("*", True),
        ("x-gzip", True),
        ("br, deflate", False),
        ("gzip;q=bad", False),
    ],
)
def test_wants_gzip(header: str | None, expected: bool) -> None:
    assert wants_gzip(header) is expected


def test_label_strings_are_reused_and_rebuilt_when_identity_changes(renderer: Renderer) -> None:
    hosts, vms = small_state()
    vm = vms[12]
    renderer.render(hosts, vms)
    first = renderer._labels.vm(vm)
    renderer.render(hosts, vms)
    assert renderer._labels.vm(vm) is first
    vm.host_id = 4
    body = renderer.render(hosts, vms).body.decode()
    assert 'opennebula_vm_cpu_used_ratio{one_vm_id="12",one_host_id="4"} 1.5\n' in body
    assert 'one_host_id="3"}' not in body.split("opennebula_vm_total")[1].split("onemon_")[0]
    hosts[3].name = "renamed"
    assert 'host_name="renamed"' in renderer.render(hosts, vms).body.decode()


def test_label_cache_drops_objects_gone_from_state(renderer: Renderer) -> None:
    hosts, vms = small_state()
    for i in range(100):
        vms[1000 + i] = Vm(1000 + i, 3, monitoring={"NIC": {"ID": 0, "TARGET": f"t{i}"}})
    renderer.render(hosts, vms)
    assert len(renderer._labels._vms) == 101
    renderer.render(hosts, {12: vms[12]})
    renderer.render(hosts, {12: vms[12]})
    assert len(renderer._labels._vms) == 1
    assert len(renderer._labels._old_vms) == 1


def test_health_counters_render(renderer: Renderer) -> None:
    health = renderer.health
    health.message("MONITOR_VM", "native", "udp", 5)
    health.message("MONITOR_VM", "native", "udp")
    health.message("STATE_VM", "legacy", "tcp")
    health.reject("bad_mac", 2)
    health.reject("duplicate")
    health.store_backlog_rows, health.store_up, health.history_dropped = 12, True, 3
    health.loop_lag_seconds = 0.004
    body = renderer.render({}, {}).body.decode()
    for line in (
        'onemon_messages_total{type="MONITOR_VM",format="native",transport="udp"} 6',
        'onemon_messages_total{type="STATE_VM",format="legacy",transport="tcp"} 1',
        'onemon_messages_rejected_total{reason="bad_mac"} 2',
        'onemon_messages_rejected_total{reason="duplicate"} 1',
        'onemon_messages_rejected_total{reason="truncated"} 0',
        "onemon_store_backlog_rows 12",
        "onemon_store_up 1",
        "onemon_store_history_dropped_total 3",
        "onemon_event_loop_lag_seconds 0.004",
        "onemon_udp_receive_errors_total 8",
        "onemon_udp_in_errors_total 10",
    ):
        assert line + "\n" in body


def test_health_is_shared_with_the_renderer() -> None:
    health = Health()
    renderer = Renderer(health)
    assert renderer.health is health
    renderer.render({}, {})
    assert health.render_seconds > 0
    assert health.render_samples > 0


def test_no_udp_counters_without_procfs(tmp_path: Path) -> None:
    body = Renderer(procfs=tmp_path).render({}, {}).body
    assert b"onemon_udp_" not in body
