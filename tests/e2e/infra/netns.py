"""Network namespaces joined to the root namespace by veth pairs, plus loss without netem.

Addressing: namespace ``index`` uses ``<net>.<index>.0/24`` (default net ``10.250``); the
namespace end of the veth is ``.2``, the root end is ``.1``. In *bridged* mode the root end
gets no address and is enslaved to a new bridge instead, so a guest tap or an LXC veth put on
that bridge reaches only the namespace (the guest/container takes ``.3``): this keeps the tap in
the root namespace, where libvirt reads its counters (a tap moved into a namespace loses
``net.N.rx/tx`` in ``getAllDomainStats``). IPv6 is disabled on every link made here, and no
routes are added, so traffic stays on these links. The kernel has no netem: loss is simulated
with ``iptables -m statistic`` or ``nft numgen`` inside the namespace; delay needs a userspace
proxy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import _proc

DEFAULT_NET = "10.250"
PREFIX = "onemon-"


@dataclass(frozen=True)
class Netns:
    """One namespace made by create(); names of both veth ends and their addresses."""

    name: str
    index: int
    host_if: str
    ns_if: str
    ns_ip: str
    host_ip: str | None
    bridge: str | None
    net: str = DEFAULT_NET

    @property
    def guest_ip(self) -> str:
        """The address for a guest/container put on the bridge (bridged mode)."""
        return f"{self.net}.{self.index}.3"

    def argv(self, *cmd: str) -> list[str]:
        """The argument list that runs cmd inside this namespace."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        """Run cmd inside the namespace and capture its output."""
        return _proc.run(self.argv(*cmd), check=check, timeout=timeout)

    def popen(self, *cmd: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start cmd inside the namespace (kwargs go to subprocess.Popen)."""
        return subprocess.Popen(self.argv(*cmd), **kwargs)


def _ip(*args: str) -> None:
    """Run an ``ip`` command, raising on failure."""
    _proc.run(["ip", *args])


def _no_ipv6(ifname: str, ns: str | None = None) -> None:
    """Disable IPv6 on one interface (root namespace, or inside ns)."""
    key = f"net.ipv6.conf.{ifname}.disable_ipv6"
    if ns is None:
        path = Path("/proc/sys/net/ipv6/conf") / ifname / "disable_ipv6"
        if path.exists():
            path.write_text("1\n")
    else:
        _proc.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}=1"], check=False)


def exists(name: str) -> bool:
    """Whether a named network namespace exists."""
    return Path("/run/netns", name).exists()


def link_exists(ifname: str) -> bool:
    """Whether an interface of that name exists in the root namespace."""
    return Path("/sys/class/net", ifname).exists()


def create(name: str, index: int, *, net: str = DEFAULT_NET, bridge: str | None = None) -> Netns:
    """Create namespace name joined to the root by a veth pair (see module doc for addresses)."""
    if not 1 <= index <= 254:
        msg = f"netns index {index} outside 1..254"
        raise ValueError(msg)
    tag = f"{index}" if net == DEFAULT_NET else f"{net.rsplit('.', 1)[-1]}x{index}"
    ns = Netns(
        name=name,
        index=index,
        host_if=f"onv{tag}h",
        ns_if=f"onv{tag}n",
        ns_ip=f"{net}.{index}.2",
        host_ip=None if bridge else f"{net}.{index}.1",
        bridge=bridge,
        net=net,
    )
    delete(ns)  # leftovers of an earlier crashed run
    try:
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if, "netns", name)
        _no_ipv6(ns.host_if)
        _no_ipv6(ns.ns_if, name)
        _ip("-n", name, "addr", "add", f"{ns.ns_ip}/24", "dev", ns.ns_if)
        _ip("-n", name, "link", "set", ns.ns_if, "up")
        if bridge is None:
            _ip("addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
        else:
            _ip("link", "add", bridge, "type", "bridge")
            _no_ipv6(bridge)
            _ip("link", "set", bridge, "up")
            _ip("link", "set", ns.host_if, "master", bridge)
        _ip("link", "set", ns.host_if, "up")
    except BaseException:
        delete(ns)
        raise
    return ns


def create_many(
    count: int, *, prefix: str = f"{PREFIX}ns", first_index: int = 1, net: str = DEFAULT_NET
) -> list[Netns]:
    """Create count namespaces named <prefix><index>, indices from first_index."""
    made: list[Netns] = []
    try:
        for i in range(first_index, first_index + count):
            made.append(create(f"{prefix}{i}", i, net=net))
    except BaseException:
        for ns in made:
            delete(ns)
        raise
    return made


def enslave(bridge: str, ifname: str) -> None:
    """Put a root-namespace interface (a guest tap, an LXC veth) on bridge, IPv6 off."""
    _no_ipv6(ifname)
    _ip("link", "set", ifname, "master", bridge)
    _ip("link", "set", ifname, "up")


def delete(ns: Netns | str) -> None:
    """Delete a namespace (and its root-side veth and bridge when known); ignore missing."""
    # Root-side links first: namespace teardown is asynchronous, link deletion is not.
    if isinstance(ns, Netns):
        name = ns.name
        links = [ns.host_if, ns.bridge or ""]
    else:
        name = ns
        links = [f"{i[:-1]}h" for i in _ns_links(name) if i.startswith("onv") and i.endswith("n")]
    for ifname in links:
        if ifname:
            delete_link(ifname)
    if exists(name):
        _proc.run(["ip", "netns", "del", name], check=False)


def _ns_links(name: str) -> list[str]:
    """Interface names inside a namespace (empty when it does not exist)."""
    if not exists(name):
        return []
    proc = _proc.run(["ip", "-n", name, "-o", "link", "show"], check=False)
    return [
        line.split(":")[1].strip().split("@")[0]
        for line in proc.stdout.decode().splitlines()
        if line.count(":") >= 2
    ]


def delete_link(ifname: str) -> None:
    """Delete a root-namespace interface (veth end, bridge) if it exists."""
    if link_exists(ifname):
        _proc.run(["ip", "link", "del", ifname], check=False)


def delete_prefix(prefix: str = PREFIX) -> list[str]:
    """Delete every namespace whose name starts with prefix; return their names."""
    gone = []
    run_netns = Path("/run/netns")
    if run_netns.is_dir():
        for entry in sorted(run_netns.iterdir()):
            if entry.name.startswith(prefix):
                delete(entry.name)
                gone.append(entry.name)
    return gone


def add_loss(
    ns: Netns,
    probability: float,
    *,
    proto: Literal["udp", "tcp"] = "udp",
    dport: int | None = None,
    direction: Literal["in", "out"] = "in",
    tool: Literal["iptables", "nft"] = "iptables",
) -> None:
    """Drop a random share of packets entering (or leaving) the namespace."""
    if not 0.0 <= probability <= 1.0:
        msg = f"probability {probability} outside 0..1"
        raise ValueError(msg)
    if tool == "iptables":
        chain = "INPUT" if direction == "in" else "OUTPUT"
        rule: list[str] = ["-p", proto]
        if dport is not None:
            rule += ["--dport", str(dport)]
        rule += ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.4f}"]
        ns.run("iptables", "-w", "-A", chain, *rule, "-j", "DROP")
        return
    hook = "input" if direction == "in" else "output"
    match = f"{proto} dport {dport}" if dport is not None else f"meta l4proto {proto}"
    percent = round(probability * 100)
    script = (
        "table inet onemon_loss {\n"
        f"  chain {hook} {{ type filter hook {hook} priority 0; policy accept;\n"
        f"    {match} numgen random mod 100 < {percent} drop\n"
        "  }\n}\n"
    )
    _proc.run(ns.argv("nft", "-f", "-"), input_bytes=script.encode())


def clear_loss(ns: Netns) -> None:
    """Remove every loss rule add_loss() put in the namespace."""
    ns.run("iptables", "-w", "-F", "INPUT", check=False)
    ns.run("iptables", "-w", "-F", "OUTPUT", check=False)
    ns.run("nft", "delete", "table", "inet", "onemon_loss", check=False)


def run_in(name: str, argv: Sequence[str], *, timeout: float = 60.0) -> str:
    """Run argv inside the named namespace and return its stdout."""
    return _proc.out(["ip", "netns", "exec", name, *argv], timeout=timeout)
