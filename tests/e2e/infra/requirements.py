"""The one place deciding whether an e2e capability can run here, and saying why not.

``skip_reason("libvirt", "guest")`` returns None when everything needed is present, else one
sentence naming every missing piece; fixtures pass it to ``pytest.skip`` (never skip
silently). Set ``ONEMON_E2E=0`` to skip the whole tier on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Final, Literal

Capability = Literal["libvirt", "guest", "lxc", "netns", "nft", "prometheus"]

BINARIES: Final[dict[Capability, tuple[str, ...]]] = {
    "libvirt": ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd", "virsh", "qemu-system-x86_64"),
    "guest": ("apt-get", "apt-cache", "dpkg-deb", "/bin/busybox"),
    "lxc": ("lxc-create", "lxc-start", "lxc-stop", "lxc-destroy", "lxc-info", "ip", "/bin/busybox"),
    "netns": ("ip", "iptables", "sysctl"),
    "nft": ("nft",),
    "prometheus": ("prometheus", "promtool"),
}
SETUP_HINT = "scripts/setup-system.sh installs them"


def _present(binary: str) -> bool:
    """Whether a binary (absolute path or PATH name, sbin dirs included) is executable."""
    if binary.startswith("/"):
        return os.access(binary, os.X_OK)
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(binary, path=path) is not None


def _static(path: Path) -> bool:
    """Whether an ELF binary is statically linked (no program interpreter)."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return False
    return head.startswith(b"\x7fELF") and b"/ld-linux" not in head and b"/ld64" not in head


def _cgroups_usable() -> bool:
    """Whether container stats have a home: cgroup v1 cpuacct (hybrid) or pure cgroup v2."""
    root = Path("/sys/fs/cgroup")
    return (root / "cgroup.controllers").exists() or (root / "cpuacct").is_dir()


def missing(*needs: Capability) -> list[str]:
    """Every missing piece for the given capabilities, as short phrases."""
    problems: list[str] = []
    if os.environ.get("ONEMON_E2E", "1") == "0":
        problems.append("ONEMON_E2E=0")
    if os.geteuid() != 0 and (not needs or set(needs) - {"prometheus"}):
        problems.append("not root")
    absent = sorted({b for n in needs for b in BINARIES[n] if not _present(b)})
    if absent:
        problems.append(f"missing binaries: {', '.join(absent)} ({SETUP_HINT})")
    busybox = Path("/bin/busybox")
    if ("guest" in needs or "lxc" in needs) and busybox.exists() and not _static(busybox):
        problems.append(f"/bin/busybox is not static ({SETUP_HINT})")
    if "libvirt" in needs and importlib.util.find_spec("libvirt") is None:
        problems.append("python module libvirt missing (scripts/setup-system.sh builds it)")
    if "lxc" in needs and not _cgroups_usable():
        problems.append("neither a cgroup v1 cpuacct hierarchy nor a pure cgroup v2 mount")
    if "netns" in needs and os.geteuid() == 0 and not Path("/proc/self/ns/net").exists():
        problems.append("no network namespaces")
    return problems


def skip_reason(*needs: Capability) -> str | None:
    """None when the capabilities can run, else a reason for pytest.skip."""
    problems = missing(*needs)
    if not problems:
        return None
    what = f"e2e ({', '.join(needs)})" if needs else "e2e"
    return f"{what} cannot run: {'; '.join(problems)}"
