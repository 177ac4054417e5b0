"""Plain LXC (``lxc-start``, not libvirt-lxc) busybox containers named ``one-<id>``.

The rootfs comes from ``lxc-create -t busybox``; the config is then replaced by ours: no
lxcbr0 (it needs the lxc-net service), ``lxc.net.0.type = veth`` with
``lxc.net.0.veth.pair = one-<id>-0`` on a bridge to a private namespace (:mod:`netns`), the
container at ``10.252.<n>.3`` pinging the namespace at ``.2``; AppArmor unconfined; init is a
busybox loop (CPU burn, tmpfs memory, direct-I/O disk writes, ping) that appends one line per
second to ``rootfs/tmp/onemon-ticks``.

Where the agent's LXC probe finds the numbers on this hybrid-cgroup host (Debian 12, LXC
5.0.2; ``<name>`` = ``one-<id>``; the ``lxc.monitor.<name>`` groups hold LXC's monitor, not the
container):

* CPU, cgroup v1: ``/sys/fs/cgroup/cpuacct/lxc.payload.<name>/cpuacct.usage`` (ns, cumulative),
  ``cpuacct.stat`` (user/system, USER_HZ ticks); throttling in
  ``/sys/fs/cgroup/cpu/lxc.payload.<name>/cpu.stat``.
* CPU, cgroup v2: ``/sys/fs/cgroup/unified/lxc.payload.<name>/cpu.stat`` (``usage_usec``,
  ``user_usec``, ``system_usec``); it is there although the unified hierarchy has no
  controllers enabled, so there is *no* ``memory.current`` or ``io.stat`` under unified.
* Memory, v1: ``/sys/fs/cgroup/memory/lxc.payload.<name>/memory.usage_in_bytes`` (includes
  page cache), ``memory.stat`` (``rss``, ``cache``, ``shmem``, …), ``memory.limit_in_bytes``.
* Block I/O, v1: ``/sys/fs/cgroup/blkio/lxc.payload.<name>/blkio.throttle.io_service_bytes``
  and ``io_serviced``. **Trap:** on this kernel they stay ``Total 0`` unless a throttle limit
  is set for the device, so the config sets a huge (1 TiB/s) read/write bps limit on the
  rootfs's device to make them count. ``blkio.bfq.*`` stay 0 (scheduler is mq-deadline).
* Pids: ``/sys/fs/cgroup/pids/lxc.payload.<name>/pids.current``; processes in ``cgroup.procs``.
* Network: the host end ``one-<id>-0`` in the root namespace:
  ``/sys/class/net/one-<id>-0/statistics/{rx,tx}_bytes`` (host view: the host end's rx is the
  container's tx; ``lxc-info`` prints the container's view, i.e. swapped), also
  ``/proc/net/dev``.
* Init pid: ``lxc-info -n <name> -p -H``; state: ``lxc-info -n <name> -s -H``.

On a pure cgroup v2 host (``/sys/fs/cgroup/cgroup.controllers`` exists: a stock systemd
machine, not this one) everything is under ``/sys/fs/cgroup/lxc.payload.<name>/``
(``cpu.stat``, ``memory.current``, ``io.stat``); the config and helpers below switch to that.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import _proc, netns

LXC_PATH = Path("/var/lib/lxc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PURE_V2 = (CGROUP_ROOT / "cgroup.controllers").exists()
LXC_NET = "10.252"
TITLE_FILE = "onemon-test"  # marker file next to config: cleanup_all() removes only those
MARKER = "ONEMON-LXC-UP"

LOOP_SCRIPT = f"""#!/bin/sh
trap 'exit 0' TERM USR1 INT
peer="$1"
echo "{MARKER}" >> /tmp/onemon-ticks
n=0
while true; do
    n=$((n + 1))
    i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done
    dd if=/dev/zero of=/tmp/disk bs=64k count=8 oflag=direct 2>/dev/null
    dd if=/dev/zero of=/dev/shm/mem bs=64k count=$(((n % 8) * 16)) 2>/dev/null
    [ -n "$peer" ] && ping -c 1 -W 1 "$peer" >/dev/null 2>&1
    echo "tick $n" >> /tmp/onemon-ticks
    sleep 1
done
"""


@dataclass(frozen=True)
class Container:
    """A container made by create(), its namespace and its stats locations."""

    vm_id: int
    name: str
    directory: Path
    veth: str
    ip: str
    net: netns.Netns

    @property
    def ticks_file(self) -> Path:
        """The file the container's loop appends to every second."""
        return self.directory / "rootfs" / "tmp" / "onemon-ticks"

    def cgroup_v1(self, controller: str) -> Path:
        """The container's cgroup v1 directory for a controller (cpuacct, memory, …)."""
        return CGROUP_ROOT / controller / f"lxc.payload.{self.name}"

    @property
    def cgroup_v2(self) -> Path:
        """The container's cgroup v2 directory (``unified/`` on a hybrid host)."""
        base = CGROUP_ROOT if PURE_V2 else CGROUP_ROOT / "unified"
        return base / f"lxc.payload.{self.name}"

    def cpu_usage_ns(self) -> int:
        """Cumulative CPU time of the container (v1 cpuacct.usage, else v2 usage_usec)."""
        if not PURE_V2:
            return int((self.cgroup_v1("cpuacct") / "cpuacct.usage").read_text())
        for line in (self.cgroup_v2 / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) * 1000
        msg = f"no usage_usec in {self.cgroup_v2 / 'cpu.stat'}"
        raise RuntimeError(msg)

    def memory_usage_bytes(self) -> int:
        """Current memory use (v1 memory.usage_in_bytes, else v2 memory.current)."""
        if PURE_V2:
            return int((self.cgroup_v2 / "memory.current").read_text())
        return int((self.cgroup_v1("memory") / "memory.usage_in_bytes").read_text())

    def veth_bytes(self) -> tuple[int, int]:
        """(rx, tx) byte counters of the host end of the veth (host view)."""
        stats = Path("/sys/class/net", self.veth, "statistics")
        return int((stats / "rx_bytes").read_text()), int((stats / "tx_bytes").read_text())

    def init_pid(self) -> int:
        """The pid (host view) of the container's init."""
        return int(_proc.out(["lxc-info", "-n", self.name, "-p", "-H"]))

    def state(self) -> str:
        """LXC's state word (RUNNING, STOPPED, …)."""
        return _proc.out(["lxc-info", "-n", self.name, "-s", "-H"])


def container_name(vm_id: int) -> str:
    """OpenNebula's name for an LXC VM id."""
    return f"one-{vm_id}"


def _device_of(path: Path) -> str:
    """major:minor of the block device holding path."""
    dev = path.stat().st_dev
    return f"{os.major(dev)}:{os.minor(dev)}"


def config_text(name: str, directory: Path, veth: str, bridge: str, ip: str, peer: str) -> str:
    """The LXC config we use instead of the busybox template's."""
    dev = _device_of(directory)
    huge = 1 << 40
    if PURE_V2:
        limits = ["lxc.cgroup2.memory.max = 128M"]
    else:
        limits = [
            "lxc.cgroup.memory.limit_in_bytes = 128M",
            # without a throttle limit, v1 blkio.throttle.* counters stay 0 on this kernel
            f"lxc.cgroup.blkio.throttle.read_bps_device = {dev} {huge}",
            f"lxc.cgroup.blkio.throttle.write_bps_device = {dev} {huge}",
        ]
    return "\n".join(
        [
            f"lxc.rootfs.path = dir:{directory / 'rootfs'}",
            f"lxc.uts.name = {name}",
            "lxc.net.0.type = veth",
            f"lxc.net.0.veth.pair = {veth}",
            f"lxc.net.0.link = {bridge}",
            "lxc.net.0.flags = up",
            f"lxc.net.0.ipv4.address = {ip}/24",
            "lxc.apparmor.profile = unconfined",
            "lxc.autodev = 1",
            "lxc.pty.max = 1",
            "lxc.tty.max = 0",
            "lxc.cap.drop = sys_module mac_admin mac_override sys_time",
            "lxc.mount.auto = cgroup:mixed proc:mixed sys:ro",
            "lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0",
            *limits,
            f"lxc.init.cmd = /usr/local/bin/onemon-loop {peer}",
            "lxc.signal.halt = SIGTERM",
            f"lxc.log.file = {directory / 'lxc.log'}",
            "lxc.log.level = WARN",
            "",
        ]
    )


def create(vm_id: int, *, start: bool = True, timeout: float = 15.0) -> Container:
    """Create (and by default start) busybox container one-<vm_id> on its own namespace."""
    name = container_name(vm_id)
    destroy(name)
    directory = LXC_PATH / name
    index = vm_id % 254 + 1
    net = netns.create(f"{netns.PREFIX}ct{vm_id}", index, net=LXC_NET, bridge=f"onebrc{vm_id}"[:15])
    box = Container(vm_id, name, directory, f"{name}-0", net.guest_ip, net)
    try:
        _proc.run(["lxc-create", "-n", name, "-t", "busybox"], timeout=120)
        (directory / TITLE_FILE).write_text(f"{name}\n")
        script = directory / "rootfs" / "usr" / "local" / "bin" / "onemon-loop"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(LOOP_SCRIPT)
        script.chmod(0o755)
        (directory / "config").write_text(
            config_text(name, directory, box.veth, net.bridge or "", box.ip, net.ns_ip)
        )
        if start:
            start_container(box, timeout)
    except BaseException:
        remove(box)
        raise
    return box


def start_container(box: Container, timeout: float = 15.0) -> None:
    """lxc-start the container and wait until its loop has written its first tick."""
    _proc.run(["lxc-start", "-n", box.name], timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if MARKER in box.ticks_file.read_text():
                return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    log = (box.directory / "lxc.log").read_text(errors="replace")[-2000:]
    msg = f"{box.name}: loop did not start within {timeout:.0f}s; lxc.log tail:\n{log}"
    raise TimeoutError(msg)


def stop(name: str, timeout: float = 15.0) -> None:
    """Kill a container (lxc-stop -k) if it runs."""
    if (LXC_PATH / name / "config").exists():
        _proc.run(["lxc-stop", "-k", "-n", name], check=False, timeout=timeout)


def destroy(name: str) -> None:
    """Stop and destroy a test container (refuses containers this module did not make)."""
    directory = LXC_PATH / name
    if not directory.exists():
        return
    if not (directory / TITLE_FILE).exists() and (directory / "config").exists():
        msg = f"container {name} exists and is not a test container (no {TITLE_FILE} file)"
        raise RuntimeError(msg)
    stop(name)
    _proc.run(["lxc-destroy", "-n", name], check=False, timeout=60)
    shutil.rmtree(directory, ignore_errors=True)


def remove(box: Container) -> None:
    """Stop and destroy the container and delete its namespace and bridge."""
    destroy(box.name)
    netns.delete(box.net)
    netns.delete_link(box.veth)


def cleanup_all() -> list[str]:
    """Destroy every container this module made (marker file) and their namespaces."""
    gone = []
    if LXC_PATH.is_dir():
        for marker in sorted(LXC_PATH.glob(f"*/{TITLE_FILE}")):
            destroy(marker.parent.name)
            gone.append(marker.parent.name)
    netns.delete_prefix(f"{netns.PREFIX}ct")
    for bridge in Path("/sys/class/net").glob("onebrc*"):
        netns.delete_link(bridge.name)
    return gone
