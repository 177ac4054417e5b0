"""Run libvirtd + virtlogd by hand (no systemd here), reuse running ones, stop only ours.

Debian 12 ships only the monolithic ``libvirtd`` (no virtqemud). Traps handled here:
``/dev/kvm`` is ``root:root 0600`` without udev, which makes libvirt re-probe QEMU on every
call (~44 s per ``virsh start``), so it is fixed first; ``-v`` is never passed (it floods
/var/log/libvirt).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _proc

URI = "qemu:///system"
LIBVIRTD = "/usr/sbin/libvirtd"
VIRTLOGD = "/usr/sbin/virtlogd"
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
VIRTLOGD_PIDFILE = Path("/run/virtlogd.pid")
KVM_DEV = Path("/dev/kvm")


@dataclass
class Daemons:
    """The daemons of one ensure_running() call; ``started`` holds only those it started."""

    uri: str = URI
    started: dict[str, int] = field(default_factory=dict)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop (by pid) the daemons this handle started, libvirtd first; leave others alone."""
        for name in ("libvirtd", "virtlogd"):
            pid = self.started.pop(name, None)
            if pid is not None:
                _proc.terminate(pid, name, timeout)


def fix_kvm_permissions(dev: Path = KVM_DEV) -> None:
    """Give /dev/kvm to group kvm, mode 0660, as udev would (no-op without /dev/kvm)."""
    if not dev.exists():
        return
    _proc.run(["chgrp", "kvm", str(dev)], check=False)
    os.chmod(dev, 0o660)


def answers(uri: str = URI, timeout: float = 10.0) -> bool:
    """Whether ``virsh -c uri version`` succeeds."""
    try:
        proc = _proc.run(["virsh", "-c", uri, "version"], check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def _running(pidfile: Path, name: str) -> int | None:
    """The pid of a live daemon named name recorded in pidfile, else None."""
    pid = _proc.read_pidfile(pidfile)
    return pid if pid is not None and _proc.alive(pid, name) else None


def _start_daemon(binary: str, pidfile: Path, name: str, timeout: float) -> int:
    """Start a self-daemonizing binary with ``-d --pid-file`` and return the daemon's pid."""
    subprocess.run(
        [binary, "-d", "--pid-file", str(pidfile)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _running(pidfile, name)
        if pid is not None:
            return pid
        time.sleep(0.05)
    msg = f"{binary} did not write a live pid to {pidfile} within {timeout:.0f}s"
    raise RuntimeError(msg)


def ensure_running(uri: str = URI, timeout: float = 60.0) -> Daemons:
    """Make libvirtd and virtlogd run and answer on uri; reuse any already running."""
    fix_kvm_permissions()
    daemons = Daemons(uri=uri)
    try:
        if _running(VIRTLOGD_PIDFILE, "virtlogd") is None:
            daemons.started["virtlogd"] = _start_daemon(
                VIRTLOGD, VIRTLOGD_PIDFILE, "virtlogd", timeout
            )
        if not answers(uri) and _running(LIBVIRTD_PIDFILE, "libvirtd") is None:
            daemons.started["libvirtd"] = _start_daemon(
                LIBVIRTD, LIBVIRTD_PIDFILE, "libvirtd", timeout
            )
        deadline = time.monotonic() + timeout
        while not answers(uri):
            if time.monotonic() > deadline:
                msg = f"libvirtd does not answer on {uri} after {timeout:.0f}s"
                raise RuntimeError(msg)
            time.sleep(0.1)
    except BaseException:
        daemons.stop()
        raise
    return daemons


def main() -> None:
    """Start the daemons from the command line (for manual work and benchmarks)."""
    started = time.monotonic()
    d = ensure_running()
    took = time.monotonic() - started
    print(f"libvirtd answering on {d.uri} in {took:.2f}s; started {d.started}")


if __name__ == "__main__":
    main()
