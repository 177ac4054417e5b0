"""States to render (small for the golden text, rich for every family) and a strict body reader."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onemon.collector.model import Host, HostCapacity, HostState, Vm, VmReport

CLOCK = 1716200100.0

HOSTILE_NAMES: tuple[Any, ...] = (
    'quote" back\\slash',
    "new\nline",
    "$(rm -rf /); `id`",
    "x" * 4096,
    "bad \udcff surrogate",
    b"raw \xff\xfe bytes",
    "ctl\x00\x07\r\x1b",
    "unicode é ✓ 😀",
    "100% %s %(x)d %%",
    "",
)
"""Names a node may report: every one must come out as a valid, bounded label value."""


def write_procfs(root: Path, rcvbuf: int = 7, in_errors: int = 9, v6: int = 1) -> Path:
    """A fake procfs with /proc/net/snmp and /proc/net/snmp6."""
    net = root / "net"
    net.mkdir(parents=True, exist_ok=True)
    head = "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors"
    (net / "snmp").write_text(
        "Ip: Forwarding DefaultTTL\nIp: 1 64\n"
        f"Udp: {head} IgnoredMulti MemErrors\nUdp: 100 0 {in_errors} 50 {rcvbuf} 0 0 0 0\n"
        f"UdpLite: {head} IgnoredMulti MemErrors\nUdpLite: 0 0 1000 0 1000 0 0 0 0\n"
    )
    (net / "snmp6").write_text(
        f"Ip6InReceives                   \t5\nUdp6InDatagrams                 \t3\n"
        f"Udp6InErrors                    \t{v6}\nUdp6RcvbufErrors                \t{v6}\n"
        "UdpLite6InErrors                \t1000\n"
    )
    return root


def small_state() -> tuple[dict[int, Host], dict[int, Vm]]:
    """One monitored host with one datastore, one running VM with one vNIC and one disk."""
    host = Host(
        3, "node3", HostState.MONITORED, last_seen=1716200040.5, last_monitored=1716200040.0,
        system={"TOTALCPU": 800, "TOTALMEMORY": "16384",
                "DS": {"ID": 0, "TOTAL_MB": 100, "USED_MB": 10, "FREE_MB": 90}},
        capacity=HostCapacity(free_cpu=600.0, used_cpu=200.0, free_memory=8000, used_memory=8384,
                              netrx=10, nettx=20, cpu_speed=2400),
        agent={"MESSAGES_SENT": 42, "CYCLE_SECONDS": [{"GROUP": "monitor_vm", "SECONDS": 0.25}]},
    )  # fmt: skip
    vm = Vm(12, 3, "6c1e1565", last_poll=1716200041.5, monitoring={
        "CPU": "1.5", "MEMORY": 1024, "NETRX": 5, "STATE": 1, "REASON": 1,
        "CPU_TIME_NS": 1_500_000_000,
        "NIC": {"ID": 0, "TARGET": "one-12-0", "RX_BYTES": 5, "TX_BYTES": 6},
        "DISK": [{"ID": 0, "TARGET": "vda", "RD_TIME_NS": 250_000_000, "CAPACITY": 2**30}],
    })  # fmt: skip
    vm.set_report(VmReport.RUNNING)
    return {3: host}, {12: vm}


def _nic(index: int, name: Any) -> dict[str, Any]:
    """A full vNIC detail vector."""
    keys = ("RX_BYTES", "TX_BYTES", "RX_PACKETS", "TX_PACKETS", "RX_ERRS", "TX_ERRS", "RX_DROP")
    vec: dict[str, Any] = {"ID": index, "NAME": f"NIC{index}", "TARGET": name}
    vec.update({key: 1000 * index + n for n, key in enumerate(keys)})
    vec["TX_DROP"] = "17"  # legacy text
    return vec


def _disk(index: int, name: Any) -> dict[str, Any]:
    """A full disk detail vector."""
    return {
        "ID": index, "NAME": name, "RD_REQS": 10, "WR_REQS": 20, "RD_BYTES": 4096,
        "WR_BYTES": 8192, "RD_TIME_NS": 3_000_000, "WR_TIME_NS": "4000000", "FL_REQS": 2,
        "FL_TIME_NS": 500, "CAPACITY": 10 * 2**30, "ALLOCATION": 2**30, "PHYSICAL": 2 * 2**30,
    }  # fmt: skip


def full_monitoring(vm_id: int, names: tuple[Any, ...] = ("vda", "vdb")) -> dict[str, Any]:
    """Every MONITOR key the collector knows, with every detail vector (reference §2.3)."""
    return {
        "CPU": 150.25, "MEMORY": 1_048_576, "NETRX": 10**12, "NETTX": "123",
        "DISKRDBYTES": 2**40, "DISKWRBYTES": 5, "DISKRDIOPS": 6, "DISKWRIOPS": 7,
        "STATE": 1, "REASON": "1", "CPU_TIME_NS": 10**12, "CPU_USER_NS": 6 * 10**11,
        "CPU_SYSTEM_NS": 4 * 10**11,
        "NIC": [_nic(0, f"one-{vm_id}-0"), _nic(1, f"one-{vm_id}-1")],
        "DISK": [_disk(i, name) for i, name in enumerate(names)],
        "VCPU": [{"ID": 0, "STATE": 1, "TIME_NS": 10**9, "WAIT_NS": 5},
                 {"ID": 1, "STATE": 2, "TIME_NS": 2 * 10**9, "WAIT_NS": 0}],
        "BALLOON": {"CURRENT": 1_048_576, "MAXIMUM": 2_097_152, "UNUSED": 1000, "AVAILABLE": 2000,
                    "USABLE": 1500, "RSS": 900_000, "SWAP_IN": 1, "SWAP_OUT": 2,
                    "MAJOR_FAULT": 3, "MINOR_FAULT": 4},
        "DISK_SIZE": [{"ID": 0, "SIZE": 2252}],
        "GUEST_IP_ADDRESSES": "10.0.0.1",
    }  # fmt: skip


def _host(host_id: int, state: HostState, name: Any) -> Host:
    """A host with NUMA, huge pages, two datastores, wilds, zombies and agent self-metrics."""
    return Host(
        host_id, name, state, im_mad="kvm", vm_mad="kvm", cluster_id=100,
        last_seen=1716200000.0 + host_id, last_monitored=1716200000.0 + host_id,
        system={
            "TOTALCPU": 1600, "TOTALMEMORY": 32 * 2**20,
            "DS": [{"ID": 0, "TOTAL_MB": 1000, "USED_MB": 10, "FREE_MB": 990},
                   {"ID": "1", "TOTAL_MB": "2000", "USED_MB": "20", "FREE_MB": "1980"}],
            "HUGEPAGE": [{"NODE_ID": 0, "SIZE": 2048, "PAGES": 16},
                         {"NODE_ID": 0, "SIZE": 1048576, "PAGES": 1},
                         {"NODE_ID": 1, "SIZE": 2048, "PAGES": 16}],
            "MEMORY_NODE": [{"NODE_ID": 0, "TOTAL": 16 * 2**20, "DISTANCE": "0 1"},
                            {"NODE_ID": 1, "TOTAL": 16 * 2**20, "DISTANCE": "1 0"}],
        },
        capacity=HostCapacity(
            free_cpu=1200.5, used_cpu=399.5, free_memory=10**7, used_memory=2 * 10**7,
            netrx=10**13, nettx=10**12, cpu_speed=3000,
            numa=[{"NODE_ID": 0, "MEMORY": {"FREE": 5 * 10**6, "USED": 10**7},
                   "HUGEPAGE": [{"SIZE": 2048, "FREE": 8}, {"SIZE": 1048576, "FREE": 1}]},
                  {"NODE_ID": 1, "MEMORY": {"FREE": 5 * 10**6, "USED": 10**7},
                   "HUGEPAGE": {"SIZE": 2048, "FREE": 4}}],
        ),
        wilds=[{"ID": -1, "DEPLOY_ID": "abc", "VM_NAME": "wild"}],
        zombies=[900 + host_id],
        agent={"PROBE_FAILURES": 1, "PROBE_TIMEOUTS": 2, "GROUP_SKIPS": 3, "MESSAGES_SENT": 4,
               "MESSAGES_DROPPED": 5, "SPOOL_MESSAGES": 6, "SPOOL_BYTES": 7, "HYPERVISOR_UNREACHABLE": 1,
               "CYCLE_SECONDS": [{"GROUP": "monitor_vm", "SECONDS": 0.5},
                                 {"GROUP": "beacon_host", "SECONDS": "0.01"}]},
    )  # fmt: skip


def rich_state() -> tuple[dict[int, Host], dict[int, Vm]]:
    """Hosts in every state, VMs in every reported state with every vector, hostile names."""
    hosts = {
        i: _host(i, state, HOSTILE_NAMES[i % len(HOSTILE_NAMES)])
        for i, state in enumerate(HostState)
    }
    vms: dict[int, Vm] = {}
    for i, report in enumerate(VmReport):
        names = (HOSTILE_NAMES[i], HOSTILE_NAMES[-1 - i])
        vm = Vm(100 + i, i % len(hosts), HOSTILE_NAMES[-2 - i], last_poll=1716200050.0 + i,
                monitoring=full_monitoring(100 + i, names))  # fmt: skip
        vm.set_report(report)
        vms[vm.id] = vm
    legacy = Vm(200, 1, "legacy", last_poll=1716200060.0, monitoring={
        "CPU": "0.5", "MEMORY": "2048", "NETRX": "1", "NETTX": "2", "DISKRDBYTES": "3",
        "DISKWRBYTES": "4", "DISKRDIOPS": "5", "DISKWRIOPS": "6"})  # fmt: skip
    legacy.set_report(VmReport.RUNNING)
    vms[legacy.id] = legacy
    return hosts, vms


@dataclass
class Family:
    """One family as it appears in a body."""

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    """(sample name, labels in order, value text)."""


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_ESCAPE = re.compile(r"\\(.)")


def _labels(text: str) -> dict[str, str]:
    """Label pairs, unescaped, in order; AssertionError on anything malformed."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        assert match, f"bad label set at {pos}: {text!r}"
        name, raw = match.groups()
        assert name not in found, f"label {name} twice"
        found[name] = _ESCAPE.sub(lambda m: "\n" if m[1] == "n" else m[1], raw)
        pos = match.end()
        if pos < len(text):
            assert text[pos] == ",", f"expected ',' at {pos}: {text!r}"
            pos += 1
    return found


def parse_body(body: bytes) -> list[Family]:
    """A strict reading of a body: HELP then TYPE once per family, families contiguous."""
    text = body.decode("utf-8")  # strict: invalid UTF-8 fails here
    assert text.endswith("\n")
    families: list[Family] = []
    seen: set[str] = set()
    lines = text[:-1].split("\n")
    i = 0
    while i < len(lines):
        help_line, type_line = lines[i], lines[i + 1]
        assert help_line.startswith("# HELP "), help_line
        name, _, help_text = help_line[7:].partition(" ")
        assert type_line.startswith(f"# TYPE {name} "), type_line
        assert name not in seen, f"family {name} appears twice"
        seen.add(name)
        family = Family(name, type_line.rsplit(" ", 1)[1], help_text)
        i += 2
        while i < len(lines) and not lines[i].startswith("#"):
            match = _SAMPLE.fullmatch(lines[i])
            assert match, f"bad sample line {lines[i]!r}"
            sample, labels, value = match.groups()
            family.samples.append((sample, _labels(labels or ""), value))
            i += 1
        assert family.samples, f"family {name} without samples"
        families.append(family)
    return families
