"""Every metric the collector exposes, declared once as data (DESIGN §7)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["BY_NAME", "METRICS", "Kind", "Metric"]


class Kind(enum.StrEnum):
    """Prometheus metric types the collector uses."""

    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: name, type, unit (in the name), label names in order, help text."""

    name: str
    kind: Kind
    unit: str
    labels: tuple[str, ...]
    help: str


C, G = Kind.COUNTER, Kind.GAUGE

H: Final = ("one_host_id",)
V: Final = ("one_vm_id",)
VH: Final = ("one_vm_id", "one_host_id")
NIC: Final = (*VH, "vnic", "device")
DISK: Final = (*VH, "disk", "device")
VCPU: Final = (*VH, "vcpu")
NUMA: Final = (*H, "numa_node")
HUGE: Final = (*NUMA, "page_size_bytes")
DS: Final = (*H, "one_datastore_id")

CORES = "100 per core"

METRICS: Final[tuple[Metric, ...]] = (
    # hosts, OpenNebula exporter names (reference §6.2)
    Metric("opennebula_host_total", G, "", (), "Hosts the collector knows."),
    Metric("opennebula_host_state", G, "", H,
           "Host state: 0 init, 2 monitored, 3 error, 4 disabled, 8 offline."),
    Metric("opennebula_host_cpu_total_ratio", G, "ratio", H, f"TOTALCPU, {CORES}."),
    Metric("opennebula_host_mem_total_bytes", G, "bytes", H, "TOTALMEMORY in bytes."),
    Metric("opennebula_host_vms", G, "", H, "VMs the collector places on the host."),
    # hosts, measured usage (MONITOR_HOST, SYSTEM_HOST)
    Metric("opennebula_host_info", G, "", (*H, "host_name", "im_mad", "vm_mad", "one_cluster_id"),
           "Host identity; always 1."),
    Metric("opennebula_host_cpu_used_ratio", G, "ratio", H, f"Measured CPU in use, {CORES}."),
    Metric("opennebula_host_cpu_free_ratio", G, "ratio", H, f"Measured idle CPU, {CORES}."),
    Metric("opennebula_host_cpu_speed_hertz", G, "hertz", H, "CPU clock speed."),
    Metric("opennebula_host_mem_used_bytes", G, "bytes", H,
           "Measured memory in use (total - free - buffers - cached)."),
    Metric("opennebula_host_mem_free_bytes", G, "bytes", H, "Measured free memory (total - used)."),
    Metric("opennebula_host_net_rx_bytes_total", C, "bytes", H, "Bytes received on physical NICs."),
    Metric("opennebula_host_net_tx_bytes_total", C, "bytes", H, "Bytes sent on physical NICs."),
    Metric("opennebula_host_numa_mem_total_bytes", G, "bytes", NUMA, "NUMA node memory."),
    Metric("opennebula_host_numa_mem_used_bytes", G, "bytes", NUMA, "NUMA node memory in use."),
    Metric("opennebula_host_numa_mem_free_bytes", G, "bytes", NUMA, "NUMA node free memory."),
    Metric("opennebula_host_numa_hugepages", G, "", HUGE, "Huge pages configured on the node."),
    Metric("opennebula_host_numa_hugepages_free", G, "", HUGE, "Free huge pages on the node."),
    Metric("opennebula_host_datastore_total_bytes", G, "bytes", DS, "Datastore size."),
    Metric("opennebula_host_datastore_used_bytes", G, "bytes", DS, "Datastore space used."),
    Metric("opennebula_host_datastore_free_bytes", G, "bytes", DS, "Datastore space free."),
    Metric("opennebula_host_wilds", G, "", H, "Domains OpenNebula did not create."),
    Metric("opennebula_host_zombies", G, "", H, "VMs running where they should not."),
    Metric("opennebula_host_last_seen_timestamp_seconds", G, "seconds", H,
           "Receive time of the host's last accepted message."),
    Metric("opennebula_host_last_monitored_timestamp_seconds", G, "seconds", H,
           "Receive time of the host's last MONITOR_HOST."),
    # agent self-metrics relayed per host
    Metric("onemon_agent_probe_failures_total", C, "", H, "Probe runs that failed on the agent."),
    Metric("onemon_agent_probe_timeouts_total", C, "", H, "Probe runs killed at their timeout."),
    Metric("onemon_agent_group_skips_total", C, "", H, "Probe group runs skipped."),
    Metric("onemon_agent_messages_sent_total", C, "", H, "Messages the agent sent."),
    Metric("onemon_agent_messages_dropped_total", C, "", H, "Messages the agent dropped."),
    Metric("onemon_agent_spool_messages", G, "", H, "Messages waiting in the agent's spool."),
    Metric("onemon_agent_spool_bytes", G, "bytes", H, "Bytes waiting in the agent's spool."),
    Metric("onemon_agent_hypervisor_unreachable_total", C, "", H,
           "Probe runs that found libvirt (or LXC) unreachable on the node."),
    Metric("onemon_agent_cycle_seconds", G, "seconds", (*H, "group"),
           "Duration of the last run of a probe group."),
    # VMs, OpenNebula exporter names (reference §6.2)
    Metric("opennebula_vm_total", G, "", (), "VMs the collector knows."),
    Metric("opennebula_vm_state", G, "", V, "OpenNebula VM state number."),
    Metric("opennebula_vm_lcm_state", G, "", V, "OpenNebula LCM state number."),
    Metric("opennebula_vm_host_id", G, "", V, "Host the VM was last reported on."),
    # VMs, measured usage (MONITOR_VM)
    Metric("opennebula_vm_info", G, "", (*VH, "deploy_id"), "VM identity; always 1."),
    Metric("opennebula_vm_cpu_used_ratio", G, "ratio", VH, "Measured CPU, percent of one core."),
    Metric("opennebula_vm_mem_used_bytes", G, "bytes", VH, "Measured memory (QEMU RSS)."),
    Metric("opennebula_vm_net_rx_bytes_total", C, "bytes", VH, "Bytes received on all vNICs."),
    Metric("opennebula_vm_net_tx_bytes_total", C, "bytes", VH, "Bytes sent on all vNICs."),
    Metric("opennebula_vm_disk_read_bytes_total", C, "bytes", VH, "Bytes read from all disks."),
    Metric("opennebula_vm_disk_write_bytes_total", C, "bytes", VH, "Bytes written to all disks."),
    Metric("opennebula_vm_disk_read_requests_total", C, "", VH, "Read requests on all disks."),
    Metric("opennebula_vm_disk_write_requests_total", C, "", VH, "Write requests on all disks."),
    Metric("opennebula_vm_last_poll_timestamp_seconds", G, "seconds", VH,
           "Receive time of the last MONITOR_VM about the VM."),
    # per-domain libvirt series (reference §6.3, Prometheus-correct)
    Metric("opennebula_libvirt_state", G, "", VH,
           "Domain state: 0 nostate, 1 running, 2 blocked, 3 paused, 4 shutdown, 5 shutoff, "
           "6 crashed, 7 pmsuspended."),
    Metric("opennebula_libvirt_state_reason", G, "", VH, "libvirt reason number for the state."),
    Metric("opennebula_libvirt_cpu_seconds_total", C, "seconds", VH, "CPU time of the domain."),
    Metric("opennebula_libvirt_cpu_user_seconds_total", C, "seconds", VH, "User CPU time."),
    Metric("opennebula_libvirt_cpu_system_seconds_total", C, "seconds", VH, "System CPU time."),
    Metric("opennebula_libvirt_memory_total_bytes", G, "bytes", VH, "Balloon current size."),
    Metric("opennebula_libvirt_memory_maximum_bytes", G, "bytes", VH, "Balloon maximum size."),
    Metric("opennebula_libvirt_memory_unused_bytes", G, "bytes", VH, "Memory unused by the guest."),
    Metric("opennebula_libvirt_memory_available_bytes", G, "bytes", VH,
           "Memory the guest sees as available."),
    Metric("opennebula_libvirt_memory_usable_bytes", G, "bytes", VH,
           "Memory the guest can reclaim without swapping."),
    Metric("opennebula_libvirt_memory_rss_bytes", G, "bytes", VH, "QEMU process RSS."),
    Metric("opennebula_libvirt_memory_swapin_bytes_total", C, "bytes", VH, "Bytes swapped in."),
    Metric("opennebula_libvirt_memory_swapout_bytes_total", C, "bytes", VH, "Bytes swapped out."),
    Metric("opennebula_libvirt_memory_major_faults_total", C, "", VH, "Major page faults."),
    Metric("opennebula_libvirt_memory_minor_faults_total", C, "", VH, "Minor page faults."),
    Metric("opennebula_libvirt_vcpu_state", G, "", VCPU, "0 offline, 1 running, 2 blocked."),
    Metric("opennebula_libvirt_vcpu_time_seconds_total", C, "seconds", VCPU, "vCPU run time."),
    Metric("opennebula_libvirt_vcpu_wait_seconds_total", C, "seconds", VCPU, "vCPU wait time."),
    Metric("opennebula_libvirt_net_devices", G, "", VH, "vNICs of the domain."),
    Metric("opennebula_libvirt_net_rx_bytes_total", C, "bytes", NIC, "Bytes received."),
    Metric("opennebula_libvirt_net_rx_packets_total", C, "", NIC, "Packets received."),
    Metric("opennebula_libvirt_net_rx_errors_total", C, "", NIC, "Receive errors."),
    Metric("opennebula_libvirt_net_rx_drops_total", C, "", NIC, "Received packets dropped."),
    Metric("opennebula_libvirt_net_tx_bytes_total", C, "bytes", NIC, "Bytes sent."),
    Metric("opennebula_libvirt_net_tx_packets_total", C, "", NIC, "Packets sent."),
    Metric("opennebula_libvirt_net_tx_errors_total", C, "", NIC, "Send errors."),
    Metric("opennebula_libvirt_net_tx_drops_total", C, "", NIC, "Sent packets dropped."),
    Metric("opennebula_libvirt_block_devices", G, "", VH, "Disks of the domain."),
    Metric("opennebula_libvirt_block_rd_requests_total", C, "", DISK, "Read requests."),
    Metric("opennebula_libvirt_block_rd_bytes_total", C, "bytes", DISK, "Bytes read."),
    Metric("opennebula_libvirt_block_rd_time_seconds_total", C, "seconds", DISK,
           "Time spent reading."),
    Metric("opennebula_libvirt_block_wr_requests_total", C, "", DISK, "Write requests."),
    Metric("opennebula_libvirt_block_wr_bytes_total", C, "bytes", DISK, "Bytes written."),
    Metric("opennebula_libvirt_block_wr_time_seconds_total", C, "seconds", DISK,
           "Time spent writing."),
    Metric("opennebula_libvirt_block_fl_requests_total", C, "", DISK, "Flush requests."),
    Metric("opennebula_libvirt_block_fl_time_seconds_total", C, "seconds", DISK,
           "Time spent flushing."),
    Metric("opennebula_libvirt_block_virtual_bytes", G, "bytes", DISK, "Disk size the guest sees."),
    Metric("opennebula_libvirt_block_allocation_bytes", G, "bytes", DISK, "Disk space allocated."),
    Metric("opennebula_libvirt_block_physical_bytes", G, "bytes", DISK, "Disk size on the host."),
    # the collector's own health
    Metric("onemon_messages_total", C, "", ("type", "format", "transport"), "Messages accepted."),
    Metric("onemon_messages_rejected_total", C, "", ("reason",), "Messages rejected, by reason."),
    Metric("onemon_udp_receive_errors_total", C, "", (),
           "Datagrams the kernel dropped for a full receive buffer (Udp RcvbufErrors, v4 + v6, "
           "whole network namespace)."),
    Metric("onemon_udp_in_errors_total", C, "", (),
           "Datagrams the kernel could not deliver (Udp InErrors, v4 + v6, whole network "
           "namespace)."),
    Metric("onemon_store_backlog_rows", G, "", (), "Rows waiting to be written to the store."),
    Metric("onemon_store_up", G, "", (), "1 when the last store write succeeded."),
    Metric("onemon_store_history_dropped_total", C, "", (), "History rows dropped unwritten."),
    Metric("onemon_event_loop_lag_seconds", G, "seconds", (), "Last measured event loop lag."),
    Metric("onemon_hosts", G, "", ("state",), "Hosts by state."),
    Metric("onemon_vms", G, "", ("report",), "VMs by the state their host last reported."),
    Metric("onemon_render_seconds", G, "seconds", (), "Duration of the previous /metrics render."),
    Metric("onemon_render_timestamp_seconds", G, "seconds", (), "When this body was rendered."),
    Metric("onemon_render_samples", G, "", (), "Samples in the previous /metrics render."),
    Metric("onemon_render_skipped_values", G, "", (),
           "Values left out of the previous render (not numeric, not finite, unreadable)."),
    # sharding (docs/sharding.md): emitted only when it is on
    Metric("onemon_shard_leader", G, "", ("shard",),
           "1 when this collector leads the shard (applies its hosts), 0 when it may take it."),
    Metric("onemon_shard_hosts", G, "", ("shard",), "Hosts of a shard led by this collector."),
    Metric("onemon_shard_takeovers_total", C, "", ("shard",),
           "Times this collector took the lead of the shard."),
    Metric("onemon_shard_redirects_total", C, "", (),
           "Acknowledged messages answered with a redirect to their shard's leader."),
    Metric("onemon_shard_relayed_total", C, "", (),
           "Datagrams and legacy messages relayed to their shard's leader."),
)  # fmt: skip
"""The table: the renderer emits only these, in this order."""

BY_NAME: Final[dict[str, Metric]] = {metric.name: metric for metric in METRICS}
"""Declared metrics by name."""

assert len(BY_NAME) == len(METRICS), "metric declared twice"
