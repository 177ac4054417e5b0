"""Kernel UDP error counters from /proc/net/snmp and /proc/net/snmp6."""

from __future__ import annotations

from pathlib import Path

from metrics_states import write_procfs

from onemon.collector.metrics import UdpErrors, udp_errors


def test_v4_and_v6_are_summed_and_udplite_ignored(tmp_path: Path) -> None:
    procfs = write_procfs(tmp_path, rcvbuf=7, in_errors=9, v6=2)
    assert udp_errors(procfs) == UdpErrors(rcvbuf_errors=9, in_errors=11)


def test_only_one_file(tmp_path: Path) -> None:
    procfs = write_procfs(tmp_path, rcvbuf=3, in_errors=4, v6=5)
    (procfs / "net" / "snmp6").unlink()
    assert udp_errors(procfs) == UdpErrors(3, 4)
    write_procfs(tmp_path, v6=5)
    (procfs / "net" / "snmp").unlink()
    assert udp_errors(procfs) == UdpErrors(5, 5)


def test_missing_or_garbled(tmp_path: Path) -> None:
    assert udp_errors(tmp_path) is None
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "snmp").write_text("Udp: InErrors RcvbufErrors\nUdp: x y\n")
    assert udp_errors(tmp_path) is None
    (tmp_path / "net" / "snmp").write_text("Udp: InErrors RcvbufErrors\n")
    assert udp_errors(tmp_path) is None


def test_this_machine() -> None:
    found = udp_errors()
    if Path("/proc/net/snmp").exists():
        assert found is not None
        assert found.in_errors >= found.rcvbuf_errors >= 0
