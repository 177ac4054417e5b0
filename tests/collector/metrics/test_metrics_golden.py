"""The exact body for a small state: names, units, conversions, order."""

from __future__ import annotations

from metrics_states import small_state

from onemon.collector.metrics import Renderer

EXPECTED = """\
# HELP opennebula_host_total Hosts the collector knows.
# TYPE opennebula_host_total gauge
opennebula_host_total 1
# HELP opennebula_host_state Host state: 0 init, 2 monitored, 3 error, 4 disabled, 8 offline.
# TYPE opennebula_host_state gauge
opennebula_host_state{one_host_id="3"} 2
# HELP opennebula_host_cpu_total_ratio TOTALCPU, 100 per core.
# TYPE opennebula_host_cpu_total_ratio gauge
opennebula_host_cpu_total_ratio{one_host_id="3"} 800
# HELP opennebula_host_mem_total_bytes TOTALMEMORY in bytes.
# TYPE opennebula_host_mem_total_bytes gauge
opennebula_host_mem_total_bytes{one_host_id="3"} 16777216
# HELP opennebula_host_vms VMs the collector places on the host.
# TYPE opennebula_host_vms gauge
opennebula_host_vms{one_host_id="3"} 1
# HELP opennebula_host_info Host identity; always 1.
# TYPE opennebula_host_info gauge
opennebula_host_info{one_host_id="3",host_name="node3",im_mad="kvm",vm_mad="kvm",one_cluster_id="0"} 1
# HELP opennebula_host_cpu_used_ratio Measured CPU in use, 100 per core.
# TYPE opennebula_host_cpu_used_ratio gauge
opennebula_host_cpu_used_ratio{one_host_id="3"} 200.0
# HELP opennebula_host_cpu_free_ratio Measured idle CPU, 100 per core.
# TYPE opennebula_host_cpu_free_ratio gauge
opennebula_host_cpu_free_ratio{one_host_id="3"} 600.0
# HELP opennebula_host_cpu_speed_hertz CPU clock speed.
# TYPE opennebula_host_cpu_speed_hertz gauge
opennebula_host_cpu_speed_hertz{one_host_id="3"} 2400000000
# HELP opennebula_host_mem_used_bytes Measured memory in use (total - free - buffers - cached).
# TYPE opennebula_host_mem_used_bytes gauge
opennebula_host_mem_used_bytes{one_host_id="3"} 8585216
# HELP opennebula_host_mem_free_bytes Measured free memory (total - used).
# TYPE opennebula_host_mem_free_bytes gauge
opennebula_host_mem_free_bytes{one_host_id="3"} 8192000
# HELP opennebula_host_net_rx_bytes_total Bytes received on physical NICs.
# TYPE opennebula_host_net_rx_bytes_total counter
opennebula_host_net_rx_bytes_total{one_host_id="3"} 10
# HELP opennebula_host_net_tx_bytes_total Bytes sent on physical NICs.
# TYPE opennebula_host_net_tx_bytes_total counter
opennebula_host_net_tx_bytes_total{one_host_id="3"} 20
# HELP opennebula_host_datastore_total_bytes Datastore size.
# TYPE opennebula_host_datastore_total_bytes gauge
opennebula_host_datastore_total_bytes{one_host_id="3",one_datastore_id="0"} 104857600
# HELP opennebula_host_datastore_used_bytes Datastore space used.
# TYPE opennebula_host_datastore_used_bytes gauge
opennebula_host_datastore_used_bytes{one_host_id="3",one_datastore_id="0"} 10485760
# HELP opennebula_host_datastore_free_bytes Datastore space free.
# TYPE opennebula_host_datastore_free_bytes gauge
opennebula_host_datastore_free_bytes{one_host_id="3",one_datastore_id="0"} 94371840
# HELP opennebula_host_wilds Domains OpenNebula did not create.
# TYPE opennebula_host_wilds gauge
opennebula_host_wilds{one_host_id="3"} 0
# HELP opennebula_host_zombies VMs running where they should not.
# TYPE opennebula_host_zombies gauge
opennebula_host_zombies{one_host_id="3"} 0
# HELP opennebula_host_last_seen_timestamp_seconds Receive time of the host's last accepted message.
# TYPE opennebula_host_last_seen_timestamp_seconds gauge
opennebula_host_last_seen_timestamp_seconds{one_host_id="3"} 1716200040.500
# HELP opennebula_host_last_monitored_timestamp_seconds Receive time of the host's last MONITOR_HOST.
# TYPE opennebula_host_last_monitored_timestamp_seconds gauge
opennebula_host_last_monitored_timestamp_seconds{one_host_id="3"} 1716200040.000
# HELP onemon_agent_messages_sent_total Messages the agent sent.
# TYPE onemon_agent_messages_sent_total counter
onemon_agent_messages_sent_total{one_host_id="3"} 42
# HELP onemon_agent_cycle_seconds Duration of the last run of a probe group.
# TYPE onemon_agent_cycle_seconds gauge
onemon_agent_cycle_seconds{one_host_id="3",group="monitor_vm"} 0.25
# HELP opennebula_vm_total VMs the collector knows.
# TYPE opennebula_vm_total gauge
opennebula_vm_total 1
# HELP opennebula_vm_state OpenNebula VM state number.
# TYPE opennebula_vm_state gauge
opennebula_vm_state{one_vm_id="12"} 3
# HELP opennebula_vm_lcm_state OpenNebula LCM state number.
# TYPE opennebula_vm_lcm_state gauge
opennebula_vm_lcm_state{one_vm_id="12"} 3
# HELP opennebula_vm_host_id Host the VM was last reported on.
# TYPE opennebula_vm_host_id gauge
opennebula_vm_host_id{one_vm_id="12"} 3
# HELP opennebula_vm_info VM identity; always 1.
# TYPE opennebula_vm_info gauge
opennebula_vm_info{one_vm_id="12",one_host_id="3",deploy_id="6c1e1565"} 1
# HELP opennebula_vm_cpu_used_ratio Measured CPU, percent of one core.
# TYPE opennebula_vm_cpu_used_ratio gauge
opennebula_vm_cpu_used_ratio{one_vm_id="12",one_host_id="3"} 1.5
# HELP opennebula_vm_mem_used_bytes Measured memory (QEMU RSS).
# TYPE opennebula_vm_mem_used_bytes gauge
opennebula_vm_mem_used_bytes{one_vm_id="12",one_host_id="3"} 1048576
# HELP opennebula_vm_net_rx_bytes_total Bytes received on all vNICs.
# TYPE opennebula_vm_net_rx_bytes_total counter
opennebula_vm_net_rx_bytes_total{one_vm_id="12",one_host_id="3"} 5
# HELP opennebula_vm_last_poll_timestamp_seconds Receive time of the last MONITOR_VM about the VM.
# TYPE opennebula_vm_last_poll_timestamp_seconds gauge
opennebula_vm_last_poll_timestamp_seconds{one_vm_id="12",one_host_id="3"} 1716200041.500
# HELP opennebula_libvirt_state Domain state: 0 nostate, 1 running, 2 blocked, 3 paused, 4 shutdown, 5 shutoff, 6 crashed, 7 pmsuspended.
# TYPE opennebula_libvirt_state gauge
opennebula_libvirt_state{one_vm_id="12",one_host_id="3"} 1
# HELP opennebula_libvirt_state_reason libvirt reason number for the state.
# TYPE opennebula_libvirt_state_reason gauge
opennebula_libvirt_state_reason{one_vm_id="12",one_host_id="3"} 1
# HELP opennebula_libvirt_cpu_seconds_total CPU time of the domain.
# TYPE opennebula_libvirt_cpu_seconds_total counter
opennebula_libvirt_cpu_seconds_total{one_vm_id="12",one_host_id="3"} 1.500000000
# HELP opennebula_libvirt_net_devices vNICs of the domain.
# TYPE opennebula_libvirt_net_devices gauge
opennebula_libvirt_net_devices{one_vm_id="12",one_host_id="3"} 1
# HELP opennebula_libvirt_net_rx_bytes_total Bytes received.
# TYPE opennebula_libvirt_net_rx_bytes_total counter
opennebula_libvirt_net_rx_bytes_total{one_vm_id="12",one_host_id="3",vnic="0",device="one-12-0"} 5
# HELP opennebula_libvirt_net_tx_bytes_total Bytes sent.
# TYPE opennebula_libvirt_net_tx_bytes_total counter
opennebula_libvirt_net_tx_bytes_total{one_vm_id="12",one_host_id="3",vnic="0",device="one-12-0"} 6
# HELP opennebula_libvirt_block_devices Disks of the domain.
# TYPE opennebula_libvirt_block_devices gauge
opennebula_libvirt_block_devices{one_vm_id="12",one_host_id="3"} 1
# HELP opennebula_libvirt_block_rd_time_seconds_total Time spent reading.
# TYPE opennebula_libvirt_block_rd_time_seconds_total counter
opennebula_libvirt_block_rd_time_seconds_total{one_vm_id="12",one_host_id="3",disk="0",device="vda"} 0.250000000
# HELP opennebula_libvirt_block_virtual_bytes Disk size the guest sees.
# TYPE opennebula_libvirt_block_virtual_bytes gauge
opennebula_libvirt_block_virtual_bytes{one_vm_id="12",one_host_id="3",disk="0",device="vda"} 1073741824
# HELP onemon_messages_total Messages accepted.
# TYPE onemon_messages_total counter
onemon_messages_total{type="MONITOR_VM",format="native",transport="udp"} 3
# HELP onemon_messages_rejected_total Messages rejected, by reason.
# TYPE onemon_messages_rejected_total counter
onemon_messages_rejected_total{reason="bad_compression"} 0
onemon_messages_rejected_total{reason="bad_encoding"} 0
onemon_messages_rejected_total{reason="bad_field"} 0
onemon_messages_rejected_total{reason="bad_key"} 0
onemon_messages_rejected_total{reason="bad_mac"} 1
onemon_messages_rejected_total{reason="bad_payload"} 0
onemon_messages_rejected_total{reason="bad_status"} 0
onemon_messages_rejected_total{reason="bad_template"} 0
onemon_messages_rejected_total{reason="bad_type"} 0
onemon_messages_rejected_total{reason="bad_version"} 0
onemon_messages_rejected_total{reason="malformed"} 0
onemon_messages_rejected_total{reason="too_large"} 0
onemon_messages_rejected_total{reason="trailing_bytes"} 0
onemon_messages_rejected_total{reason="truncated"} 0
# HELP onemon_udp_receive_errors_total Datagrams the kernel dropped for a full receive buffer (Udp RcvbufErrors, v4 + v6, whole network namespace).
# TYPE onemon_udp_receive_errors_total counter
onemon_udp_receive_errors_total 8
# HELP onemon_udp_in_errors_total Datagrams the kernel could not deliver (Udp InErrors, v4 + v6, whole network namespace).
# TYPE onemon_udp_in_errors_total counter
onemon_udp_in_errors_total 10
# HELP onemon_store_backlog_rows Rows waiting to be written to the store.
# TYPE onemon_store_backlog_rows gauge
onemon_store_backlog_rows 0
# HELP onemon_store_up 1 when the last store write succeeded.
# TYPE onemon_store_up gauge
onemon_store_up 0
# HELP onemon_store_history_dropped_total History rows dropped unwritten.
# TYPE onemon_store_history_dropped_total counter
onemon_store_history_dropped_total 0
# HELP onemon_event_loop_lag_seconds Last measured event loop lag.
# TYPE onemon_event_loop_lag_seconds gauge
onemon_event_loop_lag_seconds 0.0
# HELP onemon_hosts Hosts by state.
# TYPE onemon_hosts gauge
onemon_hosts{state="INIT"} 0
onemon_hosts{state="MONITORED"} 1
onemon_hosts{state="ERROR"} 0
onemon_hosts{state="DISABLED"} 0
onemon_hosts{state="OFFLINE"} 0
# HELP onemon_vms VMs by the state their host last reported.
# TYPE onemon_vms gauge
onemon_vms{report="RUNNING"} 1
onemon_vms{report="POWEROFF"} 0
onemon_vms{report="SUSPENDED"} 0
onemon_vms{report="FAILURE"} 0
onemon_vms{report="UNKNOWN"} 0
# HELP onemon_render_seconds Duration of the previous /metrics render.
# TYPE onemon_render_seconds gauge
onemon_render_seconds 0.0
# HELP onemon_render_timestamp_seconds When this body was rendered.
# TYPE onemon_render_timestamp_seconds gauge
onemon_render_timestamp_seconds 1716200100.000
# HELP onemon_render_samples Samples in the previous /metrics render.
# TYPE onemon_render_samples gauge
onemon_render_samples 0
# HELP onemon_render_skipped_values Values left out of the previous render (not numeric, not finite, unreadable).
# TYPE onemon_render_skipped_values gauge
onemon_render_skipped_values 0
"""


def test_small_state_renders_exactly(renderer: Renderer) -> None:
    renderer.health.message("MONITOR_VM", "native", "udp", 3)
    renderer.health.reject("bad_mac")
    hosts, vms = small_state()
    body = renderer.render(hosts, vms).body.decode()
    assert body.splitlines() == EXPECTED.splitlines()
    assert body == EXPECTED


def test_second_render_reports_the_first(renderer: Renderer) -> None:
    hosts, vms = small_state()
    first = renderer.render(hosts, vms)
    body = renderer.render(hosts, vms).body.decode()
    assert f"onemon_render_samples {first.samples}\n" in body
    assert f"onemon_render_seconds {first.render_seconds!r}\n" in body
    assert first.samples == EXPECTED.count("\n") - 2 * EXPECTED.count("# TYPE") - 1
