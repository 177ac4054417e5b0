"""prometheus_client's own parser reads our body to the values the state holds."""

from __future__ import annotations

import math

from metrics_states import rich_state
from prometheus_client.parser import text_string_to_metric_families

from onemon.collector.metrics import BY_NAME, Kind, Renderer
from onemon.collector.model import Host, Vm

Key = tuple[str, frozenset[tuple[str, str]]]
PERCENT, NEWLINE = "100% %s %(x)d %%", "new\nline"


def read(body: bytes) -> tuple[dict[Key, float], dict[str, str]]:
    """Samples by (name, labels), and family types by sample name, as prometheus_client parses."""
    samples: dict[Key, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, key
            samples[key] = float(sample.value)
            types[sample.name] = family.type
    return samples, types


def key(name: str, **labels: object) -> Key:
    """A sample key."""
    return name, frozenset((k, str(v)) for k, v in labels.items())


def test_prometheus_client_reads_every_sample_with_its_declared_type(
    renderer: Renderer, rich: tuple[dict[int, Host], dict[int, Vm]]
) -> None:
    rendered = renderer.render(*rich)
    samples, types = read(rendered.body)
    assert len(samples) == rendered.samples
    for name, kind in types.items():
        assert BY_NAME[name].kind == Kind(kind), name


def test_values_match_the_state(renderer: Renderer) -> None:
    hosts, vms = rich_state()
    samples, _ = read(renderer.render(hosts, vms).body)
    vm = vms[101]
    mon = vm.monitoring
    vid = {"one_vm_id": vm.id, "one_host_id": vm.host_id}
    expected = {
        key("opennebula_vm_total"): len(vms),
        key("opennebula_host_total"): len(hosts),
        key("opennebula_vm_state", one_vm_id=vm.id): int(vm.state),
        key("opennebula_vm_lcm_state", one_vm_id=vm.id): int(vm.lcm_state),
        key("opennebula_vm_host_id", one_vm_id=vm.id): vm.host_id,
        key("opennebula_vm_cpu_used_ratio", **vid): mon["CPU"],
        key("opennebula_vm_mem_used_bytes", **vid): mon["MEMORY"] * 1024,
        key("opennebula_vm_net_rx_bytes_total", **vid): mon["NETRX"],
        key("opennebula_vm_net_tx_bytes_total", **vid): float(mon["NETTX"]),
        key("opennebula_vm_disk_read_bytes_total", **vid): mon["DISKRDBYTES"],
        key("opennebula_vm_disk_write_requests_total", **vid): mon["DISKWRIOPS"],
        key("opennebula_vm_last_poll_timestamp_seconds", **vid): vm.last_poll,
        key("opennebula_libvirt_cpu_seconds_total", **vid): mon["CPU_TIME_NS"] / 1e9,
        key("opennebula_libvirt_state_reason", **vid): 1,
        key("opennebula_libvirt_memory_rss_bytes", **vid): mon["BALLOON"]["RSS"] * 1024,
        key("opennebula_libvirt_memory_swapout_bytes_total", **vid): 2048,
        key("opennebula_libvirt_vcpu_time_seconds_total", **vid, vcpu=1): 2.0,
        key("opennebula_libvirt_net_tx_drops_total", **vid, vnic=1, device="one-101-1"): 17,
        key("opennebula_libvirt_block_wr_time_seconds_total", **vid, disk=1, device=PERCENT): 0.004,
        key("opennebula_libvirt_block_virtual_bytes", **vid, disk=0, device=NEWLINE): 10 * 2**30,
        key("opennebula_host_vms", one_host_id=1): sum(v.host_id == 1 for v in vms.values()),
        key("opennebula_host_mem_total_bytes", one_host_id=2): 32 * 2**30,
        key("opennebula_host_cpu_free_ratio", one_host_id=2): 1200.5,
        key("opennebula_host_net_rx_bytes_total", one_host_id=2): 10**13,
        key("opennebula_host_datastore_free_bytes", one_host_id=2, one_datastore_id=1):
            1980 * 2**20,
        key("opennebula_host_numa_mem_total_bytes", one_host_id=2, numa_node=1): 16 * 2**30,
        key("opennebula_host_numa_hugepages_free", one_host_id=2, numa_node=0,
            page_size_bytes=2**30): 1,
        key("opennebula_host_zombies", one_host_id=2): 1,
        key("onemon_agent_cycle_seconds", one_host_id=2, group="beacon_host"): 0.01,
        key("onemon_agent_spool_bytes", one_host_id=2): 7,
        key("onemon_hosts", state="OFFLINE"): 1,
        key("onemon_udp_receive_errors_total"): 8,
    }  # fmt: skip
    for sample, value in expected.items():
        assert sample in samples, sample
        assert math.isclose(samples[sample], value, rel_tol=1e-15), sample


def test_hostile_label_values_read_back(renderer: Renderer) -> None:
    hosts, vms = rich_state()
    samples, _ = read(renderer.render(hosts, vms).body)
    names = {
        dict(labels)["host_name"] for name, labels in samples if name == "opennebula_host_info"
    }
    assert {'quote" back\\slash', "new\nline", "$(rm -rf /); `id`"} <= names
    assert "bad \ufffd surrogate" in names
