"""Hostile input: labels escaped, valid UTF-8, bounded; bad values skipped; never a crash."""

from __future__ import annotations

import enum
import threading
from typing import Any

import pytest
from metrics_states import HOSTILE_NAMES, full_monitoring, parse_body, rich_state

from onemon.collector.metrics import Renderer
from onemon.collector.metrics.text import (
    MAX_LABEL_CHARS,
    TRUNCATED,
    kib,
    label_value,
    ns,
    plain,
    timestamp,
)
from onemon.collector.model import Host, HostState, Vm


def unescape(value: str) -> str:
    """A label value as a scraper reads it."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            out.append({"n": "\n", "\\": "\\", '"': '"'}[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("two\nlines", "two\\nlines"),
        ("$(reboot) `id`; rm -rf /", "$(reboot) `id`; rm -rf /"),
        ("tab\tkept", "tab\tkept"),
        ("nul\x00 cr\r esc\x1b del\x7f", "nul\ufffd cr\ufffd esc\ufffd del\ufffd"),
        ("lone \udcff surrogate", "lone \ufffd surrogate"),
        (b"raw \xff bytes", "raw \ufffd bytes"),
        ("unicode é ✓ 😀", "unicode é ✓ 😀"),
        (12, "12"),
        (-1, "-1"),
        (1.5, "1.5"),
        ("", ""),
    ],
)
def test_label_value(raw: Any, text: str) -> None:
    assert label_value(raw) == text


def test_label_value_is_bounded_with_a_marker() -> None:
    value = label_value("é" * 4096)
    assert len(value) == MAX_LABEL_CHARS
    assert value.endswith(TRUNCATED)
    escaped = label_value('"' * 4096)  # bounded before escaping: never a cut escape
    assert escaped == '\\"' * (MAX_LABEL_CHARS - 1) + TRUNCATED
    assert label_value(10**5000).endswith(TRUNCATED) or label_value(10**5000) == "\ufffd"


class Color(enum.IntEnum):
    """An int subclass as a value."""

    RED = 4


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (12, "12"),
        ("12", "12"),
        (" 12 ", "12"),
        (b"7", "7"),
        ("1.25", "1.25"),
        ("1e3", "1000.0"),
        (True, "1"),
        (Color.RED, "4"),
        (10**30, "1e+30"),
        (-(10**30), "-1e+30"),
        (2**63 - 1, str(2**63 - 1)),
        (float("nan"), None),
        (float("inf"), None),
        ("nan", None),
        ("-inf", None),
        ("abc", None),
        ("0x10", None),
        ("", None),
        (10**400, None),
        ("1" * 5000, None),
        ([1], None),
        ({"a": 1}, None),
        (object(), None),
    ],
)
def test_plain_values(raw: Any, text: str | None) -> None:
    assert plain(raw) == text


def test_scaled_values() -> None:
    assert kib(2) == "2048"
    assert kib("1.5") == "1536.0"
    assert kib(1e306) is None  # overflows to inf
    assert ns(1_500_000_000) == "1.5"
    assert ns("250000000") == "0.25"
    assert ns(10**400) is None
    assert timestamp(1716200041.25) == "1716200041.250"
    assert timestamp(5) == "5"
    assert timestamp("inf") is None


def test_hostile_names_come_out_escaped_bounded_and_valid(renderer: Renderer) -> None:
    hosts = {i: Host(i, name, HostState.MONITORED) for i, name in enumerate(HOSTILE_NAMES)}
    vms = {
        i: Vm(i, i, deploy_id=name, monitoring={"NIC": {"ID": 0, "TARGET": name, "RX_BYTES": 1}})
        for i, name in enumerate(HOSTILE_NAMES)
    }
    body = renderer.render(hosts, vms).body
    body.decode("utf-8")  # strict
    values = {
        label: value
        for family in parse_body(body)
        for _, labels, _ in family.samples
        for label, value in labels.items()
    }
    assert values  # parse_body already checked escaping and line structure
    names = {
        labels["host_name"]
        for family in parse_body(body)
        if family.name == "opennebula_host_info"
        for _, labels, _ in family.samples
    }
    assert 'quote" back\\slash' in names
    assert "new\nline" in names
    assert "$(rm -rf /); `id`" in names
    assert "x" * (MAX_LABEL_CHARS - 1) + TRUNCATED in names
    assert "bad \ufffd surrogate" in names
    assert "raw \ufffd\ufffd bytes" in names
    for family in parse_body(body):
        for _, labels, _ in family.samples:
            assert all(len(value) <= MAX_LABEL_CHARS for value in labels.values())


def test_bad_values_are_skipped_and_counted(renderer: Renderer) -> None:
    vm = Vm(1, 1, monitoring={
        "CPU": "abc", "MEMORY": float("nan"), "NETRX": float("inf"), "NETTX": 10**30,
        "DISKRDBYTES": 10**400, "DISKWRBYTES": [1, 2], "DISKRDIOPS": {"x": 1},
        "DISKWRIOPS": True, "STATE": None,
    })  # fmt: skip
    rendered = renderer.render({}, {1: vm})
    body = rendered.body.decode()
    assert 'opennebula_vm_net_tx_bytes_total{one_vm_id="1",one_host_id="1"} 1e+30\n' in body
    assert 'opennebula_vm_disk_write_requests_total{one_vm_id="1",one_host_id="1"} 1\n' in body
    for name in ("cpu_used_ratio", "mem_used_bytes", "net_rx_bytes", "disk_read_bytes"):
        assert f"opennebula_vm_{name}" not in body
    assert rendered.skipped == 6
    assert "onemon_render_skipped_values 6\n" in renderer.render({}, {1: vm}).body.decode()


def test_broken_shapes_skip_the_object_not_the_render(renderer: Renderer) -> None:
    hosts = {
        1: Host(1, "ok", HostState.MONITORED),
        2: Host(2, "broken", HostState.MONITORED, system="garbage", agent=["x"]),  # type: ignore[arg-type]
    }
    vms = {
        1: Vm(1, 1, monitoring="garbage"),  # type: ignore[arg-type]
        2: Vm(
            2,
            1,
            monitoring={
                "NIC": "garbage",
                "DISK": [1, "x", None],
                "VCPU": {"ID": [1]},
                "BALLOON": ["x"],
            },
        ),
        3: Vm(3, 1, monitoring={"CPU": 1}),
    }
    rendered = renderer.render(hosts, vms)
    body = rendered.body.decode()
    parse_body(rendered.body)
    assert 'opennebula_vm_cpu_used_ratio{one_vm_id="3",one_host_id="1"} 1\n' in body
    assert 'opennebula_host_state{one_host_id="2"} 2\n' in body
    assert 'opennebula_libvirt_net_devices{one_vm_id="2",one_host_id="1"} 0\n' in body
    assert 'opennebula_libvirt_block_devices{one_vm_id="2",one_host_id="1"} 0\n' in body
    assert rendered.skipped >= 2


def test_repeated_vectors_give_one_series(renderer: Renderer) -> None:
    nic = {"ID": 0, "TARGET": "one-1-0", "RX_BYTES": 1}
    host = Host(1, "h", HostState.MONITORED, system={"DS": [{"ID": 0, "TOTAL_MB": 1}] * 2})
    host.agent = {"CYCLE_SECONDS": [{"GROUP": "g", "SECONDS": 1}, {"GROUP": "g", "SECONDS": 2}]}
    long_a, long_b = "a" * 500 + "1", "a" * 500 + "2"  # differ only after the cut
    vm = Vm(1, 1, monitoring={
        "NIC": [nic, dict(nic, RX_BYTES=2)],
        "DISK": [{"ID": 0, "TARGET": long_a, "RD_REQS": 1},
                 {"ID": 0, "TARGET": long_b, "RD_REQS": 2}],
    })  # fmt: skip
    body = renderer.render({1: host}, {1: vm}).body.decode()
    assert body.count("opennebula_libvirt_net_rx_bytes_total{") == 1
    assert body.count("opennebula_libvirt_block_rd_requests_total{") == 1
    assert body.count("opennebula_host_datastore_total_bytes{") == 1
    assert body.count("onemon_agent_cycle_seconds{") == 1
    assert 'vnic="0",device="one-1-0"} 1\n' in body  # the first one wins


def test_render_survives_state_changing_under_it(renderer: Renderer) -> None:
    hosts, vms = rich_state()
    stop = threading.Event()
    rounds = [0]

    def churn() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            vm = vms[100 + n % 5]
            vm.monitoring = full_monitoring(vm.id)
            vm.monitoring["NIC"].append({"ID": n, "TARGET": f"t{n}", "RX_BYTES": n})
            vms[101].monitoring["NIC"][0][f"EXTRA{n % 1000}"] = n  # grows a vector in place
            vm.host_id = n % 3
            vms[1000 + n % 50] = Vm(1000 + n % 50, n % 3, monitoring={"CPU": n})
            vms.pop(1000 + (n + 25) % 50, None)
            hosts[n % len(hosts)].name = f"name{n}"
            rounds[0] = n

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(50):
            parse_body(renderer.render(hosts, vms).body)
    finally:
        stop.set()
        thread.join()
    assert rounds[0] > 50
