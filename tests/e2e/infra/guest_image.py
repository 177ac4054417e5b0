"""Build and cache a tiny TCG guest: Debian kernel + busybox initramfs + raw disk images.

Layout under ``CACHE_DIR`` (default ``/var/cache/onemon-test``, env ``ONEMON_TEST_CACHE``)::

    kernel/PACKAGE       the kernel package the files came from (linux-image-6.1.0-…-amd64)
    kernel/vmlinuz       its bzImage
    kernel/vmlinux       the ELF inside it, when it has a PVH entry (booted instead: 2 s, not 6)
    kernel/mods/*.ko     the virtio modules the init loads, uncompressed
    initrd-<hash>.gz     newc cpio (gzip) of busybox-static + /init + mods; <hash> covers all

The kernel is fetched with ``apt-get download`` (about 70 MB, once) and only the needed files
are taken out of ``dpkg-deb --fsys-tarfile``. Under TCG, decompressing the xz bzImage costs
about 4 s of every boot, so the ELF payload is unpacked once here and, since Debian's kernel
has a PVH entry note (CONFIG_PVH), QEMU boots it directly.

The init prints ``MARKER`` on the serial console once userspace runs, then loops every
second: writes and reads /dev/vda (direct I/O), burns a little CPU, grows and shrinks a tmpfs
file (memory), pings its peer (``onemon.peer=`` on the kernel command line, address
``onemon.ip=``) so cpu, balloon, net and block counters all move.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import _proc

CACHE_DIR = Path(os.environ.get("ONEMON_TEST_CACHE", "/var/cache/onemon-test"))
BUSYBOX = Path("/bin/busybox")
MARKER = "ONEMON-GUEST-UP"
TICK = "ONEMON-GUEST-TICK"
KERNEL_METAPACKAGES = ("linux-image-amd64", "linux-image-generic")
# Load order matters: virtio_ring before virtio, the pci transports before virtio_pci, ...
MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_blk",
    "virtio_balloon",
)

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=32m tmpfs /tmp
exec </dev/console >/dev/console 2>&1
for m in {" ".join(MODULES)}; do
    [ -e /mods/$m.ko ] && insmod /mods/$m.ko
done
ip=""; peer=""; name=guest
for a in $(cat /proc/cmdline); do
    case "$a" in
        onemon.ip=*) ip="${{a#onemon.ip=}}" ;;
        onemon.peer=*) peer="${{a#onemon.peer=}}" ;;
        onemon.name=*) name="${{a#onemon.name=}}" ;;
    esac
done
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    [ -n "$ip" ] && ip addr add "$ip" dev eth0
fi
disk=no; [ -b /dev/vda ] && disk=yes
echo "{MARKER} name=$name ip=$ip peer=$peer disk=$disk uptime=$(cut -d' ' -f1 /proc/uptime)"
n=0
while true; do
    n=$((n + 1))
    if [ "$disk" = yes ]; then
        dd if=/dev/zero of=/dev/vda bs=64k count=4 seek=$((n % 32)) oflag=direct 2>/dev/null
        dd if=/dev/vda of=/dev/null bs=64k count=4 skip=$(((n * 7) % 32)) iflag=direct 2>/dev/null
    fi
    i=0; while [ $i -lt 200 ]; do i=$((i + 1)); done
    dd if=/dev/zero of=/tmp/mem bs=64k count=$(((n % 8) * 16)) 2>/dev/null
    if [ -n "$peer" ]; then
        ping -c 1 -W 1 "$peer" >/dev/null 2>&1
    elif [ -e /sys/class/net/eth0 ]; then
        ping -b -c 1 -W 1 255.255.255.255 >/dev/null 2>&1
    fi
    [ $((n % 10)) -eq 0 ] && echo "{TICK} $n"
    sleep 1
done
"""


@dataclass(frozen=True)
class GuestAssets:
    """A bootable kernel and initramfs pair from the cache."""

    kernel: Path
    initrd: Path
    kernel_package: str


@contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache so concurrent builders do not collide."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def kernel_packages() -> list[str]:
    """The concrete kernel package(s) to download (apt-get update once if apt knows none)."""
    try:
        return _kernel_packages()
    except RuntimeError:
        _proc.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q", "update"], timeout=600)
        return _kernel_packages()


def _kernel_packages() -> list[str]:
    """The kernel image package apt would install, plus Ubuntu's separate modules package."""
    for meta in KERNEL_METAPACKAGES:
        proc = _proc.run(["apt-cache", "depends", meta], check=False)
        if proc.returncode != 0:
            continue
        deps = [
            line.split(":", 1)[1].strip()
            for line in proc.stdout.decode().splitlines()
            if line.strip().startswith("Depends:")
        ]
        images = [d for d in deps if d.startswith("linux-image-") and not d.startswith("<")]
        if images:
            image = images[0]
            mods = _proc.run(["apt-cache", "depends", image], check=False).stdout.decode()
            extra = [
                line.split(":", 1)[1].strip()
                for line in mods.splitlines()
                if line.strip().startswith("Depends:") and "linux-modules-" in line
            ]
            return [image, *extra[:1]]
    msg = "no kernel package found by apt-cache (tried linux-image-amd64, linux-image-generic)"
    raise RuntimeError(msg)


def _module_name(member: PurePosixPath) -> str | None:
    """The module name of a kernel module path we want, else None."""
    name = member.name
    for suffix in (".ko", ".ko.xz", ".ko.zst"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem in MODULES else None
    return None


def _decompress(name: str, data: bytes) -> bytes:
    """Uncompressed module bytes (busybox insmod takes plain .ko only)."""
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".zst"):
        return _proc.run(["zstd", "-dc"], input_bytes=data).stdout
    return data


def _extract_deb(deb: Path, kdir: Path) -> None:
    """Stream a kernel .deb's data tar and keep only vmlinuz and the wanted modules."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile():
                    continue
                if path.parent.name == "boot" and path.name.startswith("vmlinuz-"):
                    target = kdir / "vmlinuz"
                    data = _read_member(tar, member)
                elif (mod := _module_name(path)) is not None and "kernel" in path.parts:
                    target = kdir / "mods" / f"{mod}.ko"
                    data = _decompress(path.name, _read_member(tar, member))
                else:
                    continue
                target.write_bytes(data)
    if proc.returncode != 0:
        msg = f"dpkg-deb --fsys-tarfile {deb} exited {proc.returncode}"
        raise RuntimeError(msg)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The bytes of one regular tar member."""
    fh = tar.extractfile(member)
    assert fh is not None
    return fh.read()


def _has_pvh_note(elf: bytes) -> bool:
    """Whether a 64-bit ELF has the Xen PHYS32_ENTRY note QEMU needs to boot it (PVH)."""
    if elf[:5] != b"\x7fELF\x02":
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, _va, _pa, filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize
        )
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage (xz or gzip payload), or None if not found."""
    for magic, make in (
        (b"\xfd7zXZ\x00", lzma.LZMADecompressor),
        (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
    ):
        start = bzimage.find(magic)
        while start != -1:
            try:
                elf = make().decompress(bzimage[start:])
            except (lzma.LZMAError, zlib.error):
                elf = b""
            if elf.startswith(b"\x7fELF"):
                return elf
            start = bzimage.find(magic, start + 1)
    return None


def _ensure_pvh(kdir: Path) -> None:
    """Unpack kdir/vmlinux from the bzImage once (or note NO_PVH when it cannot be booted)."""
    if (kdir / "vmlinux").is_file() or (kdir / "NO_PVH").is_file():
        return
    elf = extract_vmlinux((kdir / "vmlinuz").read_bytes())
    if elf is not None and _has_pvh_note(elf):
        tmp = kdir / "vmlinux.tmp"
        tmp.write_bytes(elf)
        tmp.rename(kdir / "vmlinux")
    else:
        (kdir / "NO_PVH").write_text("no PVH ELF in the bzImage: booting vmlinuz\n")


def _fetch_kernel(cache_dir: Path) -> Path:
    """Download and unpack the kernel into cache_dir/kernel unless already there."""
    kdir = cache_dir / "kernel"
    if (kdir / "vmlinuz").is_file() and (kdir / "PACKAGE").is_file():
        return kdir
    packages = kernel_packages()
    tmp = Path(tempfile.mkdtemp(prefix="kernel-", dir=cache_dir))
    try:
        (tmp / "mods").mkdir()
        debdir = tmp / "debs"
        debdir.mkdir()
        os.chmod(debdir, 0o777)  # apt-get download drops to user _apt when it can
        _proc.run(["apt-get", "download", *packages], cwd=debdir, timeout=600)
        for deb in sorted(debdir.glob("*.deb")):
            _extract_deb(deb, tmp)
        shutil.rmtree(debdir)
        if not (tmp / "vmlinuz").is_file():
            msg = f"no /boot/vmlinuz-* in {packages}"
            raise RuntimeError(msg)
        (tmp / "PACKAGE").write_text(" ".join(packages) + "\n")
        os.chmod(tmp, 0o755)
        if kdir.exists():
            shutil.rmtree(kdir)
        tmp.rename(kdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return kdir


def _newc_entry(
    out: io.BytesIO,
    ino: int,
    name: str,
    mode: int,
    data: bytes = b"",
    rdev: tuple[int, int] = (0, 0),
) -> None:
    """Append one entry to a newc cpio stream (root-owned, mtime 0: reproducible)."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    out.write(b"070701" + b"".join(f"{f:08x}".encode() for f in fields))
    out.write(encoded)
    out.write(b"\0" * (-out.tell() % 4))
    out.write(data)
    out.write(b"\0" * (-out.tell() % 4))


def _initrd_bytes(kdir: Path) -> bytes:
    """The uncompressed newc archive: dirs, /dev/console, busybox, /init, modules."""
    out = io.BytesIO()
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        (d, 0o040755, b"", (0, 0)) for d in ("bin", "dev", "proc", "sys", "tmp", "mods")
    ]
    entries.append(("dev/console", 0o020600, b"", (5, 1)))
    entries.append(("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)))
    entries.append(("init", 0o100755, INIT_SCRIPT.encode(), (0, 0)))
    for ko in sorted((kdir / "mods").glob("*.ko")):
        entries.append((f"mods/{ko.name}", 0o100644, ko.read_bytes(), (0, 0)))
    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        _newc_entry(out, ino, name, mode, data, rdev)
    _newc_entry(out, 0, "TRAILER!!!", 0)
    return out.getvalue()


def build_assets(cache_dir: Path = CACHE_DIR) -> GuestAssets:
    """Return the cached kernel + initramfs, building whatever is missing (idempotent)."""
    with _locked(cache_dir):
        kdir = _fetch_kernel(cache_dir)
        _ensure_pvh(kdir)
        raw = _initrd_bytes(kdir)
        pvh = kdir / "vmlinux"
        kernel = pvh if pvh.is_file() else kdir / "vmlinuz"
        digest = hashlib.sha256(raw + (kdir / "PACKAGE").read_bytes()).hexdigest()[:12]
        initrd = cache_dir / f"initrd-{digest}.gz"
        if not initrd.is_file():
            for old in cache_dir.glob("initrd-*.gz"):
                old.unlink()
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(gzip.compress(raw, compresslevel=6, mtime=0))
            tmp.rename(initrd)
        return GuestAssets(
            kernel=kernel,
            initrd=initrd,
            kernel_package=(kdir / "PACKAGE").read_text().strip(),
        )


def make_raw_disk(path: Path, size_mib: int = 16) -> Path:
    """Create a sparse raw disk image of size_mib at path (replacing any old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.truncate(size_mib * 1024 * 1024)
    return path


def main() -> None:
    """Build (or confirm) the cached guest assets and print where they are."""
    assets = build_assets()
    print(f"kernel {assets.kernel} ({assets.kernel_package})\ninitrd {assets.initrd}")


if __name__ == "__main__":
    main()
