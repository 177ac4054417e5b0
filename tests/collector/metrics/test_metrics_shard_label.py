"""Sharding on: every host and VM series carries its shard, and only then."""

from __future__ import annotations

from pathlib import Path

from metrics_states import CLOCK, rich_state
from prometheus_client.parser import text_string_to_metric_families

from onemon.collector.metrics import Renderer


def shard_of(host_id: int) -> int:
    """A made-up assignment: odd hosts in shard 1."""
    return host_id % 2


def object_samples(body: bytes) -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of every sample that belongs to a host or a VM."""
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if "one_host_id" in sample.labels or "one_vm_id" in sample.labels
    ]


def test_every_host_and_vm_series_has_its_hosts_shard(procfs: Path) -> None:
    hosts, vms = rich_state()
    renderer = Renderer(procfs=procfs, clock=lambda: CLOCK, shard_of=shard_of)
    samples = object_samples(renderer.render(hosts, vms).body)
    assert len(samples) > 100
    host_of_vm = {vm.id: vm.host_id for vm in vms.values()}
    for name, labels in samples:
        host = int(labels["one_host_id"]) if "one_host_id" in labels else host_of_vm[
            int(labels["one_vm_id"])
        ]
        assert labels.get("shard") == str(shard_of(host)), (name, labels)
    shards = {labels["shard"] for _, labels in samples}
    assert shards == {"0", "1"}


def test_a_reassigned_host_is_relabelled_at_the_next_render(procfs: Path) -> None:
    hosts, vms = rich_state()
    assignment = {host_id: 0 for host_id in hosts}
    renderer = Renderer(procfs=procfs, clock=lambda: CLOCK, shard_of=assignment.__getitem__)
    renderer.render(hosts, vms)
    moved = next(iter(hosts))
    assignment[moved] = 1
    samples = object_samples(renderer.render(hosts, vms).body)
    for _, labels in samples:
        if labels.get("one_host_id") == str(moved):
            assert labels["shard"] == "1"


def test_no_shard_label_when_sharding_is_off(procfs: Path) -> None:
    samples = object_samples(Renderer(procfs=procfs, clock=lambda: CLOCK).render(*rich_state()).body)
    assert samples and all("shard" not in labels for _, labels in samples)
