"""Real QEMU/TCG domains named ``one-<id>``: booted busybox guests and cheap BIOS-only fillers.

Every domain made here carries ``<title>onemon-test</title>`` (cleanup_all() removes only
those) and OpenNebula's ``<metadata><one:vm xmlns:one=…>`` block.

Booted guests: 128 MiB, ``type='qemu'`` (KVM cannot run Linux guests on this machine kind),
the PVH kernel + busybox initramfs from :mod:`guest_image`, booted with ``acpi=off`` and no
``<acpi/>`` feature (ACPI costs ~2 s of TCG boot; define-to-userspace is ~3 s), a virtio raw
disk, ``<interface type='ethernet'>`` whose tap ``one-<id>-0`` is put on a bridge to a private
namespace (:mod:`netns`, bridged mode) so the guest's pings reach only that namespace, a
virtio balloon with ``<stats period='2'/>`` and the serial console in a file.

Fillers: 32 MiB, no kernel, no disk, no NIC: SeaBIOS finds nothing to boot and idles
(~40 MiB RSS, <1 % CPU). Files live in ``IMAGES_DIR/<name>/``.

Trap: ``destroy`` takes ~1-2 s here because the killed QEMU stays a zombie until PID 1 (not
systemd) reaps it and libvirt waits for that; remove_many() destroys in parallel.
"""

from __future__ import annotations

import shutil
import time
import uuid as uuidlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from . import guest_image, netns
from .guest_image import MARKER, GuestAssets

IMAGES_DIR = Path("/var/lib/libvirt/images/onemon-test")
TITLE = "onemon-test"
ONE_NS = "http://opennebula.org/xmlns/libvirt/1.0"
GUEST_NET = "10.251"

Kind = Literal["booted", "filler"]

# What libvirt-python calls these flags; kept literal so this module imports without libvirt.
_UNDEFINE_FLAGS = 0x1 | 0x2 | 0x4 | 0x10  # MANAGED_SAVE | SNAPSHOTS_METADATA | NVRAM | CHECKPOINTS


@dataclass(frozen=True)
class Guest:
    """A domain started by this module and everything made for it."""

    vm_id: int
    name: str
    uuid: str
    kind: Kind
    directory: Path
    serial_log: Path | None = None
    tap: str | None = None
    ip: str | None = None
    net: netns.Netns | None = None


def domain_name(vm_id: int) -> str:
    """OpenNebula's libvirt domain name for a VM id."""
    return f"one-{vm_id}"


def one_metadata(vm_id: int, *, stime: int | None = None) -> str:
    """The ``<metadata>`` block OpenNebula's KVM driver writes (LibVirtDriverKVM.cc)."""
    now = int(time.time()) if stime is None else stime
    return (
        "<metadata>\n"
        f'    <one:vm xmlns:one="{ONE_NS}">\n'
        f"      <one:system_datastore>/var/lib/one//datastores/0/{vm_id}</one:system_datastore>\n"
        f"      <one:name>onemon-test-vm-{vm_id}</one:name>\n"
        "      <one:uname>oneadmin</one:uname>\n"
        "      <one:uid>0</one:uid>\n"
        "      <one:gname>oneadmin</one:gname>\n"
        "      <one:gid>0</one:gid>\n"
        "      <one:opennebula_version>6.10.0</one:opennebula_version>\n"
        f"      <one:stime>{now}</one:stime>\n"
        f"      <one:deployment_time>{now}</one:deployment_time>\n"
        "    </one:vm>\n"
        "  </metadata>"
    )


def _head(vm_id: int, uuid: str, memory_mib: int) -> list[str]:
    """Name, uuid, title, metadata, memory and vcpu of a test domain."""
    return [
        "<domain type='qemu'>",
        f"  <name>{domain_name(vm_id)}</name>",
        f"  <uuid>{uuid}</uuid>",
        f"  <title>{TITLE}</title>",
        f"  {one_metadata(vm_id)}",
        f"  <memory unit='MiB'>{memory_mib}</memory>",
        f"  <currentMemory unit='MiB'>{memory_mib}</currentMemory>",
        "  <vcpu>1</vcpu>",
    ]


_LIFECYCLE = [
    "  <features><apic/></features>",
    "  <clock offset='utc'/>",
    "  <on_poweroff>destroy</on_poweroff>",
    "  <on_reboot>restart</on_reboot>",
    "  <on_crash>destroy</on_crash>",
]
_BALLOON = "    <memballoon model='virtio'><stats period='2'/></memballoon>"


def booted_xml(
    vm_id: int,
    uuid: str,
    *,
    kernel: Path,
    initrd: Path,
    disk: Path,
    serial_log: Path,
    tap: str,
    cmdline: str,
    memory_mib: int = 128,
) -> str:
    """Domain XML of a booted busybox guest (kernel boot, virtio disk/NIC/balloon)."""
    q = quoteattr
    serial = q(str(serial_log))
    lines = [
        *_head(vm_id, uuid, memory_mib),
        "  <os>",
        "    <type arch='x86_64' machine='pc'>hvm</type>",
        f"    <kernel>{escape(str(kernel))}</kernel>",
        f"    <initrd>{escape(str(initrd))}</initrd>",
        f"    <cmdline>{escape(cmdline)}</cmdline>",
        "  </os>",
        *_LIFECYCLE,
        "  <devices>",
        "    <emulator>/usr/bin/qemu-system-x86_64</emulator>",
        "    <disk type='file' device='disk'>",
        "      <driver name='qemu' type='raw' cache='none'/>",
        f"      <source file={q(str(disk))}/>",
        "      <target dev='vda' bus='virtio'/>",
        "    </disk>",
        "    <interface type='ethernet'>",
        f"      <target dev={q(tap)} managed='yes'/>",
        "      <model type='virtio'/>",
        "    </interface>",
        f"    <serial type='file'><source path={serial}/><target port='0'/></serial>",
        f"    <console type='file'><source path={serial}/>"
        "<target type='serial' port='0'/></console>",
        _BALLOON,
        "  </devices>",
        "</domain>",
    ]
    return "\n".join(lines) + "\n"


def filler_xml(vm_id: int, uuid: str, *, memory_mib: int = 32) -> str:
    """Domain XML of a BIOS-only filler (nothing to boot: SeaBIOS idles)."""
    lines = [
        *_head(vm_id, uuid, memory_mib),
        "  <os>",
        "    <type arch='x86_64' machine='pc'>hvm</type>",
        "    <boot dev='hd'/>",
        "    <bios rebootTimeout='-1'/>",
        "  </os>",
        *_LIFECYCLE,
        "  <devices>",
        "    <emulator>/usr/bin/qemu-system-x86_64</emulator>",
        _BALLOON,
        "  </devices>",
        "</domain>",
    ]
    return "\n".join(lines) + "\n"


def _launch(conn: Any, xml: str, persistent: bool) -> Any:
    """Define+start (persistent) or create (transient, like OpenNebula) a domain."""
    if persistent:
        dom = conn.defineXML(xml)
        dom.create()
        return dom
    return conn.createXML(xml, 0)


def start_booted(
    conn: Any,
    vm_id: int,
    *,
    assets: GuestAssets | None = None,
    memory_mib: int = 128,
    disk_mib: int = 16,
    persistent: bool = True,
) -> Guest:
    """Define and start a booted guest ``one-<vm_id>`` with its private network namespace."""
    name = domain_name(vm_id)
    remove_by_name(conn, name)
    assets = assets or guest_image.build_assets()
    directory = IMAGES_DIR / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # Per-guest copies: libvirt's DAC driver relabels kernel/initrd, so never share the cache.
    kernel = Path(shutil.copy2(assets.kernel, directory / assets.kernel.name))
    initrd = Path(shutil.copy2(assets.initrd, directory / "initrd.gz"))
    disk = guest_image.make_raw_disk(directory / "disk.raw", disk_mib)
    serial_log = directory / "serial.log"
    tap = f"{name}-0"
    index = vm_id % 254 + 1
    try:
        net = netns.create(
            f"{netns.PREFIX}vm{vm_id}", index, net=GUEST_NET, bridge=f"onebrv{vm_id}"[:15]
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    uuid = str(uuidlib.uuid4())
    cmdline = (
        f"console=ttyS0 quiet acpi=off onemon.name={name} onemon.ip={net.guest_ip}/24 "
        f"onemon.peer={net.ns_ip}"
    )
    xml = booted_xml(
        vm_id,
        uuid,
        kernel=kernel,
        initrd=initrd,
        disk=disk,
        serial_log=serial_log,
        tap=tap,
        cmdline=cmdline,
        memory_mib=memory_mib,
    )
    guest = Guest(vm_id, name, uuid, "booted", directory, serial_log, tap, net.guest_ip, net)
    try:
        _launch(conn, xml, persistent)
        netns.enslave(net.bridge or "", tap)
    except BaseException:
        remove(conn, guest)
        raise
    return guest


def start_filler(conn: Any, vm_id: int, *, memory_mib: int = 32, persistent: bool = True) -> Guest:
    """Define and start a BIOS-only filler ``one-<vm_id>``."""
    name = domain_name(vm_id)
    remove_by_name(conn, name)
    uuid = str(uuidlib.uuid4())
    guest = Guest(vm_id, name, uuid, "filler", IMAGES_DIR / name)
    try:
        _launch(conn, filler_xml(vm_id, uuid, memory_mib=memory_mib), persistent)
    except BaseException:
        remove(conn, guest)
        raise
    return guest


def serial_text(guest: Guest) -> str:
    """What the guest has written to its serial console so far."""
    if guest.serial_log is None:
        return ""
    try:
        return guest.serial_log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_serial(guest: Guest, marker: str = MARKER, timeout: float = 90.0) -> float:
    """Wait until marker appears on the serial console; return the seconds waited."""
    started = time.monotonic()
    while marker not in serial_text(guest):
        if time.monotonic() - started > timeout:
            tail = serial_text(guest)[-2000:]
            msg = f"{guest.name}: no {marker!r} on serial after {timeout:.0f}s; log tail:\n{tail}"
            raise TimeoutError(msg)
        time.sleep(0.1)
    return time.monotonic() - started


def _lookup(conn: Any, name: str) -> Any:
    """The domain called name, or None (listing, so libvirt prints no lookup error)."""
    for dom in conn.listAllDomains(0):
        if dom.name() == name:
            return dom
    return None


def remove_by_name(conn: Any, name: str) -> None:
    """Destroy and undefine a test domain by name (refuses domains not titled onemon-test)."""
    import libvirt

    dom = _lookup(conn, name)
    if dom is None:
        return
    if _title(dom) != TITLE:
        msg = f"domain {name} exists and is not a test domain (no <title>{TITLE}</title>)"
        raise RuntimeError(msg)
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    try:
        if dom.isPersistent():
            dom.undefineFlags(_UNDEFINE_FLAGS)
    except libvirt.libvirtError:
        pass


def _title(dom: Any) -> str | None:
    """A domain's <title>, or None."""
    import libvirt

    try:
        return str(dom.metadata(libvirt.VIR_DOMAIN_METADATA_TITLE, None))
    except libvirt.libvirtError:
        return None


def remove(conn: Any, guest: Guest) -> None:
    """Destroy + undefine the guest, delete its namespace/bridge and its files."""
    remove_by_name(conn, guest.name)
    if guest.net is not None:
        netns.delete(guest.net)
    shutil.rmtree(guest.directory, ignore_errors=True)


def remove_many(conn: Any, guests: Iterable[Guest]) -> None:
    """remove() several guests concurrently (each destroy waits ~1 s for PID 1 to reap qemu)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(remove, conn, g) for g in guests]:
            future.result()


def cleanup_all(conn: Any) -> list[str]:
    """Remove every domain titled onemon-test, their namespaces and IMAGES_DIR."""
    removed = [dom.name() for dom in conn.listAllDomains(0) if _title(dom) == TITLE]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(remove_by_name, conn, name) for name in removed]:
            future.result()
    netns.delete_prefix(f"{netns.PREFIX}vm")
    for bridge in Path("/sys/class/net").glob("onebrv*"):
        netns.delete_link(bridge.name)
    shutil.rmtree(IMAGES_DIR, ignore_errors=True)
    return removed
